import { StrictMode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import "./index.css";
import { get } from "./api";
import { Layout } from "./components/Layout";
import { navigate, useLocation } from "./router";
import type { Me } from "./types";
import { CallDetail } from "./pages/CallDetail";
import { Calls } from "./pages/Calls";
import { Guests } from "./pages/Guests";
import { Login } from "./pages/Login";
import { Overview } from "./pages/Overview";

function Page(props: { path: string }) {
  const call = /^\/app\/calls\/([^/]+)$/.exec(props.path);
  if (call?.[1]) return <CallDetail sid={decodeURIComponent(call[1])} />;
  if (props.path === "/app/calls") return <Calls />;
  if (props.path === "/app/guests") return <Guests />;
  if (props.path === "/app/" || props.path === "/app") return <Overview />;
  return <p className="text-sm text-slate-500">No such page.</p>;
}

function App() {
  const { path } = useLocation();
  const [me, setMe] = useState<Me | null>(null);
  const onLogin = path === "/app/login";

  useEffect(() => {
    if (onLogin) {
      setMe(null);
      return;
    }
    // The server redirects pages without a session; this catches one
    // that expires while the page is open (the 401 navigates to login).
    get<Me>("/api/auth/me")
      .then(setMe)
      .catch(() => navigate("/app/login"));
  }, [onLogin]);

  if (onLogin) return <Login />;
  if (!me) return null;
  return (
    <Layout>
      <Page path={path} />
    </Layout>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
