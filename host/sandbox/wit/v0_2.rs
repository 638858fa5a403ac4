//! `hotline:call@0.2.0`, released: its bindings and its conversions to and
//! from 0.3.0, the version after it. Components built against it keep
//! running: the host hands them its events converted down, and takes their
//! effects converted up (every 0.2.0 effect exists in 0.3.0). `v0_1.rs`
//! converts to and from these types, so 0.1.0 chains through here.

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.2.0",
        world: "agent",
    });
}

use bindings::hotline::call::types as old;
pub use old::{Effect, TwimlError};

use super as new;

/// The 0.3.0 event as 0.2.0 sees it; `None` when 0.2.0 has no way to say
/// it. What 0.3.0 added (answering-machine verdicts, tool calls, fetch
/// results, a failed transfer) is not delivered: a 0.2.0 session never asks
/// for a fetch or a transfer, and never offers tools, so it waits for none.
pub fn event(event: &new::Event) -> Option<old::Event> {
    Some(match event {
        new::Event::Started(s) => old::Event::Started(old::Started {
            stream_sid: s.stream_sid.clone(),
            call_sid: s.call_sid.clone(),
            custom_parameters: s.custom_parameters.clone(),
            config: config(&s.config),
        }),
        new::Event::Media(m) => {
            old::Event::Media(old::Media { payload: m.payload.clone(), timestamp_ms: m.timestamp_ms })
        }
        new::Event::MarkPlayed(name) => old::Event::MarkPlayed(name.clone()),
        new::Event::Dtmf(digit) => old::Event::Dtmf(*digit),
        new::Event::Timer(id) => old::Event::Timer(*id),
        new::Event::Transcript(t) => {
            old::Event::Transcript(old::Transcript { text: t.text.clone(), is_final: t.is_final })
        }
        new::Event::ReplyText(r) => old::Event::ReplyText(old::ReplyText { delta: r.delta.clone(), done: r.done }),
        new::Event::SpeechAudio(a) => old::Event::SpeechAudio(old::SpeechAudio {
            samples: a.samples.clone(),
            sample_rate: a.sample_rate,
            done: a.done,
        }),
        new::Event::ProviderError(e) => {
            let kind = match e.kind {
                new::ProviderKind::Stt => old::ProviderKind::Stt,
                new::ProviderKind::Llm => old::ProviderKind::Llm,
                new::ProviderKind::Tts => old::ProviderKind::Tts,
            };
            old::Event::ProviderError(old::ProviderError { kind, message: e.message.clone() })
        }
        new::Event::Restarted(r) => {
            old::Event::Restarted(old::Restart { reason: r.reason.clone(), work_dropped: r.work_dropped })
        }
        new::Event::AnsweredBy(_)
        | new::Event::ToolCalls(_)
        | new::Event::Fetched(_)
        | new::Event::TransferFailed(_) => {
            return None;
        }
        new::Event::Stopped => old::Event::Stopped,
    })
}

fn config(c: &new::Config) -> old::Config {
    old::Config {
        eou_silence_ms: c.eou_silence_ms,
        barge_in_ms: c.barge_in_ms,
        max_utterance_ms: c.max_utterance_ms,
        fallback_ms: c.fallback_ms,
        providers: old::Providers { stt: c.providers.stt, llm: c.providers.llm, tts: c.providers.tts },
        greeting: c.greeting.clone(),
        system_prompt: c.system_prompt.clone(),
    }
}

pub fn webhook(w: &new::Webhook) -> old::Webhook {
    let mode = match w.mode {
        new::CallMode::Stream => old::CallMode::Stream,
        new::CallMode::Record => old::CallMode::Record,
    };
    old::Webhook { params: w.params.clone(), base_url: w.base_url.clone(), mode }
}

impl From<old::TwimlError> for new::TwimlError {
    fn from(e: old::TwimlError) -> Self {
        match e {
            old::TwimlError::BadRequest(reason) => new::TwimlError::BadRequest(reason),
            old::TwimlError::Internal(reason) => new::TwimlError::Internal(reason),
        }
    }
}

impl From<old::Effect> for new::Effect {
    fn from(effect: old::Effect) -> Self {
        match effect {
            old::Effect::Play(audio) => new::Effect::Play(audio),
            old::Effect::Mark(name) => new::Effect::Mark(name),
            old::Effect::Clear => new::Effect::Clear,
            old::Effect::SetTimer(t) => new::Effect::SetTimer(new::Timer { id: t.id, ms: t.ms }),
            old::Effect::CancelTimer(id) => new::Effect::CancelTimer(id),
            old::Effect::Transcribe(u) => {
                new::Effect::Transcribe(new::Utterance { samples: u.samples, sample_rate: u.sample_rate })
            }
            old::Effect::Think(turns) => new::Effect::Think(new::Thought {
                turns: turns
                    .into_iter()
                    .map(|t| {
                        let role = match t.role {
                            old::Role::System => new::Role::System,
                            old::Role::User => new::Role::User,
                            old::Role::Assistant => new::Role::Assistant,
                        };
                        new::Turn { role, text: t.text, tool_calls: Vec::new(), tool_call_id: None }
                    })
                    .collect(),
                tools: Vec::new(),
            }),
            old::Effect::Speak(text) => new::Effect::Speak(text),
            old::Effect::Cancel => new::Effect::Cancel,
            old::Effect::Hangup => new::Effect::Hangup,
            old::Effect::Log(entry) => new::Effect::Log(new::LogEntry { event: entry.event, fields: entry.fields }),
        }
    }
}
