//! Schema 3, read only, so calls still held by guests that write it can
//! move to this one. It was the machine's own structs as serde derived them
//! (private fields of hotline-audio included); the types here mirror that
//! JSON as it was: field names, unit enum variants as their Rust names, the
//! conversation as `[role, text]` pairs, the utterance in base64, the
//! framer's carry-over as an array of numbers. Frozen: never change them.

use serde::Deserialize;

use super::base64_bytes;

pub(super) const SCHEMA: u32 = 3;

#[derive(Deserialize)]
pub(super) struct Snapshot {
    #[expect(dead_code, reason = "read by the header")]
    schema: u32,
    settings: Settings,
    state: State,
    started: bool,
    #[expect(dead_code, reason = "always equal to `started`: both were set by `Started`")]
    greeted: bool,
    #[expect(dead_code, reason = "only ever logged when the call started")]
    call_sid: String,
    media_ms: u64,
    endpointer: Endpointer,
    #[serde(with = "base64_bytes")]
    utterance: Vec<u8>,
    utterance_start_ms: u64,
    turn: u32,
    segments: Vec<Segment>,
    dropped_marks: Vec<String>,
    reply_complete: bool,
    awaiting: Awaiting,
    conversation: Vec<(RoleTag, String)>,
    unspoken: String,
    speaking: Vec<Segment>,
    audio_started: bool,
    filler: Option<String>,
    filler_fired: bool,
    resampler: Option<Resampler>,
    framer: Framer,
    // `pcm`, a scratch buffer, was `#[serde(skip)]`: never written.
}

#[derive(Deserialize)]
struct Settings {
    eou_silence_ms: u32,
    barge_in_ms: u32,
    max_utterance_ms: u32,
    fallback_ms: u32,
    ai: bool,
    #[expect(dead_code, reason = "only used when the call started")]
    greeting: String,
    system_prompt: String,
}

#[derive(Deserialize)]
enum State {
    Listening,
    Thinking,
    Speaking,
    Ended,
}

#[derive(Deserialize)]
struct Endpointer {
    #[expect(dead_code, reason = "always the settings' silence and the default minimum speech")]
    config: EndpointConfig,
    vad: Vad,
    in_utterance: bool,
    speech_ms: u32,
    silence_ms: u32,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "see `Endpointer::config`")]
struct EndpointConfig {
    eou_silence_ms: u32,
    min_speech_ms: u32,
}

#[derive(Deserialize)]
struct Vad {
    block_min: f32,
    block_frames: u32,
    blocks: [f32; 4],
}

#[derive(Deserialize)]
struct Segment {
    mark: String,
    heard: bool,
    text: String,
}

#[derive(Deserialize)]
enum Awaiting {
    Nothing,
    Transcript,
    Reply,
}

#[derive(Deserialize)]
enum RoleTag {
    User,
    Assistant,
}

#[derive(Deserialize)]
struct Resampler {
    in_rate: u32,
    out_rate: u32,
    history: Vec<f32>,
    pos: u64,
    // `table`, a cache, was `#[serde(skip)]`: never written.
}

#[derive(Deserialize)]
struct Framer {
    pending: Vec<u8>,
}

impl From<Snapshot> for super::Snapshot<'static> {
    fn from(v3: Snapshot) -> Self {
        let Snapshot {
            settings,
            state,
            started,
            media_ms,
            endpointer,
            utterance,
            utterance_start_ms,
            turn,
            segments,
            dropped_marks,
            reply_complete,
            awaiting,
            conversation,
            unspoken,
            speaking,
            audio_started,
            filler,
            filler_fired,
            resampler,
            framer,
            ..
        } = v3;
        let vad = endpointer.vad;
        let segments_of = |list: Vec<Segment>| {
            list.into_iter().map(|s| super::Segment { mark: s.mark, heard: s.heard, text: s.text }).collect()
        };
        super::Snapshot {
            schema: super::SNAPSHOT_SCHEMA,
            state: match state {
                State::Listening => super::State::Listening,
                State::Thinking => super::State::Thinking,
                State::Speaking => super::State::Speaking,
                State::Ended => super::State::Ended,
            },
            started,
            media_ms,
            settings: super::Settings {
                eou_silence_ms: settings.eou_silence_ms,
                barge_in_ms: settings.barge_in_ms,
                max_utterance_ms: settings.max_utterance_ms,
                fallback_ms: settings.fallback_ms,
                ai: settings.ai,
                system_prompt: settings.system_prompt,
                transfer_to: None,
                voicemail_message: None,
            },
            caller: super::Caller {
                utterance: std::borrow::Cow::Owned(utterance.as_slice().into()),
                utterance_start_ms,
                endpointer: super::Endpointer {
                    in_utterance: endpointer.in_utterance,
                    speech_ms: endpointer.speech_ms,
                    silence_ms: endpointer.silence_ms,
                    vad: super::Vad { block_min: vad.block_min, block_frames: vad.block_frames, blocks: vad.blocks },
                },
            },
            playback: super::Playback { turn, segments: segments_of(segments), dropped_marks, reply_complete },
            ai: super::Ai {
                awaiting: match awaiting {
                    Awaiting::Nothing => super::Awaiting::Nothing,
                    Awaiting::Transcript => super::Awaiting::Transcript,
                    Awaiting::Reply => super::Awaiting::Reply,
                },
                conversation: conversation
                    .into_iter()
                    .map(|(role, text)| super::Turn {
                        role: match role {
                            RoleTag::User => super::Role::User,
                            RoleTag::Assistant => super::Role::Assistant,
                        },
                        text,
                        tool_calls: Vec::new(),
                        tool_call_id: None,
                    })
                    .collect(),
                unspoken,
                speaking: segments_of(speaking),
                audio_started,
                filler,
                filler_fired,
                resampler: resampler.map(|r| super::Resampler {
                    in_rate: r.in_rate,
                    out_rate: r.out_rate,
                    history: r.history,
                    pos: r.pos,
                }),
                framer_carry: framer.pending,
            },
            tools: super::Tools::default(),
        }
    }
}
