// The calls in progress (from useLiveCalls): what each is doing now and for
// how long. A live call has no record yet, so its SID is plain text.

import { useEffect, useState } from "react";
import { duration, short } from "../format";
import type { LiveStatus } from "../live";
import type { LiveCall, LiveState } from "../types";
import { Card } from "./Layout";

const stateColor: Record<LiveState, string> = {
  listening: "bg-emerald-100 text-emerald-800",
  thinking: "bg-amber-100 text-amber-800",
  speaking: "bg-sky-100 text-sky-800",
};

/** The time now, once a second: durations tick without events. */
function useNow(): number {
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(timer);
  }, []);
  return now;
}

function StateBadge(props: { state: LiveState }) {
  return (
    <span className={"rounded-full px-2 py-0.5 text-xs font-medium " + stateColor[props.state]}>{props.state}</span>
  );
}

function Rows(props: { calls: LiveCall[] }) {
  const now = useNow();
  return (
    <table className="w-full text-left text-sm">
      <thead className="text-xs uppercase text-slate-500">
        <tr>
          <th className="py-2 pr-4 font-medium">Call</th>
          <th className="py-2 pr-4 font-medium">From → to</th>
          <th className="py-2 pr-4 font-medium">State</th>
          <th className="py-2 pr-4 font-medium">Duration</th>
          <th className="py-2 pr-4 font-medium">Turns</th>
          <th className="py-2 font-medium">Guest</th>
        </tr>
      </thead>
      <tbody className="divide-y divide-slate-100">
        {props.calls.map((c) => (
          <tr key={c.call_sid} data-testid="live-call">
            <td className="py-2 pr-4 font-mono text-xs">{c.call_sid}</td>
            <td className="py-2 pr-4 font-mono text-xs">
              {c.from ?? "–"} → {c.to ?? "–"}
              {c.direction === "outbound" && <span className="ml-2 font-sans text-slate-400">outbound</span>}
            </td>
            <td className="py-2 pr-4">
              <StateBadge state={c.state} />
            </td>
            {/* The server's clock started it; a browser a little behind must not show -1s. */}
            <td className="py-2 pr-4 tabular-nums">{duration(Math.max(0, now - c.started_at))}</td>
            <td className="py-2 pr-4">{c.turns}</td>
            <td className="py-2 font-mono text-xs" title={c.guest}>
              {short(c.guest)}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function LiveCalls(props: { calls: LiveCall[]; status: LiveStatus }) {
  return (
    <Card title={`Live calls (${props.calls.length})`} testId="live-calls">
      {props.status === "reconnecting" && (
        <p role="status" className="mb-2 text-xs text-amber-700">
          Reconnecting… the list may be out of date.
        </p>
      )}
      {props.calls.length > 0 ? (
        <Rows calls={props.calls} />
      ) : (
        <p className="text-sm text-slate-500">{props.status === "connecting" ? "…" : "No calls in progress."}</p>
      )}
    </Card>
  );
}
