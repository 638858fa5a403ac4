//! Data-driven tests of a call-logic component, run in the same sandbox as
//! `serve`, with no network: the engine behind `hotline guest test`
//! (`cli/guest_test.rs`) and the smoke scenario every new version must pass
//! (`versions/smoke.jsonl`).
//!
//! A scenario is a JSON Lines file: one step per line, `#` starts a comment.
//! Steps feed events in (`start`, `silence`, `tone`, `wav`, `mark_played`,
//! `ack_marks`, `dtmf`, `timer`, `stop`, `twiml` for the webhook, and what
//! the host's providers would answer: `transcript`, `reply`, `tool_calls`,
//! `speech`, `provider_error`; the host's answer to a `fetch`: `fetched`), and
//! `expect` checks the effects seen since the previous `expect`. Media time
//! advances 20 ms per frame; every effect is stamped with it.
//! docs/guests.md describes every field.

use std::path::{Path, PathBuf};

use anyhow::Context;
use hotline_audio::frame::ulaw_frames;
use serde::Deserialize;

use crate::config::Config;
use crate::sandbox::wit::{self, Effect, Event};
use crate::sandbox::{Guest, Session};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Step {
    /// Call settings for the following `start`: unset ones are the
    /// server's defaults, and every value must be one the server accepts.
    Config(ScenarioConfig),
    /// Calls `incoming-call`; the TwiML is kept for `twiml_contains`.
    Twiml(TwimlStep),
    Start(StartStep),
    /// Milliseconds of digital silence.
    Silence(u32),
    /// A voice-band tone: speech, as far as an energy detector can tell.
    Tone(ToneStep),
    /// A WAV file (any rate/format), relative to the scenario file.
    Wav(PathBuf),
    MarkPlayed(String),
    /// Acknowledges every mark sent so far, as Twilio does after playback.
    AckMarks {},
    Dtmf(char),
    Timer(u32),
    Stop {},
    /// Snapshots the session and continues the call on a fresh instance
    /// restored from it (what a migration or a recovery does).
    Snapshot {},
    /// A final transcript, as speech-to-text would answer `transcribe`.
    Transcript(String),
    /// A piece of the LLM's reply, as it would stream after `think`.
    Reply(ReplyStep),
    /// The tools the LLM called in its reply (delivered before the `reply`
    /// step that is `done`, as the host delivers them).
    ToolCalls(Vec<ToolCallStep>),
    /// Synthesized speech (a tone) for the oldest pending `speak`.
    Speech(SpeechStep),
    /// A provider failed: `"stt"`, `"llm"` or `"tts"`.
    ProviderError(String),
    /// The host's answer to the newest `fetch` effect.
    Fetched(FetchedStep),
    Expect(Box<Expect>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyStep {
    text: String,
    #[serde(default)]
    done: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolCallStep {
    id: String,
    name: String,
    /// The arguments object as JSON text; `{}` when left out.
    #[serde(default = "no_arguments")]
    arguments: String,
}

fn no_arguments() -> String {
    "{}".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpeechStep {
    ms: u32,
    #[serde(default = "default_speech_rate")]
    rate: u32,
    #[serde(default)]
    done: bool,
}

/// A response (`status`, `headers`, `body`: a string as it is, other JSON
/// serialized), or, with `error`, none: `refused`, `timeout`, `too_large`
/// or `failed`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FetchedStep {
    #[serde(default = "default_status")]
    status: u16,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    body: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<String>,
}

fn default_status() -> u16 {
    200
}

impl FetchedStep {
    fn response(self) -> anyhow::Result<Result<wit::HttpResponse, wit::FetchError>> {
        let reason = || "scenario: fetch failed".to_string();
        Ok(Err(match self.error.as_deref() {
            None => {
                let body = match self.body {
                    None => Vec::new(),
                    Some(serde_json::Value::String(text)) => text.into_bytes(),
                    Some(json) => json.to_string().into_bytes(),
                };
                let headers = self.headers.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
                return Ok(Ok(wit::HttpResponse { status: self.status, headers, body }));
            }
            Some("refused") => wit::FetchError::Refused(reason()),
            Some("timeout") => wit::FetchError::Timeout,
            Some("too_large") => wit::FetchError::TooLarge,
            Some("failed") => wit::FetchError::Failed(reason()),
            Some(other) => anyhow::bail!("fetched error must be refused, timeout, too_large or failed, not {other:?}"),
        }))
    }
}

/// What the newest `fetch` in the window must ask for; unset fields are not checked.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FetchExpect {
    method: Option<String>,
    url: Option<String>,
    /// Header name → secret name, exactly.
    secret_headers: Option<std::collections::BTreeMap<String, String>>,
}

fn default_speech_rate() -> u32 {
    24_000
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioConfig {
    /// `HOTLINE_EOU_MS`.
    #[serde(default)]
    eou_ms: Option<u32>,
    /// `HOTLINE_BARGE_IN_MS`.
    #[serde(default)]
    barge_in_ms: Option<u32>,
    /// All three providers, or none.
    #[serde(default)]
    providers: bool,
    /// `HOTLINE_TRANSFER_TO`.
    #[serde(default)]
    transfer_to: Option<String>,
    /// `HOTLINE_GUEST_VARIABLES`: the call logic's plain variables.
    #[serde(default)]
    variables: Option<std::collections::BTreeMap<String, String>>,
}

impl ScenarioConfig {
    /// The call's config as the server would send it with these settings:
    /// defaults and ranges are the server's own (`config/defs.rs`).
    fn call_config(&self) -> anyhow::Result<wit::Config> {
        let config = Config::from_lookup(|var| match var {
            "HOTLINE_EOU_MS" => self.eou_ms.map(|ms| ms.to_string()),
            "HOTLINE_BARGE_IN_MS" => self.barge_in_ms.map(|ms| ms.to_string()),
            "HOTLINE_TRANSFER_TO" => self.transfer_to.clone(),
            "HOTLINE_GUEST_VARIABLES" => self.variables.as_ref().and_then(|v| serde_json::to_string(v).ok()),
            _ => None,
        })?;
        let on = self.providers;
        Ok(wit::Config { providers: wit::Providers { stt: on, llm: on, tts: on }, ..wit::Config::from(&config) })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TwimlStep {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    params: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    base_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartStep {
    #[serde(default)]
    params: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToneStep {
    ms: u32,
    #[serde(default = "default_hz")]
    hz: f64,
}

fn default_hz() -> f64 {
    300.0
}

/// Checks on the effects since the previous `expect`. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// The last TwiML contains this text.
    twiml_contains: Option<String>,
    /// Guest calls whose effects included audio (`play`), i.e. replies.
    replies: Option<usize>,
    /// A `clear` within this many ms of the start of the last tone/wav step.
    clear_within_ms: Option<u64>,
    /// No `clear` at all.
    no_clear: Option<bool>,
    /// Exactly these marks, in order.
    marks: Option<Vec<String>>,
    /// Each of these `log` events at least once.
    logs: Option<Vec<String>>,
    /// A `hangup` effect (or none, with `false`).
    hangup: Option<bool>,
    /// A `transcribe` effect (or none).
    transcribe: Option<bool>,
    /// A `think` whose last turn (the caller's) has exactly this text.
    think_user: Option<String>,
    /// The `assistant` turns of the last `think`, exactly (what was heard).
    think_assistant: Option<Vec<String>>,
    /// Exactly these `speak` texts, in order.
    speaks: Option<Vec<String>>,
    /// A `cancel` effect (or none).
    cancel: Option<bool>,
    /// The names of the tools offered with the last `think`, exactly.
    think_tools: Option<Vec<String>>,
    /// The `tool` turns of the last `think` as `[id, result]`, exactly.
    think_tool_results: Option<Vec<(String, String)>>,
    /// A `transfer` effect to this target (or none, with `""`).
    transfer: Option<String>,
    /// A `fetch` effect asking for this (the newest one, if several).
    fetch: Option<FetchExpect>,
}

#[derive(Debug)]
pub struct ScenarioReport {
    pub name: String,
    pub failures: Vec<String>,
}

impl ScenarioReport {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

struct Runner<'g> {
    guest: &'g Guest,
    dir: PathBuf,
    config: wit::Config,
    session: Option<Session>,
    media_ms: u64,
    /// Effects since the last `expect`, each with the media time it came at.
    window: Vec<(u64, Vec<Effect>)>,
    marks_sent: Vec<String>,
    twiml: Option<String>,
    speech_onset: Option<u64>,
    /// The id of the newest `fetch`, which a `fetched` step answers.
    last_fetch: Option<u32>,
}

/// Runs one scenario file against `guest`.
pub async fn run_file(guest: &Guest, path: &Path) -> anyhow::Result<ScenarioReport> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path.display().to_string();
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(run(guest, &name, &text, dir).await)
}

pub async fn run(guest: &Guest, name: &str, text: &str, dir: PathBuf) -> ScenarioReport {
    let mut runner = Runner {
        guest,
        dir,
        config: ScenarioConfig::default().call_config().expect("the default settings are valid"),
        session: None,
        media_ms: 0,
        window: Vec::new(),
        marks_sent: Vec::new(),
        twiml: None,
        speech_onset: None,
        last_fetch: None,
    };
    let mut failures = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let n = index + 1;
        let step: Step = match serde_json::from_str(line) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("line {n}: not a step: {e}"));
                break;
            }
        };
        match runner.step(step).await {
            Ok(problems) => failures.extend(problems.into_iter().map(|p| format!("line {n}: {p}"))),
            Err(e) => {
                failures.push(format!("line {n}: {e:#}"));
                break;
            }
        }
    }
    ScenarioReport { name: name.to_string(), failures }
}

impl Runner<'_> {
    /// Performs a step; returns failed expectations (or an error that ends the run).
    async fn step(&mut self, step: Step) -> anyhow::Result<Vec<String>> {
        match step {
            Step::Config(c) => self.config = c.call_config().context("config")?,
            Step::Twiml(t) => {
                let mode = match t.mode.as_deref() {
                    None | Some("stream") => wit::CallMode::Stream,
                    Some("record") => wit::CallMode::Record,
                    Some(other) => anyhow::bail!("twiml mode must be stream or record, not {other:?}"),
                };
                let webhook = wit::Webhook {
                    params: t.params.into_iter().collect(),
                    base_url: t.base_url.unwrap_or_else(|| "https://hotline.example".into()),
                    mode,
                };
                let twiml = self.guest.incoming_call(&webhook)?;
                let twiml = twiml.map_err(|e| anyhow::anyhow!("incoming-call returned {e:?}"))?;
                roxmltree::Document::parse(&twiml).context("incoming-call TwiML does not parse")?;
                self.twiml = Some(twiml);
            }
            Step::Start(s) => {
                self.session = Some(self.guest.session()?);
                let params: Vec<(String, String)> = s.params.into_iter().collect();
                self.send(Event::Started(wit::Started {
                    stream_sid: "MZscenario".into(),
                    call_sid: "CAscenario".into(),
                    custom_parameters: params,
                    config: self.config.clone(),
                    direction: wit::Direction::Inbound,
                    from: "+15550100001".into(),
                    to: "+15550100002".into(),
                }))
                .await?;
            }
            Step::Silence(ms) => self.audio(&vec![0; ms as usize * 8]).await?,
            Step::Tone(t) => {
                self.speech_onset = Some(self.media_ms);
                self.audio(&hotline_audio::tone(t.ms, t.hz, 8000, 8000.0)).await?;
            }
            Step::Wav(path) => {
                self.speech_onset = Some(self.media_ms);
                let pcm = crate::sim::wav::read_8k_mono(&self.dir.join(path))?;
                self.audio(&pcm).await?;
            }
            Step::MarkPlayed(name) => self.send(Event::MarkPlayed(name)).await?,
            Step::AckMarks {} => {
                for mark in std::mem::take(&mut self.marks_sent) {
                    self.send(Event::MarkPlayed(mark)).await?;
                }
            }
            Step::Dtmf(digit) => self.send(Event::Dtmf(digit)).await?,
            Step::Timer(id) => self.send(Event::Timer(id)).await?,
            Step::Stop {} => self.send(Event::Stopped).await?,
            Step::Snapshot {} => {
                let session = self.session.as_mut().context("no call yet: add a {\"start\": {}} step first")?;
                let snapshot = session.snapshot().context("snapshot failed")?;
                self.session = Some(self.guest.restore(&snapshot).context("restoring its own snapshot failed")?);
            }
            Step::Transcript(text) => self.send(Event::Transcript(wit::Transcript { text, is_final: true })).await?,
            Step::Reply(r) => self.send(Event::ReplyText(wit::ReplyText { delta: r.text, done: r.done })).await?,
            Step::ToolCalls(calls) => {
                let calls = calls
                    .into_iter()
                    .map(|c| wit::ToolCall { id: c.id, name: c.name, arguments: c.arguments })
                    .collect();
                self.send(Event::ToolCalls(calls)).await?
            }
            Step::Speech(sp) => {
                let samples = hotline_audio::tone(sp.ms, 220.0, sp.rate, 6000.0);
                self.send(Event::SpeechAudio(wit::SpeechAudio { samples, sample_rate: sp.rate, done: sp.done })).await?
            }
            Step::ProviderError(kind) => {
                let kind = match kind.as_str() {
                    "stt" => wit::ProviderKind::Stt,
                    "llm" => wit::ProviderKind::Llm,
                    "tts" => wit::ProviderKind::Tts,
                    other => anyhow::bail!("provider_error must be stt, llm or tts, not {other:?}"),
                };
                let message = "scenario: provider failed".into();
                self.send(Event::ProviderError(wit::ProviderError { kind, message })).await?
            }
            Step::Fetched(f) => {
                let id = self.last_fetch.take().context("no fetch to answer: the guest has not asked for one")?;
                self.send(Event::Fetched(wit::Fetched { id, response: f.response()? })).await?
            }
            Step::Expect(e) => return Ok(self.check(*e)),
        }
        Ok(Vec::new())
    }

    async fn send(&mut self, event: Event) -> anyhow::Result<()> {
        let session = self.session.as_mut().context("no call yet: add a {\"start\": {}} step first")?;
        let effects = session.handle(&event).with_context(|| format!("guest call failed on {}", event.name()))?;
        for effect in &effects {
            match effect {
                Effect::Mark(name) => self.marks_sent.push(name.clone()),
                Effect::Fetch(request) => self.last_fetch = Some(request.id),
                _ => {}
            }
        }
        self.window.push((self.media_ms, effects));
        Ok(())
    }

    async fn audio(&mut self, pcm: &[i16]) -> anyhow::Result<()> {
        for frame in ulaw_frames(pcm) {
            self.send(Event::Media(wit::Media { payload: frame, timestamp_ms: self.media_ms })).await?;
            self.media_ms += 20;
        }
        Ok(())
    }

    fn check(&mut self, e: Expect) -> Vec<String> {
        let window = std::mem::take(&mut self.window);
        let all = || window.iter().flat_map(|(at, fx)| fx.iter().map(move |f| (*at, f)));
        let mut failures = Vec::new();
        if let Some(text) = e.twiml_contains {
            match &self.twiml {
                Some(t) if t.contains(&text) => {}
                Some(t) => failures.push(format!("TwiML does not contain {text:?}: {t}")),
                None => failures.push("no TwiML yet: add a {\"twiml\": {}} step".into()),
            }
        }
        if let Some(n) = e.replies {
            let replies = window.iter().filter(|(_, fx)| fx.iter().any(|f| matches!(f, Effect::Play(_)))).count();
            if replies != n {
                failures.push(format!("{replies} replies (guest calls that played audio), expected {n}"));
            }
        }
        let clears: Vec<u64> = all().filter(|(_, f)| matches!(f, Effect::Clear)).map(|(at, _)| at).collect();
        if let Some(limit) = e.clear_within_ms {
            match (self.speech_onset, clears.first()) {
                (Some(onset), Some(&at)) if at >= onset && at - onset <= limit => {}
                (Some(onset), Some(&at)) => {
                    failures.push(format!("clear {} ms after speech onset, limit {limit}", at.saturating_sub(onset)))
                }
                (_, None) => failures.push("no clear".into()),
                (None, _) => failures.push("no tone/wav step to measure from".into()),
            }
        }
        if e.no_clear == Some(true) && !clears.is_empty() {
            failures.push(format!("unexpected clear at {} ms", clears[0]));
        }
        if let Some(want) = e.marks {
            let got: Vec<String> =
                all().filter_map(|(_, f)| if let Effect::Mark(m) = f { Some(m.clone()) } else { None }).collect();
            if got != want {
                failures.push(format!("marks {got:?}, expected {want:?}"));
            }
        }
        for event in e.logs.unwrap_or_default() {
            if !all().any(|(_, f)| matches!(f, Effect::Log(l) if l.event == event)) {
                failures.push(format!("no {event:?} log"));
            }
        }
        let mut present = |name: &str, want: Option<bool>, pred: &dyn Fn(&Effect) -> bool| {
            let got = all().any(|(_, f)| pred(f));
            if want.is_some_and(|want| want != got) {
                failures.push(format!("{name}: {got}, expected {}", !got));
            }
        };
        present("hangup", e.hangup, &|f| matches!(f, Effect::Hangup));
        present("transcribe", e.transcribe, &|f| matches!(f, Effect::Transcribe(_)));
        present("cancel", e.cancel, &|f| matches!(f, Effect::Cancel));
        let last_think = all().filter_map(|(_, f)| if let Effect::Think(t) = f { Some(t) } else { None }).next_back();
        if let Some(want) = e.think_user {
            match last_think.and_then(|t| t.turns.last()) {
                Some(turn) if turn.text == want => {}
                Some(turn) => failures.push(format!("think ends with {:?}, expected {want:?}", turn.text)),
                None => failures.push("no think".into()),
            }
        }
        if let Some(want) = e.think_assistant {
            let got: Option<Vec<String>> = last_think
                .map(|t| t.turns.iter().filter(|t| t.role == wit::Role::Assistant).map(|t| t.text.clone()).collect());
            match got {
                Some(got) if got == want => {}
                Some(got) => failures.push(format!("assistant turns {got:?}, expected {want:?}")),
                None => failures.push("no think".into()),
            }
        }
        if let Some(want) = e.think_tools {
            match last_think {
                Some(t) => {
                    let got: Vec<String> = t.tools.iter().map(|t| t.name.clone()).collect();
                    if got != want {
                        failures.push(format!("tools offered {got:?}, expected {want:?}"));
                    }
                }
                None => failures.push("no think".into()),
            }
        }
        if let Some(want) = e.think_tool_results {
            let got: Option<Vec<(String, String)>> = last_think.map(|t| {
                let tool_turns = t.turns.iter().filter(|t| t.role == wit::Role::Tool);
                tool_turns.map(|t| (t.tool_call_id.clone().unwrap_or_default(), t.text.clone())).collect()
            });
            match got {
                Some(got) if got == want => {}
                Some(got) => failures.push(format!("tool results {got:?}, expected {want:?}")),
                None => failures.push("no think".into()),
            }
        }
        if let Some(want) = e.transfer {
            let got: Vec<&str> = all()
                .filter_map(|(_, f)| if let Effect::Transfer(t) = f { Some(t.target.as_str()) } else { None })
                .collect();
            let ok = if want.is_empty() { got.is_empty() } else { got == [want.as_str()] };
            if !ok {
                failures.push(format!("transfers to {got:?}, expected {want:?}"));
            }
        }
        if let Some(want) = e.speaks {
            let got: Vec<String> =
                all().filter_map(|(_, f)| if let Effect::Speak(t) = f { Some(t.clone()) } else { None }).collect();
            if got != want {
                failures.push(format!("speaks {got:?}, expected {want:?}"));
            }
        }
        if let Some(want) = e.fetch {
            let last = all().filter_map(|(_, f)| if let Effect::Fetch(r) = f { Some(r) } else { None }).next_back();
            match last {
                Some(request) => failures.extend(fetch_mismatches(&want, request)),
                None => failures.push("no fetch".into()),
            }
        }
        failures
    }
}

fn fetch_mismatches(want: &FetchExpect, got: &wit::HttpRequest) -> Vec<String> {
    let mut failures = Vec::new();
    if want.method.as_ref().is_some_and(|m| *m != got.method) {
        failures.push(format!("fetch method {:?}, expected {:?}", got.method, want.method.as_deref().unwrap_or("")));
    }
    if want.url.as_ref().is_some_and(|u| *u != got.url) {
        failures.push(format!("fetch URL {:?}, expected {:?}", got.url, want.url.as_deref().unwrap_or("")));
    }
    if let Some(secrets) = &want.secret_headers {
        let got: std::collections::BTreeMap<String, String> = got.secret_headers.iter().cloned().collect();
        if got != *secrets {
            failures.push(format!("fetch secret headers {got:?}, expected {secrets:?}"));
        }
    }
    failures
}
