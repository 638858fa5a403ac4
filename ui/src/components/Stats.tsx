// The last hours from `GET /api/stats`: calls per hour as bars, each hour's
// end of utterance → first audio p50/p95 as a second row (the number a
// caller feels), and the period's totals. Plain SVG: a chart library would
// outweigh the rest of the app.

import { ms, percent } from "../format";
import type { HourStats, Stats } from "../types";
import { Card } from "./Layout";

const WIDTH = 720;
const LEFT = 64;
const CALLS = { top: 14, height: 64 };
const LATENCY = { top: 96, height: 36 };
const HEIGHT = 152;

function hour(start: number): string {
  return new Date(start).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

function tooltip(h: HourStats): string {
  const lines = [
    `${hour(h.start)}–${hour(h.start + 3_600_000)}`,
    `${h.calls} calls · ${h.turns} turns`,
    `first audio p50 ${ms(h.first_audio_ms.p50)} · p95 ${ms(h.first_audio_ms.p95)}`,
  ];
  if (h.provider_error_rate !== null) lines.push(`turns with a provider error: ${percent(h.provider_error_rate)}`);
  return lines.join("\n");
}

export function HourlyChart(props: { hours: HourStats[] }) {
  const n = Math.max(1, props.hours.length);
  const column = (WIDTH - LEFT) / n;
  const bar = Math.max(2, column - 4);
  const maxCalls = Math.max(1, ...props.hours.map((h) => h.calls));
  const maxLatency = Math.max(1, ...props.hours.map((h) => h.first_audio_ms.p95 ?? h.first_audio_ms.p50 ?? 0));
  const x = (i: number) => LEFT + i * column + (column - bar) / 2;
  const tall = (value: number, max: number, height: number) => (value / max) * height;
  // Label every sixth hour (4 labels a day) so they never crowd.
  const every = Math.max(1, Math.round(n / 4));
  return (
    <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} className="w-full" role="img" aria-label="calls per hour" data-testid="hourly">
      <text x={0} y={CALLS.top + CALLS.height / 2} className="fill-slate-500 text-[11px]">
        Calls
      </text>
      <text x={0} y={CALLS.top + CALLS.height / 2 + 13} className="fill-slate-400 text-[9px]">
        max {maxCalls}
      </text>
      <text x={0} y={LATENCY.top + LATENCY.height / 2} className="fill-slate-500 text-[11px]">
        First audio
      </text>
      <text x={0} y={LATENCY.top + LATENCY.height / 2 + 13} className="fill-slate-400 text-[9px]">
        max {ms(maxLatency)}
      </text>
      <line x1={LEFT} x2={WIDTH} y1={CALLS.top + CALLS.height} y2={CALLS.top + CALLS.height} className="stroke-slate-200" />
      <line x1={LEFT} x2={WIDTH} y1={LATENCY.top + LATENCY.height} y2={LATENCY.top + LATENCY.height} className="stroke-slate-200" />
      {props.hours.map((h, i) => {
        const calls = tall(h.calls, maxCalls, CALLS.height);
        const p95 = tall(h.first_audio_ms.p95 ?? 0, maxLatency, LATENCY.height);
        const p50 = tall(h.first_audio_ms.p50 ?? 0, maxLatency, LATENCY.height);
        return (
          <g key={h.start}>
            <title>{tooltip(h)}</title>
            {/* The whole column answers the hover, empty hours too. */}
            <rect x={LEFT + i * column} y={0} width={column} height={HEIGHT - 14} className="fill-transparent hover:fill-slate-100" />
            {h.calls > 0 && (
              <rect x={x(i)} y={CALLS.top + CALLS.height - calls} width={bar} height={calls} rx={2} className="fill-sky-500" />
            )}
            {p95 > 0 && (
              <rect x={x(i)} y={LATENCY.top + LATENCY.height - p95} width={bar} height={p95} className="fill-violet-200" />
            )}
            {p50 > 0 && (
              <rect x={x(i)} y={LATENCY.top + LATENCY.height - p50} width={bar} height={p50} className="fill-violet-500" />
            )}
            {i % every === 0 && (
              <text x={LEFT + i * column} y={HEIGHT - 2} className="fill-slate-400 text-[10px]">
                {hour(h.start)}
              </text>
            )}
          </g>
        );
      })}
    </svg>
  );
}

export function ActivityCard(props: { stats: Stats | null; hours: number; className?: string }) {
  const s = props.stats;
  return (
    <Card title={`Last ${props.hours} hours`} className={props.className} testId="activity">
      {s ? (
        <>
          <p className="mb-2 text-sm text-slate-500">
            <span className="text-2xl font-semibold text-slate-900">{s.total.calls}</span>{" "}
            {s.total.calls === 1 ? "call" : "calls"} · {s.total.turns} {s.total.turns === 1 ? "turn" : "turns"}
          </p>
          <HourlyChart hours={s.hours} />
          <p className="mt-1 text-xs text-slate-400">
            Bars: calls per hour; below, end of utterance → first audio per hour (dark p50, light p95). Hover
            an hour for its numbers.
          </p>
        </>
      ) : (
        <p className="text-sm text-slate-500">…</p>
      )}
    </Card>
  );
}

/** End of utterance → first audio over the period: how long callers wait. */
export function LatencyCard(props: { stats: Stats | null; hours: number }) {
  const total = props.stats?.total;
  return (
    <Card title="End of utterance → first audio" testId="latency">
      {total ? (
        <div className="space-y-2 text-sm">
          <div className="flex gap-8">
            <p>
              <span className="block text-xs text-slate-500">p50</span>
              <span className="text-2xl font-semibold">{ms(total.first_audio_ms.p50)}</span>
            </p>
            <p>
              <span className="block text-xs text-slate-500">p95</span>
              <span className="text-2xl font-semibold">{ms(total.first_audio_ms.p95)}</span>
            </p>
          </div>
          <p className="text-slate-500">
            over {total.turns} {total.turns === 1 ? "turn" : "turns"} in the last {props.hours} hours
          </p>
        </div>
      ) : (
        <p className="text-sm text-slate-500">…</p>
      )}
    </Card>
  );
}
