// The shapes of hotline's JSON API (host/store/read.rs, host/versions,
// host/http/api.rs, host/live.rs).

export type Outcome =
  | "caller_hung_up"
  | "agent_hung_up"
  | "transferred"
  | "drained"
  | "guest_failure"
  | "refused"
  | "connection_lost"
  | "protocol_error";

export const OUTCOMES: Outcome[] = [
  "caller_hung_up",
  "agent_hung_up",
  "transferred",
  "drained",
  "guest_failure",
  "refused",
  "connection_lost",
  "protocol_error",
];

export interface CallSummary {
  call_sid: string;
  stream_sid: string;
  direction: string;
  from: string | null;
  to: string | null;
  started_at: number;
  ended_at: number;
  duration_ms: number;
  outcome: Outcome;
  close_code: number | null;
  guests: string[];
  turns: number;
  frames_in: number;
  frames_out: number;
  /** The fleet instance that served the call (HOTLINE_INSTANCE); null for records from before it was kept. */
  instance: string | null;
}

export interface CallPage {
  calls: CallSummary[];
  next_cursor: string | null;
}

export interface Turn {
  turn: number;
  eou_at_ms: number | null;
  transcript: string | null;
  reply: string | null;
  barged_in: boolean;
  heard: string | null;
  unheard: string | null;
  outcome: string | null;
  stt_ms: number | null;
  llm_first_token_ms: number | null;
  tts_first_byte_ms: number | null;
  first_audio_ms: number | null;
  fallback: string | null;
  errors: string | null;
}

export interface TimelineEntry {
  at_ms: number;
  source: "host" | "guest";
  event: string;
  fields: Record<string, unknown>;
}

/** The call's audio, when HOTLINE_RECORD_AUDIO kept it: a stereo WAV
 * (caller left, agent right, 8 kHz 16-bit) served at `url`. */
export interface Recording {
  url: string;
  /** Stored beside the file's name; the columns allow NULL. */
  bytes: number | null;
  duration_ms: number | null;
}

export interface CallDetail extends Omit<CallSummary, "turns"> {
  turns: Turn[];
  timeline: TimelineEntry[] | null;
  timeline_dropped: number;
  recording: Recording | null;
}

export interface GuestVersion {
  digest: string;
  source: string;
  loaded_at: number;
  load_ms: number;
  cached: boolean;
  contract: string;
  calls: number;
  traps: number;
  migrations: number;
  refusals: number;
}

/** The latest rollback, by an operator or automatic (a failing version). */
export interface Rollback {
  from: string;
  to: string;
  reason: string;
  at_unix_ms: number;
}

export interface GuestStatus {
  active: GuestVersion | null;
  history: GuestVersion[];
  swap: string;
  last_rollback: Rollback | null;
}

export interface Me {
  via: "session" | "bearer";
  expires_at: number | null;
}

export type ProviderKind = "stt" | "llm" | "tts";
export const PROVIDER_KINDS: ProviderKind[] = ["stt", "llm", "tts"];

export interface ProviderHealth {
  provider: string;
  status: "ok" | "degraded" | "unconfigured";
  last_error?: { message: string; at_unix_ms: number };
}

/** `GET /readyz` (public): the parts the overview shows. */
export interface Ready {
  ready: boolean;
  providers: Record<ProviderKind, ProviderHealth>;
  live_calls: number;
  max_calls: number;
  db: "ok" | "degraded" | "off";
}

// ---- `GET /api/live`: server-sent events -----------------------------------

export type LiveState = "listening" | "thinking" | "speaking";

/** A call in progress (no record exists until it ends). */
export interface LiveCall {
  call_sid: string;
  stream_sid: string;
  direction: "inbound" | "outbound";
  from: string | null;
  to: string | null;
  /** Unix ms. */
  started_at: number;
  state: LiveState;
  /** The guest version's digest. */
  guest: string;
  turns: number;
}

/** `snapshot`: every live call, on connect and whenever the client fell behind. */
export interface LiveSnapshot {
  calls: LiveCall[];
}

/** `ended`: the call is over (its record follows through the store's queue). */
export interface LiveEnded {
  call_sid: string;
  outcome: Outcome;
  duration_ms: number;
}

// ---- `GET /api/stats?hours=N` ----------------------------------------------

export interface Percentiles {
  p50: number | null;
  p95: number | null;
}

export interface PeriodStats {
  calls: number;
  outcomes: Partial<Record<Outcome, number>>;
  turns: number;
  /** End of utterance → first reply audio. */
  first_audio_ms: Percentiles;
  provider_errors: Record<ProviderKind, number>;
  /** Turns with a provider error ÷ turns; null without turns. */
  provider_error_rate: number | null;
}

export interface HourStats extends PeriodStats {
  /** Unix ms, the start of the hour. */
  start: number;
}

export interface Stats {
  since: number;
  until: number;
  /** Oldest first, one per hour, empty hours included. */
  hours: HourStats[];
  total: PeriodStats;
}
