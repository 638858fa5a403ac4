// The calls in progress, kept current by `GET /api/live` (server-sent
// events; the session cookie goes along, same origin). The server sends a
// `snapshot` of every live call on connect (and again when this client fell
// behind), then `call` when one appears or changes and `ended` when one is
// over. A dropped stream is reconnected by EventSource itself, and the
// snapshot it gets first makes the set right again.

import { useEffect, useRef, useState } from "react";
import { get } from "./api";
import type { LiveCall, LiveEnded, LiveSnapshot, Me } from "./types";

/** `reconnecting`: the stream failed and is being opened again. */
export type LiveStatus = "connecting" | "live" | "reconnecting";

/** After an HTTP error EventSource gives up for good; we try again this late. */
const REOPEN_MS = 5000;

function data<T>(event: Event): T {
  return JSON.parse((event as MessageEvent<string>).data) as T;
}

/** The live calls, oldest first (rows keep their places as calls come). */
export function useLiveCalls(onEnded?: (ended: LiveEnded) => void): { calls: LiveCall[]; status: LiveStatus } {
  const [calls, setCalls] = useState<Map<string, LiveCall>>(new Map());
  const [status, setStatus] = useState<LiveStatus>("connecting");
  // The latest callback without reopening the stream when it changes.
  const ended = useRef(onEnded);
  useEffect(() => {
    ended.current = onEnded;
  });

  useEffect(() => {
    let source: EventSource | null = null;
    let reopen: number | undefined;
    let gone = false;

    const open = () => {
      source = new EventSource("/api/live");
      source.addEventListener("open", () => setStatus("live"));
      source.addEventListener("snapshot", (e) => {
        setCalls(new Map(data<LiveSnapshot>(e).calls.map((c) => [c.call_sid, c])));
        setStatus("live");
      });
      source.addEventListener("call", (e) => {
        const call = data<LiveCall>(e);
        setCalls((m) => new Map(m).set(call.call_sid, call));
      });
      source.addEventListener("ended", (e) => {
        const end = data<LiveEnded>(e);
        setCalls((m) => {
          const next = new Map(m);
          next.delete(end.call_sid);
          return next;
        });
        ended.current?.(end);
      });
      source.addEventListener("error", () => {
        setStatus("reconnecting");
        // A dropped connection: EventSource is already retrying by itself.
        if (source?.readyState !== EventSource.CLOSED) return;
        // An HTTP error ends EventSource for good. An expired session is
        // the likely one: asking who we are sends a 401 to sign-in (api.ts);
        // otherwise (a restart, a proxy's 502) open a new stream later.
        source.close();
        get<Me>("/api/auth/me")
          .catch(() => undefined)
          .then(() => {
            if (!gone) reopen = window.setTimeout(open, REOPEN_MS);
          });
      });
    };

    open();
    return () => {
      gone = true;
      window.clearTimeout(reopen);
      source?.close();
    };
  }, []);

  const sorted = [...calls.values()].sort((a, b) => a.started_at - b.started_at);
  return { calls: sorted, status };
}
