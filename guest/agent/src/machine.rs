//! The per-call turn-taking state machine:
//! `LISTENING → THINKING → SPEAKING → LISTENING`.
//!
//! Time is media time: the machine counts the samples it is handed, so the
//! same audio always yields the same decisions, in a test or on a call.
//!
//! With no providers configured it is an echo agent: each utterance is
//! played back to the caller. With providers it asks the host to transcribe,
//! think and speak, through the same effects: the reply is spoken sentence
//! by sentence as the LLM streams it, a filler covers a slow turn, an
//! apology covers a failed one, and a barge-in cancels whatever is in
//! flight and keeps in the history only what the caller heard.

use hotline_audio::endpoint::{Boundary, EndpointConfig, Endpointer};
use hotline_audio::frame::Framer;
use hotline_audio::resample::Resampler;
use hotline_audio::{FRAME_BYTES, SAMPLE_RATE, samples_to_ms, ulaw};
use serde::{Deserialize, Serialize};

use crate::bindings::hotline::call::types::{
    Config, Effect, Event, LogEntry, ProviderError, ReplyText, Role, SpeechAudio, Started, Timer, Transcript,
    Turn, Utterance,
};

/// Bumped whenever the snapshot's shape changes.
pub const SNAPSHOT_SCHEMA: u32 = 3;

/// Caller audio kept from before speech onset, so the first syllable is not
/// clipped by the detector's reaction time.
const PREROLL_BYTES: usize = 200 * SAMPLE_RATE as usize / 1000;
/// One echo segment (and one mark) per second of reply audio.
const SEGMENT_BYTES: usize = 50 * FRAME_BYTES;
/// Trailing silence kept at the end of an echoed utterance.
const ECHO_TAIL_MS: u32 = 100;
const GREETING_MARK: &str = "greeting";
const GREETING_TEXT: &str = "Hello! This is hotline. How can I help?";
const SYSTEM_PROMPT: &str = "You are a friendly phone agent. Answer in one or two short spoken sentences.";
/// Timer id of the fallback filler (ids are per call and the guest's own).
const FALLBACK_TIMER: u32 = 1;
/// μ-law 8 kHz prompts shipped inside the guest (`scripts/make-prompts.sh`):
/// the echo agent's greeting, the filler for a slow turn ("One moment.")
/// and the apology for a failed one.
static GREETING_AUDIO: &[u8] = include_bytes!("../assets/greeting.ulaw");
static FILLER_AUDIO: &[u8] = include_bytes!("../assets/filler.ulaw");
static APOLOGY_AUDIO: &[u8] = include_bytes!("../assets/apology.ulaw");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Listening,
    Thinking,
    Speaking,
    Ended,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Listening => "listening",
            State::Thinking => "thinking",
            State::Speaking => "speaking",
            State::Ended => "ended",
        }
    }
}

/// What a THINKING call waits for from the host's providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Awaiting {
    Nothing,
    Transcript,
    Reply,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Settings {
    eou_silence_ms: u32,
    barge_in_ms: u32,
    max_utterance_ms: u32,
    /// 0 disables the filler.
    fallback_ms: u32,
    ai: bool,
    greeting: String,
    system_prompt: String,
}

impl From<&Config> for Settings {
    fn from(c: &Config) -> Self {
        let text = |v: &Option<String>, default: &str| {
            v.as_deref().map(str::trim).filter(|t| !t.is_empty()).unwrap_or(default).to_string()
        };
        Settings {
            eou_silence_ms: c.eou_silence_ms.clamp(100, 5000),
            barge_in_ms: c.barge_in_ms.clamp(20, 2000),
            max_utterance_ms: c.max_utterance_ms.clamp(1000, 120_000),
            fallback_ms: c.fallback_ms.min(60_000),
            ai: c.providers.stt && c.providers.llm && c.providers.tts,
            greeting: text(&c.greeting, GREETING_TEXT),
            system_prompt: text(&c.system_prompt, SYSTEM_PROMPT),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            eou_silence_ms: 500,
            barge_in_ms: 80,
            max_utterance_ms: 15_000,
            fallback_ms: 3000,
            ai: false,
            greeting: GREETING_TEXT.to_string(),
            system_prompt: SYSTEM_PROMPT.to_string(),
        }
    }
}

/// A played piece of a reply, closed by a mark of the same name.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Segment {
    mark: String,
    heard: bool,
    /// What the piece says, for the history; empty for echoes and prompts.
    text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    schema: u32,
    settings: Settings,
    state: State,
    started: bool,
    greeted: bool,
    call_sid: String,
    /// Media time seen so far, from the sample count.
    media_ms: u64,
    endpointer: Endpointer,
    /// μ-law of the utterance in progress; between utterances, the pre-roll.
    /// Base64 in the snapshot: up to 15 s of audio, 3.5x smaller than a
    /// JSON array of numbers and much faster to write and read.
    #[serde(with = "base64_bytes")]
    utterance: Vec<u8>,
    utterance_start_ms: u64,
    /// Replies started so far; names the marks.
    turn: u32,
    /// Segments of the reply being spoken, in order.
    segments: Vec<Segment>,
    /// Marks of segments cut off by a barge-in: Twilio still echoes them.
    dropped_marks: Vec<String>,
    /// The reply is fully handed to the host (its last mark is queued).
    reply_complete: bool,
    awaiting: Awaiting,
    conversation: Vec<(RoleTag, String)>,
    /// Reply text not yet cut into a sentence.
    unspoken: String,
    /// Speak requests whose audio has not fully arrived, in order; each
    /// becomes a segment when its audio is complete.
    speaking: Vec<Segment>,
    /// Reply audio of the current turn has begun to play.
    audio_started: bool,
    /// Mark of the filler while it may still be playing.
    filler: Option<String>,
    /// The filler played this turn (so its end is logged once).
    filler_fired: bool,
    resampler: Option<Resampler>,
    framer: Framer,
    #[serde(skip)]
    pcm: Vec<i16>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum RoleTag {
    User,
    Assistant,
}

impl Default for Machine {
    fn default() -> Self {
        let settings = Settings::default();
        Machine {
            schema: SNAPSHOT_SCHEMA,
            endpointer: Endpointer::new(endpoint_config(&settings)),
            settings,
            state: State::Listening,
            started: false,
            greeted: false,
            call_sid: String::new(),
            media_ms: 0,
            utterance: Vec::new(),
            utterance_start_ms: 0,
            turn: 0,
            segments: Vec::new(),
            dropped_marks: Vec::new(),
            reply_complete: false,
            awaiting: Awaiting::Nothing,
            conversation: Vec::new(),
            unspoken: String::new(),
            speaking: Vec::new(),
            audio_started: false,
            filler: None,
            filler_fired: false,
            resampler: None,
            framer: Framer::new(),
            pcm: Vec::with_capacity(FRAME_BYTES),
        }
    }
}

fn endpoint_config(s: &Settings) -> EndpointConfig {
    EndpointConfig { eou_silence_ms: s.eou_silence_ms, ..EndpointConfig::default() }
}

fn log(event: &str, fields: &[(&str, String)]) -> Effect {
    Effect::Log(LogEntry {
        event: event.to_string(),
        fields: fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
    })
}

impl Machine {
    pub fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("machine state always serializes")
    }

    pub fn restore(bytes: &[u8]) -> Result<Machine, String> {
        #[derive(Deserialize)]
        struct Header {
            schema: u32,
        }
        let header: Header = serde_json::from_slice(bytes).map_err(|e| format!("not a snapshot: {e}"))?;
        if header.schema != SNAPSHOT_SCHEMA {
            return Err(format!("snapshot schema {} is not {SNAPSHOT_SCHEMA}", header.schema));
        }
        serde_json::from_slice(bytes).map_err(|e| format!("bad snapshot: {e}"))
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn handle(&mut self, event: Event) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.state == State::Ended {
            return fx;
        }
        match event {
            Event::Started(s) => self.on_started(s, &mut fx),
            Event::Media(m) => self.on_media(&m.payload, &mut fx),
            Event::MarkPlayed(name) => self.on_mark(name, &mut fx),
            Event::Dtmf(digit) => fx.push(log("dtmf", &[("digit", digit.to_string())])),
            Event::Timer(FALLBACK_TIMER) => self.on_fallback_timer(&mut fx),
            Event::Timer(id) => fx.push(log("timer_unexpected", &[("id", id.to_string())])),
            Event::Transcript(t) => self.on_transcript(t, &mut fx),
            Event::ReplyText(r) => self.on_reply_text(r, &mut fx),
            Event::SpeechAudio(a) => self.on_speech_audio(a, &mut fx),
            Event::ProviderError(e) => self.on_provider_error(e, &mut fx),
            Event::Stopped => {
                fx.push(log("call_end", &[("turns", self.turn.to_string()), ("media_ms", self.media_ms.to_string())]));
                self.set_state(State::Ended, &mut fx);
            }
        }
        fx
    }

    fn set_state(&mut self, to: State, fx: &mut Vec<Effect>) {
        if self.state != to {
            fx.push(log(
                "state",
                &[("from", self.state.name().into()), ("to", to.name().into()), ("at_ms", self.media_ms.to_string())],
            ));
            self.state = to;
        }
    }

    fn on_started(&mut self, s: Started, fx: &mut Vec<Effect>) {
        if self.started {
            fx.push(log("start_repeated", &[]));
            return;
        }
        self.started = true;
        self.settings = Settings::from(&s.config);
        self.endpointer = Endpointer::new(endpoint_config(&self.settings));
        self.call_sid = s.call_sid;
        let agent = if self.settings.ai { "ai" } else { "echo" };
        fx.push(log("agent", &[("mode", agent.into()), ("call_sid", self.call_sid.clone())]));
        if !self.greeted {
            self.greeted = true;
            self.begin_reply(fx);
            if self.settings.ai {
                self.speak(self.settings.greeting.clone(), fx);
            } else {
                self.play_segment(GREETING_AUDIO.to_vec(), GREETING_MARK.to_string(), String::new(), fx);
            }
            self.reply_complete = true;
        }
    }

    // ---- caller audio ----------------------------------------------------

    fn on_media(&mut self, payload: &[u8], fx: &mut Vec<Effect>) {
        if !self.started {
            return;
        }
        self.pcm.clear();
        ulaw::decode_into(payload, &mut self.pcm);
        self.media_ms += samples_to_ms(payload.len()) as u64;
        let boundary = self.endpointer.push(&self.pcm);
        self.utterance.extend_from_slice(payload);
        match boundary {
            Some(Boundary::SpeechStart) => {
                self.utterance_start_ms = self.media_ms.saturating_sub(samples_to_ms(self.utterance.len()) as u64);
                fx.push(log("speech_start", &[("at_ms", self.media_ms.to_string())]));
            }
            Some(Boundary::EndOfUtterance { speech_ms }) => {
                self.on_end_of_utterance(speech_ms, fx);
                return;
            }
            Some(Boundary::Noise) => {
                fx.push(log("vad_noise", &[("at_ms", self.media_ms.to_string())]));
            }
            None => {}
        }
        if self.endpointer.in_utterance() {
            if self.state == State::Speaking && self.endpointer.speech_ms() >= self.settings.barge_in_ms {
                self.barge_in(fx);
            } else if self.state == State::Thinking && self.endpointer.speech_ms() >= self.settings.barge_in_ms {
                // The caller goes on talking: the pending reply is stale.
                fx.push(log("think_abandoned", &[("turn", self.turn.to_string())]));
                self.stop_filler(fx);
                self.forget_provider_work(fx);
                self.set_state(State::Listening, fx);
            }
            let max_bytes = self.settings.max_utterance_ms as usize * SAMPLE_RATE as usize / 1000;
            if self.utterance.len() >= max_bytes {
                let speech_ms = self.endpointer.cut();
                fx.push(log("utterance_cut", &[("at_ms", self.media_ms.to_string())]));
                self.on_end_of_utterance(speech_ms, fx);
            }
        } else if self.utterance.len() > PREROLL_BYTES {
            let excess = self.utterance.len() - PREROLL_BYTES;
            self.utterance.drain(..excess);
        }
    }

    fn on_end_of_utterance(&mut self, speech_ms: u32, fx: &mut Vec<Effect>) {
        let utterance = std::mem::take(&mut self.utterance);
        if self.state != State::Listening {
            // Speech too short to barge in while the agent talks: ignore it.
            fx.push(log("speech_ignored", &[("speech_ms", speech_ms.to_string()), ("state", self.state.name().into())]));
            return;
        }
        self.turn += 1;
        fx.push(log(
            "eou",
            &[
                ("turn", self.turn.to_string()),
                ("at_ms", self.media_ms.to_string()),
                ("speech_ms", speech_ms.to_string()),
                ("utterance_ms", samples_to_ms(utterance.len()).to_string()),
                ("started_ms", self.utterance_start_ms.to_string()),
            ],
        ));
        self.set_state(State::Thinking, fx);
        if self.settings.ai {
            let mut samples = Vec::with_capacity(utterance.len());
            ulaw::decode_into(&utterance, &mut samples);
            self.awaiting = Awaiting::Transcript;
            self.audio_started = false;
            self.filler_fired = false;
            fx.push(Effect::Transcribe(Utterance { samples, sample_rate: SAMPLE_RATE }));
            if self.settings.fallback_ms > 0 {
                fx.push(Effect::SetTimer(Timer { id: FALLBACK_TIMER, ms: self.settings.fallback_ms }));
            }
        } else {
            self.echo(utterance, fx);
        }
    }

    fn echo(&mut self, mut utterance: Vec<u8>, fx: &mut Vec<Effect>) {
        let silence_ms = self.endpointer.config().eou_silence_ms.saturating_sub(ECHO_TAIL_MS);
        let trim = (silence_ms as usize * SAMPLE_RATE as usize / 1000).min(utterance.len());
        utterance.truncate(utterance.len() - trim);
        self.begin_reply(fx);
        let turn = self.turn;
        for (i, chunk) in utterance.chunks(SEGMENT_BYTES).enumerate() {
            self.play_segment(chunk.to_vec(), format!("t{turn}-s{i}"), String::new(), fx);
        }
        self.reply_complete = true;
    }

    fn barge_in(&mut self, fx: &mut Vec<Effect>) {
        let heard: Vec<&str> = self.segments.iter().filter(|s| s.heard).map(|s| s.mark.as_str()).collect();
        let unheard: Vec<String> = self.segments.iter().filter(|s| !s.heard).map(|s| s.mark.clone()).collect();
        fx.push(Effect::Clear);
        fx.push(log(
            "barge_in",
            &[
                ("at_ms", self.media_ms.to_string()),
                ("speech_ms", self.endpointer.speech_ms().to_string()),
                ("heard", heard.join(",")),
                ("unheard", unheard.join(",")),
            ],
        ));
        self.record_heard_reply();
        self.dropped_marks.extend(unheard);
        self.segments.clear();
        // The clear dropped the filler too, if it was playing.
        self.dropped_marks.extend(self.filler.take());
        self.forget_provider_work(fx);
        self.set_state(State::Listening, fx);
    }

    // ---- playback accounting ---------------------------------------------

    fn begin_reply(&mut self, fx: &mut Vec<Effect>) {
        self.segments.clear();
        self.reply_complete = false;
        self.unspoken.clear();
        self.set_state(State::Speaking, fx);
    }

    /// Plays `audio` (padded to whole frames) followed by its mark.
    fn play_segment(&mut self, audio: Vec<u8>, mark: String, text: String, fx: &mut Vec<Effect>) {
        play_with_mark(audio, &mark, fx);
        self.segments.push(Segment { mark, heard: false, text });
    }

    fn on_mark(&mut self, name: String, fx: &mut Vec<Effect>) {
        if let Some(pos) = self.dropped_marks.iter().position(|m| *m == name) {
            self.dropped_marks.remove(pos);
            fx.push(log("mark_dropped", &[("name", name)]));
            return;
        }
        if self.filler.as_deref() == Some(name.as_str()) {
            self.filler = None; // played to its end
            return;
        }
        let Some(segment) = self.segments.iter_mut().find(|s| s.mark == name) else {
            fx.push(log("mark_unknown", &[("name", name)]));
            return;
        };
        segment.heard = true;
        let all_heard = self.segments.iter().all(|s| s.heard);
        if self.state == State::Speaking && self.reply_complete && self.speaking.is_empty() && all_heard {
            fx.push(log("reply_done", &[("turn", self.turn.to_string()), ("segments", self.segments.len().to_string())]));
            self.record_heard_reply();
            self.segments.clear();
            self.set_state(State::Listening, fx);
        }
    }

    /// Keeps in the conversation only what the caller actually heard:
    /// the sentences whose marks came back.
    fn record_heard_reply(&mut self) {
        let heard: Vec<&str> =
            self.segments.iter().filter(|s| s.heard && !s.text.is_empty()).map(|s| s.text.as_str()).collect();
        if self.settings.ai && !heard.is_empty() {
            self.conversation.push((RoleTag::Assistant, heard.join(" ")));
        }
        // Recorded once: a segment's text is not counted again.
        self.segments.iter_mut().for_each(|s| s.text.clear());
    }

    // ---- providers (STT → LLM → TTS) ---------------------------------------

    fn on_transcript(&mut self, t: Transcript, fx: &mut Vec<Effect>) {
        if self.awaiting != Awaiting::Transcript || !t.is_final {
            return;
        }
        let text = t.text.trim().to_string();
        fx.push(log("stt_final", &[("chars", text.len().to_string())]));
        if text.is_empty() {
            self.forget_provider_work(fx);
            self.set_state(State::Listening, fx);
            return;
        }
        self.conversation.push((RoleTag::User, text));
        self.awaiting = Awaiting::Reply;
        let mut turns = vec![Turn { role: Role::System, text: self.settings.system_prompt.clone() }];
        turns.extend(self.conversation.iter().map(|(role, text)| Turn {
            role: match role {
                RoleTag::User => Role::User,
                RoleTag::Assistant => Role::Assistant,
            },
            text: text.clone(),
        }));
        fx.push(Effect::Think(turns));
    }

    fn on_reply_text(&mut self, r: ReplyText, fx: &mut Vec<Effect>) {
        if self.awaiting != Awaiting::Reply {
            return;
        }
        if self.state == State::Thinking {
            self.begin_reply(fx);
        }
        self.unspoken.push_str(&r.delta);
        while let Some(end) = sentence_end(&self.unspoken) {
            let sentence: String = self.unspoken.drain(..end).collect();
            self.speak(sentence.trim().to_string(), fx);
        }
        if r.done {
            let rest = std::mem::take(&mut self.unspoken);
            if !rest.trim().is_empty() {
                self.speak(rest.trim().to_string(), fx);
            }
            self.awaiting = Awaiting::Nothing;
            self.reply_complete = true;
            if self.speaking.is_empty() && self.segments.is_empty() {
                self.stop_filler(fx);
                self.set_state(State::Listening, fx);
            }
        }
    }

    fn speak(&mut self, text: String, fx: &mut Vec<Effect>) {
        if text.is_empty() {
            return;
        }
        let mark = format!("t{}-s{}", self.turn, self.segments.len() + self.speaking.len());
        self.speaking.push(Segment { mark, heard: false, text: text.clone() });
        fx.push(Effect::Speak(text));
    }

    fn on_speech_audio(&mut self, a: SpeechAudio, fx: &mut Vec<Effect>) {
        if self.speaking.is_empty() {
            return; // audio for a reply a barge-in already cancelled
        }
        if !self.audio_started {
            self.audio_started = true;
            fx.push(Effect::CancelTimer(FALLBACK_TIMER));
            self.stop_filler(fx);
        }
        let resampler = self.resampler.get_or_insert_with(|| Resampler::new(a.sample_rate, SAMPLE_RATE));
        if resampler.in_rate() != a.sample_rate {
            *resampler = Resampler::new(a.sample_rate, SAMPLE_RATE);
        }
        let mut pcm = resampler.process(&a.samples);
        if a.done {
            pcm.extend(resampler.flush());
        }
        let mut frames = self.framer.push_pcm(&pcm);
        if a.done {
            frames.extend(self.framer.flush());
        }
        if !frames.is_empty() {
            fx.push(Effect::Play(frames));
        }
        if a.done {
            let segment = self.speaking.remove(0);
            fx.push(Effect::Mark(segment.mark.clone()));
            self.segments.push(segment);
            self.resampler = None;
        }
    }

    /// The turn is slow: cover the silence, once, until real audio comes.
    fn on_fallback_timer(&mut self, fx: &mut Vec<Effect>) {
        let waiting = self.awaiting != Awaiting::Nothing || !self.speaking.is_empty();
        if !waiting || self.audio_started || self.filler_fired {
            return;
        }
        let mark = format!("t{}-filler", self.turn);
        fx.push(log("fallback_fired", &[("turn", self.turn.to_string()), ("after_ms", self.settings.fallback_ms.to_string())]));
        play_with_mark(FILLER_AUDIO.to_vec(), &mark, fx);
        self.filler = Some(mark);
        self.filler_fired = true;
    }

    /// Ends the filler's part in the turn: cut it if it is still playing.
    fn stop_filler(&mut self, fx: &mut Vec<Effect>) {
        if !self.filler_fired {
            return;
        }
        self.filler_fired = false;
        let cut = self.filler.is_some();
        if let Some(mark) = self.filler.take() {
            fx.push(Effect::Clear);
            self.dropped_marks.push(mark); // Twilio echoes the marks a clear drops
        }
        fx.push(log("fallback_cleared", &[("turn", self.turn.to_string()), ("cut", cut.to_string())]));
    }

    /// Stops waiting for transcripts, replies and speech, and asks the host
    /// to abort those requests: results that still arrive for them are
    /// ignored, half-converted audio is dropped.
    fn forget_provider_work(&mut self, fx: &mut Vec<Effect>) {
        if !self.settings.ai {
            return;
        }
        let in_flight = self.awaiting != Awaiting::Nothing || !self.speaking.is_empty();
        self.awaiting = Awaiting::Nothing;
        self.speaking.clear();
        self.unspoken.clear();
        self.resampler = None;
        self.framer = Framer::new();
        fx.push(Effect::CancelTimer(FALLBACK_TIMER));
        if in_flight {
            fx.push(Effect::Cancel);
        }
    }

    fn on_provider_error(&mut self, e: ProviderError, fx: &mut Vec<Effect>) {
        fx.push(log("provider_error", &[("kind", format!("{:?}", e.kind).to_lowercase()), ("message", e.message)]));
        if self.state == State::Listening || self.state == State::Ended {
            return; // nothing of this turn is left to save
        }
        // The turn cannot be finished: drop the rest of its work, let what
        // is already queued play, then apologize and listen again.
        self.stop_filler(fx);
        self.forget_provider_work(fx);
        if self.state == State::Thinking {
            self.begin_reply(fx);
        }
        let mark = format!("t{}-apology", self.turn);
        self.play_segment(APOLOGY_AUDIO.to_vec(), mark, String::new(), fx);
        self.reply_complete = true;
    }
}

/// Plays `audio` (padded to whole frames) followed by its mark.
fn play_with_mark(mut audio: Vec<u8>, mark: &str, fx: &mut Vec<Effect>) {
    let whole = audio.len().div_ceil(FRAME_BYTES) * FRAME_BYTES;
    audio.resize(whole, ulaw::SILENCE);
    if !audio.is_empty() {
        fx.push(Effect::Play(audio));
    }
    fx.push(Effect::Mark(mark.to_string()));
}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// Byte index just past the first complete sentence, if any.
fn sentence_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(1))
        .find(|&i| matches!(bytes[i], b'.' | b'!' | b'?') && bytes[i + 1].is_ascii_whitespace())
        .map(|i| i + 1)
}
