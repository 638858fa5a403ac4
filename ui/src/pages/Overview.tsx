import { useEffect, useState } from "react";
import { get } from "../api";
import { Card, ErrorNote, Link } from "../components/Layout";
import { CallTable } from "../components/CallTable";
import { outcomeColor, outcomeLabel, short, when } from "../format";
import { OUTCOMES, type CallPage, type CallSummary, type GuestStatus, type Outcome } from "../types";

function startOfToday(): number {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

export function Overview() {
  const [today, setToday] = useState<CallSummary[] | null>(null);
  const [guest, setGuest] = useState<GuestStatus | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    // The API pages at 500: more calls than that today shows as "500+".
    get<CallPage>(`/api/calls?since=${startOfToday()}&limit=500`)
      .then((page) => setToday(page.calls))
      .catch((e: Error) => setError(e.message));
    get<GuestStatus>("/admin/guest")
      .then(setGuest)
      .catch((e: Error) => setError(e.message));
  }, []);

  const counts = new Map<Outcome, number>();
  for (const c of today ?? []) counts.set(c.outcome, (counts.get(c.outcome) ?? 0) + 1);
  const total = today?.length ?? 0;

  return (
    <div className="space-y-4">
      <h1 className="text-xl font-semibold">Overview</h1>
      <ErrorNote error={error} />
      <div className="grid gap-4 md:grid-cols-3">
        <Card title="Calls today" className="md:col-span-2" testId="calls-today">
          <p className="mb-3 text-3xl font-semibold">
            {today === null ? "…" : total >= 500 ? "500+" : total}
          </p>
          <div className="flex flex-wrap gap-2">
            {OUTCOMES.filter((o) => counts.has(o)).map((o) => (
              <Link
                key={o}
                to={`/app/calls?outcome=${o}`}
                className={"rounded-full px-3 py-1 text-xs font-medium " + outcomeColor[o]}
              >
                {outcomeLabel[o]}: {counts.get(o)}
              </Link>
            ))}
          </div>
        </Card>
        <Card title="Active guest version" testId="active-guest">
          {guest?.active ? (
            <div className="space-y-1 text-sm">
              <p className="font-mono text-base">{short(guest.active.digest)}</p>
              <p className="text-slate-500">
                {guest.active.source} · loaded {when(guest.active.loaded_at * 1000)}
              </p>
              <p className="text-slate-500">
                {guest.active.calls} calls · {guest.active.traps} traps · swap: {guest.swap}
              </p>
            </div>
          ) : (
            <p className="text-sm text-slate-500">{guest ? "none loaded" : "…"}</p>
          )}
        </Card>
      </div>
      <Card title="Latest calls">
        <CallTable calls={(today ?? []).slice(0, 10)} />
      </Card>
    </div>
  );
}
