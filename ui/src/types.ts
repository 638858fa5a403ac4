// The shapes of hotline's JSON API (host/store/read.rs, host/versions).

export type Outcome =
  | "caller_hung_up"
  | "agent_hung_up"
  | "drained"
  | "guest_failure"
  | "refused"
  | "connection_lost"
  | "protocol_error";

export const OUTCOMES: Outcome[] = [
  "caller_hung_up",
  "agent_hung_up",
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

export interface CallDetail extends Omit<CallSummary, "turns"> {
  turns: Turn[];
  timeline: TimelineEntry[] | null;
  timeline_dropped: number;
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

export interface GuestStatus {
  active: GuestVersion | null;
  history: GuestVersion[];
  swap: string;
}

export interface Me {
  via: "session" | "bearer";
  expires_at: number | null;
}

export interface ProviderHealth {
  provider: string;
  status: "ok" | "degraded" | "unconfigured";
  last_error?: { message: string; at_unix_ms: number };
}

/** `GET /readyz` (public): the parts the overview shows. */
export interface Ready {
  ready: boolean;
  providers: Record<"stt" | "llm" | "tts", ProviderHealth>;
  live_calls: number;
  max_calls: number;
  db: "ok" | "degraded" | "off";
}
