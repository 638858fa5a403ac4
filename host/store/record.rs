//! What a call leaves behind: the record a call builds as it goes
//! (`media/record.rs`) and hands to the store when it ends, and what the
//! API reads back. Plain data; times are Unix milliseconds (wall clock) or
//! media milliseconds (since the stream started, as Twilio counts them).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Twilio's `stop`, or Twilio closed the socket.
    CallerHungUp,
    /// The guest's `hangup` effect.
    AgentHungUp,
    /// The guest's `transfer`: the caller was handed to `<Dial>`.
    Transferred,
    /// The server closed it at the end of its drain.
    Drained,
    /// The guest failed beyond recovery: the host's apology, close 1011.
    GuestFailure,
    /// Taken, then refused: no free instance (close 1013).
    Refused,
    /// The connection broke, went idle, or stopped reading.
    ConnectionLost,
    /// The peer broke the protocol (bad frames, too big, not UTF-8).
    ProtocolError,
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::CallerHungUp,
        Outcome::AgentHungUp,
        Outcome::Transferred,
        Outcome::Drained,
        Outcome::GuestFailure,
        Outcome::Refused,
        Outcome::ConnectionLost,
        Outcome::ProtocolError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::CallerHungUp => "caller_hung_up",
            Outcome::AgentHungUp => "agent_hung_up",
            Outcome::Transferred => "transferred",
            Outcome::Drained => "drained",
            Outcome::GuestFailure => "guest_failure",
            Outcome::Refused => "refused",
            Outcome::ConnectionLost => "connection_lost",
            Outcome::ProtocolError => "protocol_error",
        }
    }

    pub fn from_name(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.name() == name)
    }
}

/// One call.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallRecord {
    pub call_sid: String,
    pub stream_sid: String,
    /// `inbound`, or `outbound` (placed through `POST /api/calls`).
    pub direction: String,
    /// Masked unless `HOTLINE_MASK_NUMBERS=false`.
    pub from: Option<String>,
    pub to: Option<String>,
    pub started_at: i64,
    pub ended_at: i64,
    pub duration_ms: i64,
    /// Guest version digests in the order the call ran them (a migration
    /// or a recovery onto another version adds one).
    pub guests: Vec<String>,
    /// `None` only while the call is live.
    pub outcome: Option<Outcome>,
    /// The WebSocket close code sent or received; none when the connection
    /// just went away.
    pub close_code: Option<u16>,
    pub frames_in: i64,
    pub frames_out: i64,
    pub turns: Vec<TurnRecord>,
    /// The call's timeline as a JSON array of `{at_ms, source, event,
    /// fields}` (`source` is `host` or `guest`, `fields` an object), kept
    /// as text from the start: a call holds a few bytes per event, not a
    /// map per event. Empty means none.
    pub timeline: String,
    /// Timeline entries left out past the per-call cap.
    pub timeline_dropped: i64,
    /// The call's audio, when recordings are on.
    pub recording: Option<RecordingRef>,
}

/// Where a call's recording is (`store/recordings.rs`) and how big.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordingRef {
    /// Relative to the recordings directory: `YYYY-MM-DD/<call SID>.wav`.
    pub name: String,
    pub bytes: i64,
    pub duration_ms: i64,
}

/// One turn: an utterance and what the agent made of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TurnRecord {
    /// The guest's turn number (1-based).
    pub turn: i64,
    /// Media time of the end of utterance.
    pub eou_at_ms: Option<i64>,
    /// Speech-to-text's answer (AI path).
    pub transcript: Option<String>,
    /// The LLM's reply as streamed (AI path).
    pub reply: Option<String>,
    /// A barge-in cut the reply: the segments heard and not heard.
    pub barged_in: bool,
    pub heard: Option<String>,
    pub unheard: Option<String>,
    /// `spoken`, `cancelled`, `failed` or `no_audio` (provider turns).
    pub outcome: Option<String>,
    pub stt_ms: Option<f64>,
    pub llm_first_token_ms: Option<f64>,
    pub tts_first_byte_ms: Option<f64>,
    /// End of utterance to the first reply frame sent.
    pub first_audio_ms: Option<f64>,
    /// `fired`, then `cleared` once real reply audio replaced the filler.
    pub fallback: Option<String>,
    /// Provider errors of the turn, one per line.
    pub errors: Option<String>,
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// `+15550100000` → `+*******0000`: every digit or letter but the last
/// four is starred; punctuation stays, so the shape of the number does.
pub fn mask_number(number: &str) -> String {
    let keep_from = number.chars().count().saturating_sub(4);
    number.chars().enumerate().map(|(i, c)| if i < keep_from && c.is_alphanumeric() { '*' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_last_four_digits() {
        assert_eq!(mask_number("+15550100000"), "+*******0000");
        assert_eq!(mask_number("123"), "123");
        assert_eq!(mask_number("client:alice"), "******:*lice");
    }
}
