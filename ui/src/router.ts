// A router of a few lines: the dashboard has five pages and needs only the
// path, pushState and a re-render on navigation.

import { useEffect, useState } from "react";

const listeners = new Set<() => void>();

export function navigate(to: string) {
  if (to !== location.pathname + location.search) history.pushState(null, "", to);
  listeners.forEach((l) => l());
}

window.addEventListener("popstate", () => listeners.forEach((l) => l()));

export function useLocation(): { path: string; search: URLSearchParams } {
  const [, setTick] = useState(0);
  useEffect(() => {
    const l = () => setTick((t) => t + 1);
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
  return { path: location.pathname, search: new URLSearchParams(location.search) };
}
