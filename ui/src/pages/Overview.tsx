import { useCallback, useEffect, useRef, useState } from "react";
import { get } from "../api";
import { Card, ErrorNote, Link } from "../components/Layout";
import { CallTable } from "../components/CallTable";
import { LiveCalls } from "../components/LiveCalls";
import { ActivityCard, LatencyCard } from "../components/Stats";
import { ago, outcomeColor, outcomeLabel, percent, short, when } from "../format";
import { useLiveCalls } from "../live";
import {
  OUTCOMES,
  PROVIDER_KINDS,
  type CallPage,
  type CallSummary,
  type GuestStatus,
  type Outcome,
  type Ready,
  type Stats,
} from "../types";

/** The period the stats cover. */
const HOURS = 24;

/** An ended call's record reaches the database through the store's queue
 * (batches of up to 200 ms): the lists are read again a little later. */
const AFTER_END_MS = 1500;

function startOfToday(): number {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

function CallsToday(props: { today: CallSummary[] | null }) {
  const counts = new Map<Outcome, number>();
  for (const c of props.today ?? []) counts.set(c.outcome, (counts.get(c.outcome) ?? 0) + 1);
  const total = props.today?.length ?? 0;
  return (
    <Card title="Calls today" className="md:col-span-2" testId="calls-today">
      <p className="mb-3 text-3xl font-semibold">{props.today === null ? "…" : total >= 500 ? "500+" : total}</p>
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
  );
}

function GuestCard(props: { guest: GuestStatus | null }) {
  const { guest } = props;
  const rollback = guest?.last_rollback;
  return (
    <Card title="Active guest version" testId="active-guest">
      {guest?.active ? (
        <div className="space-y-1 text-sm">
          <p className="font-mono text-base">{short(guest.active.digest)}</p>
          <p className="text-slate-500">
            {guest.active.source} · {guest.active.calls} calls · {guest.active.traps} traps · swap: {guest.swap}
          </p>
          <p className="text-slate-500" title={when(guest.active.loaded_at * 1000)}>
            last swap: {ago(guest.active.loaded_at * 1000)}
          </p>
          {rollback && (
            <p className="text-amber-700" data-testid="last-rollback" title={when(rollback.at_unix_ms)}>
              rolled back {ago(rollback.at_unix_ms)}: <span className="font-mono">{short(rollback.from)}</span> →{" "}
              <span className="font-mono">{short(rollback.to)}</span> ({rollback.reason})
            </p>
          )}
        </div>
      ) : (
        <p className="text-sm text-slate-500">{guest ? "none loaded" : "…"}</p>
      )}
    </Card>
  );
}

/** Providers as /readyz sees them now, beside their errors over the period.
 * `live`: the live stream's count, current where /readyz's was read once. */
function ServiceCard(props: { ready: Ready | null; stats: Stats | null; live: number | null }) {
  const { ready } = props;
  const total = props.stats?.total;
  if (!ready) {
    return (
      <Card title="Service" testId="service">
        <p className="text-sm text-slate-500">…</p>
      </Card>
    );
  }
  return (
    <Card title="Service" testId="service">
      <div className="flex flex-wrap gap-x-8 gap-y-2 text-sm">
        <p>
          <span className="text-slate-500">Live calls </span>
          {props.live ?? ready.live_calls} / {ready.max_calls}
        </p>
        {PROVIDER_KINDS.map((kind) => {
          const p = ready.providers[kind];
          const color =
            p.status === "ok" ? "text-emerald-700" : p.status === "degraded" ? "text-red-700" : "text-slate-400";
          const errors = total?.provider_errors[kind];
          return (
            <p key={kind} title={p.last_error?.message}>
              <span className="text-slate-500">{kind.toUpperCase()} </span>
              {p.provider} <span className={color}>{p.status}</span>
              {errors !== undefined && (
                <span className={errors > 0 ? "text-red-700" : "text-slate-400"}>
                  {" "}
                  · {errors} {errors === 1 ? "error" : "errors"}
                </span>
              )}
            </p>
          );
        })}
        <p>
          <span className="text-slate-500">Records </span>
          <span className={ready.db === "ok" ? "text-emerald-700" : "text-red-700"}>{ready.db}</span>
        </p>
      </div>
      {total && (
        <p className="mt-2 text-xs text-slate-500" data-testid="provider-errors">
          Turns with a provider error in the last {HOURS} hours: {percent(total.provider_error_rate)}
        </p>
      )}
    </Card>
  );
}

export function Overview() {
  const [today, setToday] = useState<CallSummary[] | null>(null);
  const [latest, setLatest] = useState<CallSummary[] | null>(null);
  const [guest, setGuest] = useState<GuestStatus | null>(null);
  const [ready, setReady] = useState<Ready | null>(null);
  const [stats, setStats] = useState<Stats | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(() => {
    const fail = (e: Error) => setError(e.message);
    // /readyz answers 503 when not ready, with the same body: read it either way.
    fetch("/readyz")
      .then((r) => r.json() as Promise<Ready>)
      .then(setReady)
      .catch(fail);
    // The API pages at 500: more calls than that today shows as "500+".
    get<CallPage>(`/api/calls?since=${startOfToday()}&limit=500`)
      .then((page) => setToday(page.calls))
      .catch(fail);
    // The latest calls whenever they were (today's may be none).
    get<CallPage>("/api/calls?limit=10")
      .then((page) => setLatest(page.calls))
      .catch(fail);
    get<Stats>(`/api/stats?hours=${HOURS}`).then(setStats).catch(fail);
    get<GuestStatus>("/admin/guest").then(setGuest).catch(fail);
  }, []);
  useEffect(load, [load]);

  // A call that ends moves from the live calls into the lists and the stats.
  const reload = useRef<number | undefined>(undefined);
  useEffect(() => () => window.clearTimeout(reload.current), []);
  const live = useLiveCalls(() => {
    window.clearTimeout(reload.current);
    reload.current = window.setTimeout(load, AFTER_END_MS);
  });

  return (
    <div className="space-y-4">
      <h1 className="text-xl font-semibold">Overview</h1>
      <ErrorNote error={error} />
      <LiveCalls calls={live.calls} status={live.status} />
      <div className="grid gap-4 md:grid-cols-3">
        <CallsToday today={today} />
        <GuestCard guest={guest} />
        <ActivityCard stats={stats} hours={HOURS} className="md:col-span-2" />
        <LatencyCard stats={stats} hours={HOURS} />
      </div>
      <ServiceCard ready={ready} stats={stats} live={live.status === "live" ? live.calls.length : null} />
      <Card title="Latest calls">
        {latest === null ? <p className="text-sm text-slate-500">…</p> : <CallTable calls={latest} />}
      </Card>
    </div>
  );
}
