import type { Outcome } from "./types";

export function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
}

export function when(unixMs: number): string {
  return new Date(unixMs).toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

/** How long ago, in words, for times an operator reads at a glance. */
export function ago(unixMs: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - unixMs) / 1000));
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 48 * 3600) return `${Math.floor(s / 3600)} h ago`;
  return when(unixMs);
}

export function percent(ratio: number | null): string {
  if (ratio === null) return "–";
  return ratio === 0 ? "0%" : `${(ratio * 100).toFixed(ratio < 0.1 ? 1 : 0)}%`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} kB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function short(digest: string): string {
  return digest.slice(0, 12);
}

export function ms(value: number | null): string {
  return value === null ? "–" : `${Math.round(value)} ms`;
}

export const outcomeLabel: Record<Outcome, string> = {
  caller_hung_up: "caller hung up",
  agent_hung_up: "agent hung up",
  transferred: "transferred",
  drained: "drained",
  guest_failure: "guest failure",
  refused: "refused",
  connection_lost: "connection lost",
  protocol_error: "protocol error",
};

export const outcomeColor: Record<Outcome, string> = {
  caller_hung_up: "bg-emerald-100 text-emerald-800",
  agent_hung_up: "bg-sky-100 text-sky-800",
  transferred: "bg-violet-100 text-violet-800",
  drained: "bg-slate-200 text-slate-700",
  guest_failure: "bg-red-100 text-red-800",
  refused: "bg-amber-100 text-amber-800",
  connection_lost: "bg-orange-100 text-orange-800",
  protocol_error: "bg-rose-100 text-rose-800",
};
