import type { CallSummary } from "../types";
import { duration, outcomeColor, outcomeLabel, short, when } from "../format";
import { Link } from "./Layout";

export function OutcomeBadge(props: { outcome: CallSummary["outcome"] }) {
  return (
    <span className={"rounded-full px-2 py-0.5 text-xs font-medium " + outcomeColor[props.outcome]}>
      {outcomeLabel[props.outcome]}
    </span>
  );
}

export function CallTable(props: { calls: CallSummary[] }) {
  if (props.calls.length === 0) return <p className="text-sm text-slate-500">No calls.</p>;
  return (
    <table className="w-full text-left text-sm" data-testid="call-table">
      <thead className="text-xs uppercase text-slate-500">
        <tr>
          <th className="py-2 pr-4 font-medium">Started</th>
          <th className="py-2 pr-4 font-medium">Call</th>
          <th className="py-2 pr-4 font-medium">From</th>
          <th className="py-2 pr-4 font-medium">Duration</th>
          <th className="py-2 pr-4 font-medium">Turns</th>
          <th className="py-2 pr-4 font-medium">Outcome</th>
          <th className="py-2 pr-4 font-medium">Guest</th>
          <th className="py-2 font-medium">Instance</th>
        </tr>
      </thead>
      <tbody className="divide-y divide-slate-100">
        {props.calls.map((c) => (
          <tr key={c.call_sid} className="hover:bg-slate-50">
            <td className="py-2 pr-4 whitespace-nowrap">{when(c.started_at)}</td>
            <td className="py-2 pr-4 font-mono text-xs">
              <Link to={`/app/calls/${c.call_sid}`} className="text-sky-700 hover:underline" testId="call-link">
                {c.call_sid}
              </Link>
            </td>
            <td className="py-2 pr-4 font-mono text-xs">{c.from ?? "–"}</td>
            <td className="py-2 pr-4">{duration(c.duration_ms)}</td>
            <td className="py-2 pr-4">{c.turns}</td>
            <td className="py-2 pr-4">
              <OutcomeBadge outcome={c.outcome} />
            </td>
            <td className="py-2 pr-4 font-mono text-xs">{c.guests.map(short).join(", ")}</td>
            <td className="py-2 font-mono text-xs" data-testid="call-instance">
              {c.instance ?? "–"}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
