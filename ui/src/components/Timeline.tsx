// The call as a picture: a caller lane (speech until each end of
// utterance, barge-ins), an agent lane (each reply from its first audio to
// the mark that says it finished playing, fallbacks), each turn's end of
// utterance → first audio latency as a bar, and every other event as a
// tick. Times are media times (ms since the stream started).

import type { CallDetail, TimelineEntry } from "../types";

const WIDTH = 900;
const LABEL = 70;
const LANE = 26;

interface Span {
  from: number;
  to: number;
  title: string;
}

function has(e: TimelineEntry, word: string) {
  return e.event.includes(word);
}

function lanes(call: CallDetail) {
  const events = call.timeline ?? [];
  const caller: Span[] = [];
  const agent: Span[] = [];
  const latency: Span[] = [];
  let speaking: number | null = null;
  for (const e of events) {
    if (e.event === "speech_start" && speaking === null) speaking = e.at_ms;
    if ((e.event === "eou" || e.event === "speech_end") && speaking !== null) {
      caller.push({ from: speaking, to: e.at_ms, title: `caller speaks ${speaking}–${e.at_ms} ms` });
      speaking = null;
    }
  }
  const acks = events.filter((e) => e.event === "mark_ack").map((e) => e.at_ms);
  for (const t of call.turns) {
    if (t.eou_at_ms === null) continue;
    const start = t.eou_at_ms + (t.first_audio_ms ?? 0);
    if (t.first_audio_ms !== null) {
      latency.push({ from: t.eou_at_ms, to: start, title: `turn ${t.turn}: first audio after ${Math.round(t.first_audio_ms)} ms` });
    }
    const end = acks.find((a) => a > start) ?? start + 400;
    agent.push({ from: start, to: end, title: `turn ${t.turn}: ${t.reply ?? "reply"}` });
  }
  const bargeIns = events.filter((e) => has(e, "barge"));
  const fallbacks = events.filter((e) => has(e, "fallback") || e.event === "apology");
  const marked = new Set([...bargeIns, ...fallbacks]);
  const others = events.filter((e) => !marked.has(e) && !["speech_start", "eou", "speech_end", "mark_ack"].includes(e.event));
  return { caller, agent, latency, bargeIns, fallbacks, others };
}

export function Timeline(props: { call: CallDetail }) {
  const { caller, agent, latency, bargeIns, fallbacks, others } = lanes(props.call);
  const last = Math.max(1000, props.call.duration_ms, ...(props.call.timeline ?? []).map((e) => e.at_ms));
  const x = (ms: number) => LABEL + (ms / last) * (WIDTH - LABEL - 10);
  const rows = { caller: 20, agent: 20 + LANE + 10, latency: 20 + 2 * (LANE + 10), events: 20 + 3 * (LANE + 10) };
  const step = last > 60_000 ? 10_000 : last > 20_000 ? 5_000 : last > 5_000 ? 1_000 : 500;
  const ticks: number[] = [];
  for (let t = 0; t <= last; t += step) ticks.push(t);
  const height = rows.events + 40;
  return (
    <svg
      viewBox={`0 0 ${WIDTH} ${height}`}
      className="w-full"
      role="img"
      aria-label="call timeline"
      data-testid="timeline"
    >
      {ticks.map((t) => (
        <g key={t}>
          <line x1={x(t)} x2={x(t)} y1={10} y2={height - 18} className="stroke-slate-200" />
          <text x={x(t)} y={height - 4} textAnchor="middle" className="fill-slate-400 text-[10px]">
            {t >= 1000 ? `${t / 1000}s` : `${t}ms`}
          </text>
        </g>
      ))}
      {(
        [
          ["Caller", rows.caller],
          ["Agent", rows.agent],
          ["Latency", rows.latency],
          ["Events", rows.events],
        ] as const
      ).map(([label, y]) => (
        <text key={label} x={0} y={y + LANE / 2 + 4} className="fill-slate-500 text-[11px]">
          {label}
        </text>
      ))}
      {caller.map((s, i) => (
        <rect key={`c${i}`} x={x(s.from)} y={rows.caller} width={Math.max(2, x(s.to) - x(s.from))} height={LANE} rx={4} className="fill-emerald-400" data-testid="lane-caller">
          <title>{s.title}</title>
        </rect>
      ))}
      {agent.map((s, i) => (
        <rect key={`a${i}`} x={x(s.from)} y={rows.agent} width={Math.max(2, x(s.to) - x(s.from))} height={LANE} rx={4} className="fill-sky-400" data-testid="lane-agent">
          <title>{s.title}</title>
        </rect>
      ))}
      {latency.map((s, i) => (
        <rect key={`l${i}`} x={x(s.from)} y={rows.latency + 8} width={Math.max(2, x(s.to) - x(s.from))} height={LANE - 16} className="fill-violet-400">
          <title>{s.title}</title>
        </rect>
      ))}
      {bargeIns.map((e, i) => (
        <path key={`b${i}`} d={`M ${x(e.at_ms)} ${rows.caller - 6} l 5 -8 h -10 z`} className="fill-red-500">
          <title>{`barge-in at ${e.at_ms} ms`}</title>
        </path>
      ))}
      {fallbacks.map((e, i) => (
        <circle key={`f${i}`} cx={x(e.at_ms)} cy={rows.agent + LANE / 2} r={5} className="fill-amber-500">
          <title>{`${e.event} at ${e.at_ms} ms`}</title>
        </circle>
      ))}
      {others.map((e, i) => (
        <line key={`e${i}`} x1={x(e.at_ms)} x2={x(e.at_ms)} y1={rows.events + 4} y2={rows.events + LANE - 4} className={e.source === "guest" ? "stroke-slate-700" : "stroke-slate-400"} strokeWidth={1.5}>
          <title>{`${e.at_ms} ms · ${e.source} · ${e.event} ${JSON.stringify(e.fields)}`}</title>
        </line>
      ))}
    </svg>
  );
}
