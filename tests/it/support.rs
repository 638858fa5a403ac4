//! Shared test helpers: audio generators, a guest session driver, and a real
//! server on an ephemeral port.

use std::path::Path;
use std::sync::OnceLock;

use hotline::config::{Config, SwapPolicy};
use hotline::http::Server;
use hotline::sandbox::wit::{self, Effect, Event, LogEntry, Media, Started};
use hotline::sandbox::{Guest, Sandbox, SandboxConfig, Session};
use hotline::sim::{CallReport, Moment};
use hotline::versions::DEFAULT_GUEST;
use hotline_audio::frame::ulaw_frames;
use reqwest::StatusCode;

pub const PROBE_GUEST: &str = env!("HOTLINE_GUEST_PROBE_WASM");

// ---- audio ---------------------------------------------------------------

pub fn silence(ms: u32) -> Vec<i16> {
    vec![0; (ms * 8) as usize]
}

/// A voice-band tone at 8 kHz, loud enough to be speech.
pub fn tone(ms: u32, freq: f64) -> Vec<i16> {
    hotline_audio::tone(ms, freq, 8000, 8000.0)
}

pub fn concat(parts: &[Vec<i16>]) -> Vec<i16> {
    parts.concat()
}

/// "The quick brown fox…" spoken by espeak-ng, 16 kHz, as 8 kHz PCM.
pub fn fox() -> Vec<i16> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fox-16k.wav");
    hotline::sim::wav::read_8k_mono(&path).expect("test WAV")
}

// ---- guests in the sandbox ------------------------------------------------

pub fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        Sandbox::new(SandboxConfig { max_instances: 200, ..Config::default().sandbox }).expect("sandbox")
    })
}

pub fn default_guest() -> &'static Guest {
    static GUEST: OnceLock<Guest> = OnceLock::new();
    GUEST.get_or_init(|| sandbox().load(DEFAULT_GUEST).expect("default guest loads"))
}

pub fn probe_guest() -> &'static Guest {
    static GUEST: OnceLock<Guest> = OnceLock::new();
    GUEST.get_or_init(|| sandbox().load(&std::fs::read(PROBE_GUEST).unwrap()).expect("probe guest loads"))
}

pub fn call_config(eou_silence_ms: u32, barge_in_ms: u32, ai: bool) -> wit::Config {
    wit::Config {
        eou_silence_ms,
        barge_in_ms,
        providers: wit::Providers { stt: ai, llm: ai, tts: ai },
        ..wit::Config::from(&Config::default())
    }
}

/// Drives one session and keeps every effect with the index of the media
/// frame (0-based, 20 ms each) that caused it.
pub struct Driver {
    pub session: Session,
    pub frames: usize,
    pub effects: Vec<(usize, Effect)>,
}

impl Driver {
    pub async fn start(guest: &Guest, config: wit::Config) -> Driver {
        let mut d = Driver { session: guest.session().expect("session"), frames: 0, effects: Vec::new() };
        d.send(Event::Started(Started {
            stream_sid: "MZtest".into(),
            call_sid: "CAtest".into(),
            custom_parameters: vec![("call_sid".into(), "CAtest".into())],
            config,
            direction: hotline::sandbox::wit::Direction::Inbound,
            from: "+15550100001".into(),
            to: "+15550100002".into(),
        }))
        .await;
        d
    }

    pub async fn send(&mut self, event: Event) -> Vec<Effect> {
        let fx = self.session.handle(&event).expect("guest call succeeds");
        self.effects.extend(fx.iter().cloned().map(|e| (self.frames, e)));
        fx
    }

    pub async fn audio(&mut self, pcm: &[i16]) {
        for frame in ulaw_frames(pcm) {
            let ts = self.frames as u64 * 20;
            self.send(Event::Media(Media { payload: frame, timestamp_ms: ts })).await;
            self.frames += 1;
        }
    }

    /// Acknowledges every mark sent so far, as Twilio does after playback.
    pub async fn ack_marks(&mut self) {
        let marks: Vec<String> = self.marks();
        for m in marks {
            self.send(Event::MarkPlayed(m)).await;
        }
    }

    pub fn marks(&self) -> Vec<String> {
        self.effects.iter().filter_map(|(_, e)| if let Effect::Mark(m) = e { Some(m.clone()) } else { None }).collect()
    }

    pub fn logs(&self, event: &str) -> Vec<(usize, LogEntry)> {
        self.effects
            .iter()
            .filter_map(|(i, e)| match e {
                Effect::Log(l) if l.event == event => Some((*i, l.clone())),
                _ => None,
            })
            .collect()
    }

    /// Frame indexes of effects matching `pred`.
    pub fn at(&self, pred: impl Fn(&Effect) -> bool) -> Vec<usize> {
        self.effects.iter().filter(|(_, e)| pred(e)).map(|(i, _)| *i).collect()
    }

    pub fn clear_effects(&mut self) {
        self.effects.clear();
    }
}

pub fn field<'a>(entry: &'a LogEntry, key: &str) -> &'a str {
    entry.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("")
}

/// A simulated call of 3 s of silence at twice real time, pressing `dtmf`
/// (media time, key): for guests driven by the keypad.
pub fn keypad_call(base: &str, sid: &str, dtmf: Vec<(u64, char)>) -> hotline::sim::CallOptions {
    hotline::sim::CallOptions {
        server: base.into(),
        audio: silence(3000),
        speed: 2.0,
        dtmf,
        call_sid: sid.into(),
        idle_ms: 1500,
        ..hotline::sim::CallOptions::default()
    }
}

/// A call to the probe guest that presses its trap key twice (a trap is
/// recovered once, the second gets the apology): two of these are three
/// traps, the default policy's trigger for an automatic rollback.
pub fn trapping_call(base: &str, sid: &str) -> hotline::sim::CallOptions {
    hotline::sim::CallOptions {
        server: base.into(),
        audio: silence(1500),
        speed: 4.0,
        dtmf: vec![(300, '9'), (800, '9')],
        call_sid: sid.into(),
        idle_ms: 6000,
        ..hotline::sim::CallOptions::default()
    }
}

// ---- servers -----------------------------------------------------------------

pub struct TestServer {
    pub server: Server,
    pub base: String,
}

/// The settings `hotline serve` would read from these variables (and no others).
pub fn config_from(env: &[(&str, String)]) -> hotline::config::Config {
    hotline::config::Config::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
        .expect("valid settings")
}

pub async fn start_server(tweak: impl FnOnce(&mut Config)) -> TestServer {
    hotline::providers::install_tls(); // for the tests' own reqwest clients
    let mut config = Config { listen: "127.0.0.1:0".parse().unwrap(), ..Config::default() };
    config.sandbox.max_instances = 300;
    tweak(&mut config);
    let mut server = Server::start(config).await.expect("server starts");
    server.guest_loaded().await.expect("guest loads");
    let base = format!("http://{}", server.local_addr());
    TestServer { server, base }
}

/// The stream token the server hands out for `call_sid`: what Twilio
/// passes back in `start`, read from the TwiML of a real webhook.
pub async fn stream_token(base: &str, call_sid: &str) -> String {
    let twiml = reqwest::Client::new()
        .post(format!("{base}/webhook/incoming_call"))
        .form(&[("CallSid", call_sid)])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let target = hotline::sim::twiml::stream_target(&twiml).unwrap().expect("a <Stream>");
    target.parameters.into_iter().find(|(k, _)| k == "hotline_token").expect("a stream token").1
}

/// A `start` message as Twilio sends it, with these custom parameters.
pub fn start_message(call_sid: &str, parameters: serde_json::Value) -> tokio_tungstenite::tungstenite::Message {
    let stream_sid = format!("MZ{call_sid}");
    let start = serde_json::json!({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
        "start": {"streamSid": stream_sid, "accountSid": "AC1", "callSid": call_sid, "tracks": ["inbound"],
                  "customParameters": parameters,
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}});
    tokio_tungstenite::tungstenite::Message::Text(start.to_string().into())
}

/// The release binary as the tests run it: an ephemeral port on loopback,
/// JSON logs at info; the caller decides where stderr goes.
pub fn hotline_command(env: &[(&str, &str)]) -> tokio::process::Command {
    hotline::providers::install_tls(); // for the tests' own reqwest clients
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_hotline"));
    command
        .env("PORT", "0")
        .env("HOTLINE_BIND", "127.0.0.1")
        .env("HOTLINE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        // No call records unless a test gives them a place.
        .env("HOTLINE_DATA_DIR", "off")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}

// ---- the admin API ---------------------------------------------------------

pub const TOKEN: &str = "test-admin-token-0123456789";

pub async fn admin_server(swap: SwapPolicy) -> TestServer {
    start_server(|c| {
        c.admin_token = Some(TOKEN.into());
        c.swap = swap;
    })
    .await
}

pub async fn put_guest(base: &str, bytes: Vec<u8>) -> (StatusCode, serde_json::Value) {
    let response =
        reqwest::Client::new().put(format!("{base}/admin/guest")).bearer_auth(TOKEN).body(bytes).send().await.unwrap();
    (response.status(), response.json().await.unwrap_or_default())
}

/// `POST /admin/guest/rollback` with the admin token: its status.
pub async fn rollback(base: &str) -> StatusCode {
    let response =
        reqwest::Client::new().post(format!("{base}/admin/guest/rollback")).bearer_auth(TOKEN).send().await.unwrap();
    response.status()
}

pub async fn admin_get(base: &str) -> serde_json::Value {
    get_json(base, "/admin/guest").await
}

/// A GET with the admin token that must answer 200 with JSON.
pub async fn get_json(base: &str, path: &str) -> serde_json::Value {
    let response = reqwest::Client::new().get(format!("{base}{path}")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

pub async fn active_digest(base: &str) -> String {
    let version: serde_json::Value = reqwest::get(format!("{base}/version")).await.unwrap().json().await.unwrap();
    version["guest_digest"].as_str().unwrap().to_string()
}

// ---- call reports ------------------------------------------------------------

pub enum EouPick {
    First,
    Last,
}

/// The reply after the chosen EoU is a contiguous piece of the caller's own
/// audio, byte for byte: the echo came back whole, with no frame lost,
/// doubled or reordered on the way (μ-law in, the same μ-law out).
pub fn echo_is_contiguous(report: &CallReport, pick: EouPick) -> Result<(), String> {
    let eous = report.at(|m| *m == Moment::CallerEou);
    let eou = match pick {
        EouPick::First => eous.first(),
        EouPick::Last => eous.last(),
    };
    let eou = *eou.ok_or("no EoU")?;
    let start = report.at(|m| *m == Moment::ReplyStart).into_iter().find(|&t| t >= eou - 20.0).ok_or("no reply")?;
    let end = report.at(|m| *m == Moment::ReplyEnd).into_iter().find(|&t| t > start).ok_or("reply never ended")?;
    let reply = &report.agent[(start * 8.0) as usize..(end * 8.0) as usize];
    if reply.len() >= 4000 && report.caller.windows(reply.len()).any(|w| w == reply) {
        Ok(())
    } else {
        Err(format!("the {}-byte reply is not a contiguous piece of the caller's audio", reply.len()))
    }
}
