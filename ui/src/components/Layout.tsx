import type { ReactNode } from "react";
import { navigate, useLocation } from "../router";
import { request } from "../api";

const pages = [
  { path: "/app/", label: "Overview" },
  { path: "/app/calls", label: "Calls" },
  { path: "/app/guests", label: "Guests" },
];

export function Link(props: { to: string; className?: string; children: ReactNode; testId?: string }) {
  return (
    <a
      href={props.to}
      className={props.className}
      data-testid={props.testId}
      onClick={(e) => {
        if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(props.to);
      }}
    >
      {props.children}
    </a>
  );
}

export function Layout(props: { children: ReactNode }) {
  const { path } = useLocation();
  const current = (p: string) => (p === "/app/" ? path === "/app/" || path === "/app" : path.startsWith(p));
  const signOut = async () => {
    await request("POST", "/api/auth/logout");
    navigate("/app/login");
  };
  return (
    <div className="min-h-screen">
      <header className="border-b border-slate-200 bg-white">
        <div className="mx-auto flex max-w-6xl items-center gap-6 px-6 py-3">
          <span className="font-semibold tracking-tight">☎ hotline</span>
          <nav className="flex gap-1">
            {pages.map((p) => (
              <Link
                key={p.path}
                to={p.path}
                className={
                  "rounded-md px-3 py-1.5 text-sm " +
                  (current(p.path) ? "bg-slate-900 text-white" : "text-slate-600 hover:bg-slate-100")
                }
              >
                {p.label}
              </Link>
            ))}
          </nav>
          <button
            className="ml-auto rounded-md px-3 py-1.5 text-sm text-slate-600 hover:bg-slate-100"
            onClick={() => void signOut()}
          >
            Sign out
          </button>
        </div>
      </header>
      <main className="mx-auto max-w-6xl px-6 py-6">{props.children}</main>
    </div>
  );
}

export function Card(props: { title: string; children: ReactNode; className?: string; testId?: string }) {
  return (
    <section
      className={"rounded-xl border border-slate-200 bg-white p-4 shadow-sm " + (props.className ?? "")}
      data-testid={props.testId}
    >
      <h2 className="mb-3 text-sm font-medium text-slate-500">{props.title}</h2>
      {props.children}
    </section>
  );
}

export function ErrorNote(props: { error: string | null }) {
  if (!props.error) return null;
  return (
    <p role="alert" className="mb-4 rounded-md bg-red-50 px-3 py-2 text-sm text-red-800">
      {props.error}
    </p>
  );
}
