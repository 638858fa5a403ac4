import { useEffect, useState } from "react";
import { get } from "../api";
import { Card, ErrorNote, Link } from "../components/Layout";
import { CallTable } from "../components/CallTable";
import { outcomeColor, outcomeLabel, short, when } from "../format";
import { OUTCOMES, type CallPage, type CallSummary, type GuestStatus, type Outcome, type Ready } from "../types";

function startOfToday(): number {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

export function Overview() {
  const [today, setToday] = useState<CallSummary[] | null>(null);
  const [latest, setLatest] = useState<CallSummary[] | null>(null);
  const [guest, setGuest] = useState<GuestStatus | null>(null);
  const [ready, setReady] = useState<Ready | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    // /readyz answers 503 when not ready, with the same body: read it either way.
    fetch("/readyz")
      .then((r) => r.json() as Promise<Ready>)
      .then(setReady)
      .catch((e: Error) => setError(e.message));
    // The API pages at 500: more calls than that today shows as "500+".
    get<CallPage>(`/api/calls?since=${startOfToday()}&limit=500`)
      .then((page) => setToday(page.calls))
      .catch((e: Error) => setError(e.message));
    // The latest calls whenever they were (today's may be none).
    get<CallPage>("/api/calls?limit=10")
      .then((page) => setLatest(page.calls))
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
      <Card title="Service" testId="service">
        {ready ? (
          <div className="flex flex-wrap gap-x-8 gap-y-2 text-sm">
            <p>
              <span className="text-slate-500">Live calls </span>
              {ready.live_calls} / {ready.max_calls}
            </p>
            {(["stt", "llm", "tts"] as const).map((kind) => {
              const p = ready.providers[kind];
              const color =
                p.status === "ok" ? "text-emerald-700" : p.status === "degraded" ? "text-red-700" : "text-slate-400";
              return (
                <p key={kind} title={p.last_error?.message}>
                  <span className="text-slate-500">{kind.toUpperCase()} </span>
                  {p.provider} <span className={color}>{p.status}</span>
                </p>
              );
            })}
            <p>
              <span className="text-slate-500">Records </span>
              <span className={ready.db === "ok" ? "text-emerald-700" : "text-red-700"}>{ready.db}</span>
            </p>
          </div>
        ) : (
          <p className="text-sm text-slate-500">…</p>
        )}
      </Card>
      <Card title="Latest calls">
        {latest === null ? <p className="text-sm text-slate-500">…</p> : <CallTable calls={latest} />}
      </Card>
    </div>
  );
}
