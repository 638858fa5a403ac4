//! The snapshot format: what a call needs to continue in another instance
//! of this guest, or in a newer version of it (live calls migrate between
//! guest versions by snapshot).
//!
//! The format is these types, not the machine's nor hotline-audio's (whose
//! continuing state they copy field by field): those may be reorganized
//! freely, and only a change here changes what is written. Such a change
//! bumps [`SNAPSHOT_SCHEMA`] and keeps a reader for the schema it replaces,
//! converting into the current machine ([`v3`]), so calls still held by an
//! older guest can move to this one.
//!
//! Schema 5 is schema 4 plus fields that are left out when empty (tool
//! turns, the tools, a pending ending, the transfer target): a call that
//! has none of them is written as schema 4, so an older guest can still
//! take it over (a rollback under live calls).
//!
//! JSON, with audio bytes as base64 strings: up to 15 s of audio, 3.5x
//! smaller than a JSON array of numbers and much faster to write and read.

mod v3;

use hotline_audio::chunked::ChunkedAudio;
use hotline_audio::endpoint::{Endpointer as AudioEndpointer, EndpointerState};
use hotline_audio::frame::Framer;
use hotline_audio::resample::{Resampler as AudioResampler, ResamplerState};
use hotline_audio::vad::VadState;
use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::bindings::hotline::call::types::{
    Role as CallRole, Tool as CallTool, ToolCall as CallToolCall, Turn as CallTurn,
};
use crate::machine::{self, Machine};

/// Bumped whenever the snapshot's shape changes.
pub const SNAPSHOT_SCHEMA: u32 = 5;
/// What schema 5 extends: written when nothing needs 5.
const SCHEMA_4: u32 = 4;

pub(crate) fn write(machine: &Machine) -> Vec<u8> {
    let snapshot = Snapshot::from(machine);
    // Sized up front: a buffer grown by doubling keeps two copies alive at
    // once, and the guest heap's high-water mark stays resident for the
    // whole call (this runs every half second of every call).
    let mut out = Vec::with_capacity(snapshot.size_hint());
    serde_json::to_writer(&mut out, &snapshot).expect("a snapshot always serializes");
    out
}

pub(crate) fn read(bytes: &[u8]) -> Result<Machine, String> {
    #[derive(Deserialize)]
    struct Header {
        schema: u32,
    }
    let header: Header = serde_json::from_slice(bytes).map_err(|e| format!("not a snapshot: {e}"))?;
    let snapshot = match header.schema {
        // Schema 4 is schema 5 without the fields 5 added.
        SNAPSHOT_SCHEMA | SCHEMA_4 => serde_json::from_slice::<Snapshot>(bytes),
        v3::SCHEMA => serde_json::from_slice::<v3::Snapshot>(bytes).map(Snapshot::from),
        other => {
            let known = format!("{}, {SCHEMA_4} or {SNAPSHOT_SCHEMA}", v3::SCHEMA);
            return Err(format!("snapshot schema {other} is not one this guest reads ({known})"));
        }
    };
    let snapshot = snapshot.map_err(|e| format!("bad snapshot: {e}"))?;
    snapshot.into_machine().map_err(|e| format!("bad snapshot: {e}"))
}

/// The current format, schema 5 (4 when its additions are all empty).
/// Written from a borrowed machine: the utterance (up to seconds of audio)
/// is not copied to be encoded.
#[derive(Serialize, Deserialize)]
struct Snapshot<'a> {
    schema: u32,
    state: State,
    /// `Started` has arrived (and the greeting was played).
    started: bool,
    /// Media time of the call so far.
    media_ms: u64,
    settings: Settings,
    caller: Caller<'a>,
    playback: Playback,
    ai: Ai,
    /// Since schema 5.
    #[serde(default, skip_serializing_if = "Tools::is_empty")]
    tools: Tools,
}

/// Since schema 5: the tools offered, the round in progress, the ending.
#[derive(Serialize, Deserialize, Default)]
struct Tools {
    /// Tools a wrapper offered (the built-ins follow from the settings).
    offered: Vec<Tool>,
    /// This round's calls, each with its result once it has one.
    calls: Vec<OpenCall>,
    /// The reply that made `calls` has ended.
    reply_done: bool,
    /// Round trips in this caller turn.
    rounds: u32,
    /// Ends the call once what plays is heard.
    ending: Option<Ending>,
}

impl Tools {
    fn is_empty(&self) -> bool {
        self.offered.is_empty()
            && self.calls.is_empty()
            && !self.reply_done
            && self.rounds == 0
            && self.ending.is_none()
    }
}

#[derive(Serialize, Deserialize)]
struct Tool {
    name: String,
    description: String,
    parameters: String,
}

#[derive(Serialize, Deserialize)]
struct ToolCall {
    id: String,
    name: String,
    arguments: String,
}

#[derive(Serialize, Deserialize)]
struct OpenCall {
    call: ToolCall,
    result: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Ending {
    Hangup,
    Transfer { target: String, caller_id: Option<String> },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum State {
    Listening,
    Thinking,
    Speaking,
    Ended,
}

/// The call's tuning, as clamped when it started.
#[derive(Serialize, Deserialize)]
struct Settings {
    eou_silence_ms: u32,
    barge_in_ms: u32,
    max_utterance_ms: u32,
    fallback_ms: u32,
    /// Providers are configured: the AI agent, not the echo agent.
    ai: bool,
    system_prompt: String,
    /// Since schema 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    transfer_to: Option<String>,
    /// Since schema 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    voicemail_message: Option<String>,
}

/// The caller's audio. The endpointer's configuration follows from the
/// settings and is not stored.
#[derive(Serialize, Deserialize)]
struct Caller<'a> {
    /// μ-law of the utterance in progress; between utterances, the pre-roll
    /// (200 to 400 ms), or in a call's first 2 s all the audio since it
    /// started (or since its last utterance): what the voice detector may
    /// look back over. An older guest that restores it trims it.
    #[serde(with = "base64_bytes::chunked")]
    utterance: Cow<'a, ChunkedAudio>,
    utterance_start_ms: u64,
    endpointer: Endpointer,
}

/// A copy of [`EndpointerState`].
#[derive(Serialize, Deserialize)]
struct Endpointer {
    in_utterance: bool,
    speech_ms: u32,
    silence_ms: u32,
    vad: Vad,
}

/// A copy of [`VadState`]: energies as RMS, 3.4028235e38 (`f32::MAX`) for "none yet".
#[derive(Serialize, Deserialize)]
struct Vad {
    block_min: f32,
    block_frames: u32,
    blocks: [f32; 4],
}

#[derive(Serialize, Deserialize)]
struct Playback {
    /// Replies started so far; names the marks.
    turn: u32,
    /// Segments of the reply being played, in order.
    segments: Vec<Segment>,
    /// Marks of segments a barge-in cut off, still to be echoed by Twilio.
    dropped_marks: Vec<String>,
    /// The whole reply is queued.
    reply_complete: bool,
}

#[derive(Serialize, Deserialize)]
struct Segment {
    mark: String,
    heard: bool,
    /// What the segment says, until it is recorded in the conversation.
    text: String,
}

#[derive(Serialize, Deserialize)]
struct Ai {
    awaiting: Awaiting,
    /// The conversation, without the system prompt.
    conversation: Vec<Turn>,
    /// Reply text not yet cut into a sentence.
    unspoken: String,
    /// Sentences asked to be spoken whose audio is not complete, in order.
    speaking: Vec<Segment>,
    /// Reply audio of this turn has arrived.
    audio_started: bool,
    /// Mark of the filler while it may still be playing.
    filler: Option<String>,
    /// The filler played this turn.
    filler_fired: bool,
    /// Mid-way through converting a sentence's audio.
    resampler: Option<Resampler>,
    /// Converted audio short of a whole frame.
    #[serde(with = "base64_bytes")]
    framer_carry: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Awaiting {
    Nothing,
    Transcript,
    Reply,
}

#[derive(Serialize, Deserialize)]
struct Turn {
    role: Role,
    text: String,
    /// Since schema 5: an assistant turn's calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCall>,
    /// Since schema 5: the call a `tool` turn answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<String>,
}

impl Turn {
    /// Schema 4 can say this turn.
    fn plain(&self) -> bool {
        self.tool_calls.is_empty() && self.tool_call_id.is_none() && !matches!(self.role, Role::Tool)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Role {
    System,
    User,
    Assistant,
    /// Since schema 5 (schema 4 had the name, never written).
    Tool,
}

/// A copy of [`ResamplerState`].
#[derive(Serialize, Deserialize)]
struct Resampler {
    in_rate: u32,
    out_rate: u32,
    history: Vec<f32>,
    pos: u64,
}

impl<'a> From<&'a Machine> for Snapshot<'a> {
    fn from(m: &'a Machine) -> Self {
        let endpointer = m.caller.endpointer.state();
        let mut snapshot = Snapshot {
            schema: SNAPSHOT_SCHEMA,
            state: m.state.into(),
            started: m.started,
            media_ms: m.media_ms,
            settings: Settings {
                eou_silence_ms: m.settings.eou_silence_ms,
                barge_in_ms: m.settings.barge_in_ms,
                max_utterance_ms: m.settings.max_utterance_ms,
                fallback_ms: m.settings.fallback_ms,
                ai: m.settings.ai,
                system_prompt: m.settings.system_prompt.clone(),
                transfer_to: m.settings.transfer_to.clone(),
                voicemail_message: m.settings.voicemail_message.clone(),
            },
            caller: Caller {
                utterance: Cow::Borrowed(&m.caller.utterance),
                utterance_start_ms: m.caller.utterance_start_ms,
                endpointer: Endpointer {
                    in_utterance: endpointer.in_utterance,
                    speech_ms: endpointer.speech_ms,
                    silence_ms: endpointer.silence_ms,
                    vad: Vad {
                        block_min: endpointer.vad.block_min,
                        block_frames: endpointer.vad.block_frames,
                        blocks: endpointer.vad.blocks,
                    },
                },
            },
            playback: Playback {
                turn: m.playback.turn,
                segments: m.playback.segments.iter().map(Segment::from).collect(),
                dropped_marks: m.playback.dropped_marks.clone(),
                reply_complete: m.playback.reply_complete,
            },
            ai: Ai {
                awaiting: m.ai.awaiting.into(),
                conversation: m.ai.conversation.iter().map(Turn::from).collect(),
                unspoken: m.ai.unspoken.clone(),
                speaking: m.ai.speaking.iter().map(Segment::from).collect(),
                audio_started: m.ai.audio_started,
                filler: m.ai.filler.clone(),
                filler_fired: m.ai.filler_fired,
                resampler: m.ai.resampler.as_ref().map(|r| {
                    let ResamplerState { in_rate, out_rate, history, pos } = r.state();
                    Resampler { in_rate, out_rate, history, pos }
                }),
                framer_carry: m.ai.framer.carry().to_vec(),
            },
            tools: Tools::from(&m.tools),
        };
        let needs_5 = !snapshot.tools.is_empty()
            || snapshot.settings.transfer_to.is_some()
            || snapshot.settings.voicemail_message.is_some()
            || !snapshot.ai.conversation.iter().all(Turn::plain);
        if !needs_5 {
            snapshot.schema = SCHEMA_4;
        }
        snapshot
    }
}

impl From<&machine::Tools> for Tools {
    fn from(t: &machine::Tools) -> Self {
        Tools {
            offered: t.offered.iter().map(Tool::from).collect(),
            calls: t
                .calls
                .iter()
                .map(|(call, result)| OpenCall { call: ToolCall::from(call), result: result.clone() })
                .collect(),
            reply_done: t.reply_done,
            rounds: t.rounds,
            ending: t.ending.as_ref().map(|e| match e {
                machine::Ending::Hangup => Ending::Hangup,
                machine::Ending::Transfer { target, caller_id } => {
                    Ending::Transfer { target: target.clone(), caller_id: caller_id.clone() }
                }
            }),
        }
    }
}

impl From<Tools> for machine::Tools {
    fn from(t: Tools) -> Self {
        machine::Tools {
            offered: t.offered.into_iter().map(CallTool::from).collect(),
            calls: t.calls.into_iter().map(|c| (CallToolCall::from(c.call), c.result)).collect(),
            reply_done: t.reply_done,
            rounds: t.rounds,
            ending: t.ending.map(|e| match e {
                Ending::Hangup => machine::Ending::Hangup,
                Ending::Transfer { target, caller_id } => machine::Ending::Transfer { target, caller_id },
            }),
        }
    }
}

impl From<&CallTool> for Tool {
    fn from(t: &CallTool) -> Self {
        Tool { name: t.name.clone(), description: t.description.clone(), parameters: t.parameters.clone() }
    }
}

impl From<Tool> for CallTool {
    fn from(t: Tool) -> Self {
        CallTool { name: t.name, description: t.description, parameters: t.parameters }
    }
}

impl From<&CallToolCall> for ToolCall {
    fn from(c: &CallToolCall) -> Self {
        ToolCall { id: c.id.clone(), name: c.name.clone(), arguments: c.arguments.clone() }
    }
}

impl From<ToolCall> for CallToolCall {
    fn from(c: ToolCall) -> Self {
        CallToolCall { id: c.id, name: c.name, arguments: c.arguments }
    }
}

impl Snapshot<'_> {
    /// About how many bytes the JSON takes (base64 is 4/3 of its bytes).
    fn size_hint(&self) -> usize {
        let texts = |segments: &[Segment]| segments.iter().map(|s| s.mark.len() + s.text.len() + 48).sum::<usize>();
        1024 + self.caller.utterance.len() * 4 / 3
            + self.settings.system_prompt.len()
            + texts(&self.playback.segments)
            + texts(&self.ai.speaking)
            + self.ai.conversation.iter().map(|t| t.text.len() + 32).sum::<usize>()
            + self.ai.unspoken.len()
            + self.ai.resampler.as_ref().map_or(0, |r| r.history.len() * 16)
            + self.ai.framer_carry.len() * 4 / 3
    }

    /// Refuses audio state the machine could not continue from.
    fn into_machine(self) -> Result<Machine, String> {
        let Snapshot { schema: _, state, started, media_ms, settings, caller, playback, ai, tools } = self;
        let settings = machine::Settings {
            eou_silence_ms: settings.eou_silence_ms,
            barge_in_ms: settings.barge_in_ms,
            max_utterance_ms: settings.max_utterance_ms,
            fallback_ms: settings.fallback_ms,
            ai: settings.ai,
            system_prompt: settings.system_prompt,
            transfer_to: settings.transfer_to,
            voicemail_message: settings.voicemail_message,
        };
        let Endpointer { in_utterance, speech_ms, silence_ms, vad } = caller.endpointer;
        let vad = VadState { block_min: vad.block_min, block_frames: vad.block_frames, blocks: vad.blocks };
        let endpointer = AudioEndpointer::from_state(
            settings.endpoint_config(),
            EndpointerState { vad, in_utterance, speech_ms, silence_ms },
        )?;
        let resampler = match ai.resampler {
            Some(Resampler { in_rate, out_rate, history, pos }) => {
                Some(AudioResampler::from_state(ResamplerState { in_rate, out_rate, history, pos })?)
            }
            None => None,
        };
        Ok(Machine {
            settings,
            state: state.into(),
            started,
            media_ms,
            caller: machine::Caller::new(endpointer, caller.utterance.into_owned(), caller.utterance_start_ms),
            playback: machine::Playback {
                turn: playback.turn,
                segments: playback.segments.into_iter().map(Segment::into).collect(),
                dropped_marks: playback.dropped_marks,
                reply_complete: playback.reply_complete,
            },
            ai: machine::Ai {
                awaiting: ai.awaiting.into(),
                conversation: ai.conversation.into_iter().map(Turn::into).collect(),
                unspoken: ai.unspoken,
                speaking: ai.speaking.into_iter().map(Segment::into).collect(),
                audio_started: ai.audio_started,
                filler: ai.filler,
                filler_fired: ai.filler_fired,
                resampler,
                framer: Framer::from_carry(ai.framer_carry)?,
            },
            tools: tools.into(),
        })
    }
}

impl From<&machine::Segment> for Segment {
    fn from(s: &machine::Segment) -> Self {
        Segment { mark: s.mark.clone(), heard: s.heard, text: s.text.clone() }
    }
}

impl From<Segment> for machine::Segment {
    fn from(s: Segment) -> Self {
        machine::Segment { mark: s.mark, heard: s.heard, text: s.text }
    }
}

impl From<&CallTurn> for Turn {
    fn from(t: &CallTurn) -> Self {
        Turn {
            role: t.role.into(),
            text: t.text.clone(),
            tool_calls: t.tool_calls.iter().map(ToolCall::from).collect(),
            tool_call_id: t.tool_call_id.clone(),
        }
    }
}

impl From<Turn> for CallTurn {
    fn from(t: Turn) -> Self {
        CallTurn {
            role: t.role.into(),
            text: t.text,
            tool_calls: t.tool_calls.into_iter().map(CallToolCall::from).collect(),
            tool_call_id: t.tool_call_id,
        }
    }
}

/// `From` both ways between a snapshot enum and the machine's enum of the
/// same variants: each variant is written once, so neither side can drop one.
macro_rules! same_variants {
    ($ours:ident, $theirs:ty, $($variant:ident),+) => {
        impl From<$ours> for $theirs {
            fn from(v: $ours) -> Self {
                match v {
                    $($ours::$variant => Self::$variant,)+
                }
            }
        }

        impl From<$theirs> for $ours {
            fn from(v: $theirs) -> Self {
                type Theirs = $theirs;
                match v {
                    $(Theirs::$variant => $ours::$variant,)+
                }
            }
        }
    };
}

same_variants!(State, machine::State, Listening, Thinking, Speaking, Ended);
same_variants!(Awaiting, machine::Awaiting, Nothing, Transcript, Reply);
same_variants!(Role, CallRole, System, User, Assistant, Tool);

mod base64_bytes {
    use std::fmt;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Written straight into the snapshot, 768 bytes of audio at a time
    /// through a buffer on the stack. Encoding into a string of its own first held
    /// a second, larger copy of the audio at the snapshot's busiest moment,
    /// and the guest's heap keeps its high-water mark for the whole call;
    /// `Base64Display` wrote through `fmt` a few bytes at a time, slower
    /// than the encoding itself.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&Encoded(std::iter::once(bytes)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: From<Vec<u8>>>(d: D) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map(T::from).map_err(serde::de::Error::custom)
    }

    /// The caller's audio, written from the chunks it is kept in.
    pub mod chunked {
        use std::borrow::Cow;

        use hotline_audio::chunked::ChunkedAudio;
        use serde::{Deserializer, Serializer};

        // serde's `with` passes the field by reference: `&Cow` is its shape.
        #[allow(clippy::ptr_arg)]
        pub fn serialize<S: Serializer>(audio: &Cow<'_, ChunkedAudio>, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&super::Encoded(audio.slices()))
        }

        pub fn deserialize<'de, 'a, D: Deserializer<'de>>(d: D) -> Result<Cow<'a, ChunkedAudio>, D::Error> {
            let bytes: Vec<u8> = super::deserialize(d)?;
            Ok(Cow::Owned(ChunkedAudio::from(&bytes[..])))
        }
    }

    /// Base64 of the pieces' bytes, one after another.
    struct Encoded<I>(I);

    impl<'a, I: Iterator<Item = &'a [u8]> + Clone> fmt::Display for Encoded<I> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            // A multiple of 3 bytes: no padding but at the very end.
            const IN: usize = 768;
            let mut input = [0u8; IN];
            let mut filled = 0;
            let mut out = [0u8; IN / 3 * 4];
            let mut encode = |input: &[u8]| {
                let n = STANDARD.encode_slice(input, &mut out).map_err(|_| fmt::Error)?;
                f.write_str(std::str::from_utf8(&out[..n]).map_err(|_| fmt::Error)?)
            };
            for mut piece in self.0.clone() {
                while !piece.is_empty() {
                    let n = (IN - filled).min(piece.len());
                    input[filled..filled + n].copy_from_slice(&piece[..n]);
                    filled += n;
                    piece = &piece[n..];
                    if filled == IN {
                        encode(&input)?;
                        filled = 0;
                    }
                }
            }
            encode(&input[..filled])
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
