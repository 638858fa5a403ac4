//! The host's own overhead on a turn: from the end of the caller's
//! utterance (the guest's `transcribe`) to the first reply media frame
//! flushed to Twilio, with provider stand-ins that answer at once. What is
//! left is hotline: three loopback HTTP exchanges (STT, LLM stream, TTS
//! stream), the guest calls in between, resampling and framing.
//! Target: p99 ≤ 10 ms.
//!
//! `cargo bench --bench turn_overhead` (TURNS=100 turns by default, in
//! CALLS=1 call; with CALLS=N, N real-time calls run at once, started over
//! one turn's length, and share the turns; STAGGER=0 starts them together).
//! It reads `first_audio_ms` from the server's own `turn` log events.
//!
//! STT=deepgram: speech-to-text streams to the Deepgram stand-in (the
//! utterance's words come with the flush at its end) instead of one batch
//! request; STT=openai-realtime: to OpenAI's realtime transcription
//! stand-in (its words come after the commit). REALISTIC=1: the stand-ins
//! take a provider's usual time (batch STT 300 ms; Deepgram's flush 100 ms,
//! and its own endpoint's final 300 ms into the quiet after the last word,
//! which answers the turn without a flush: ENDPOINTING_MS=0 turns it off;
//! OpenAI's transcription after a commit 300 ms, LLM first token 350 ms,
//! TTS first byte 200 ms); the voice-to-voice latency is then the EoU silence
//! plus what is printed.
//!
//! AGENT=realtime: the realtime agent (`HOTLINE_AGENT=realtime`) against
//! the stand-in of OpenAI's Realtime API instead of the three providers:
//! the utterance committed at its end, `response.create`, the model's own
//! μ-law played; with REALISTIC=1 its first audio comes 500 ms after the
//! request (the Realtime API's usual time to first audio), and it speaks
//! twice as fast as real time.
//!
//! Also printed: stream start → first greeting frame, per call
//! (GREETING=text sets HOTLINE_GREETING; TTS_CACHE_KB=0 turns the speech
//! cache off).
//!
//! TOOLS=1 (with CALLS=1): each turn's first LLM answer is a tool call the
//! default guest does not know, so it answers with an error result and
//! thinks again; also printed: one tool round trip's overhead, from the end
//! of the LLM stream carrying the call to the next chat request reaching
//! the stand-in (the host's parsing, the `tool-calls` and `reply-text`
//! events through the guest, the new `think` and its HTTP request).

#[path = "../tests/it/mocks/mod.rs"]
#[allow(dead_code)]
mod mocks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hotline::config::Config;
use hotline::http::Server;
use hotline::sim::{CallOptions, place_call};
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Collects `first_audio_ms` of every `turn` event.
struct TurnTimes(Arc<Mutex<Vec<f64>>>);

impl<S: tracing::Subscriber> Layer<S> for TurnTimes {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        #[derive(Default)]
        struct Fields {
            turn: bool,
            first_audio_ms: Option<f64>,
        }
        impl Visit for Fields {
            fn record_f64(&mut self, field: &Field, value: f64) {
                if field.name() == "first_audio_ms" {
                    self.first_audio_ms = Some(value);
                }
            }
            fn record_str(&mut self, field: &Field, value: &str) {
                if field.name() == "event" && value == "turn" {
                    self.turn = true;
                }
            }
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                if field.name() == "event" && format!("{value:?}").trim_matches('"') == "turn" {
                    self.turn = true;
                }
            }
        }
        let mut f = Fields::default();
        event.record(&mut f);
        if let (true, Some(ms)) = (f.turn, f.first_audio_ms) {
            self.0.lock().unwrap().push(ms);
        }
    }
}

/// Each pair of chat requests is a round trip: the end of the first's
/// stream to the arrival of the second.
fn tool_round_trips(mock: &mocks::openai::OpenAiMock) {
    let path = "/v1/chat/completions";
    let (requests, ended) = (mock.log().requests(path), mock.log().completed(path));
    let mut t: Vec<f64> = (1..requests.len().min(ended.len() + 1))
        .step_by(2)
        .map(|i| requests[i].at.saturating_duration_since(ended[i - 1]).as_secs_f64() * 1000.0)
        .collect();
    report("tool calls → next LLM request (host, instant mocks)", &mut t);
}

fn report(what: &str, t: &mut [f64]) {
    t.sort_by(f64::total_cmp);
    assert!(!t.is_empty(), "nothing measured: {what}");
    let pct = |p: f64| t[((t.len() as f64 * p).ceil() as usize).clamp(1, t.len()) - 1];
    println!(
        "{what}: n={} p50={:.2} ms p90={:.2} ms p99={:.2} ms max={:.2} ms",
        t.len(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        t[t.len() - 1]
    );
}

fn main() {
    let var = |k: &str, default: usize| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (turns, calls) = (var("TURNS", 100), var("CALLS", 1).max(1));
    let times = Arc::new(Mutex::new(Vec::new()));
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(TurnTimes(times.clone()))).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        hotline::providers::install_tls();
        let mock = mocks::openai::OpenAiMock::start().await;
        let tools = var("TOOLS", 0) == 1;
        mock.behave(|b| {
            b.default_reply = "Okay.".into();
            // A different reply every turn: none of them comes from the speech cache.
            b.replies = (0..turns).map(|i| format!("Okay, {i}.")).collect();
            if tools {
                let call = mocks::openai::MockToolCall::new("call_1", "lookup", r#"{"order":"A-1234"}"#);
                b.tool_calls = (0..turns).flat_map(|_| [vec![call.clone()], Vec::new()]).collect();
            }
        });
        let realistic = var("REALISTIC", 0) == 1;
        if realistic {
            mock.behave(|b| {
                b.stt_delays = std::iter::repeat_n(std::time::Duration::from_millis(300), turns).collect();
                b.llm_first_delay = std::time::Duration::from_millis(350);
                b.tts_first_delay = std::time::Duration::from_millis(200);
            });
        }
        let mut env: HashMap<String, String> = mock.env().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        // GREETING=text: HOTLINE_GREETING (synthesized at start); TTS_CACHE_KB=0: no speech cache.
        for (var, setting) in [("GREETING", "HOTLINE_GREETING"), ("TTS_CACHE_KB", "HOTLINE_TTS_CACHE_KB")] {
            if let Ok(value) = std::env::var(var) {
                env.insert(setting.into(), value);
            }
        }
        let deepgram = mocks::deepgram::DeepgramMock::start().await;
        let realtime = mocks::openai_realtime::OpenAiRealtimeMock::start().await;
        match stt_var().as_str() {
            "deepgram" => {
                let flush = if realistic { 100 } else { 0 };
                // Deepgram's own endpointing: its final comes this long into
                // the quiet after the last word, before the guest's 500 ms.
                let endpointing = var("ENDPOINTING_MS", if realistic { 300 } else { 0 });
                deepgram.behave(|b| {
                    b.finalize_delay = std::time::Duration::from_millis(flush);
                    b.endpointing = (endpointing > 0).then(|| std::time::Duration::from_millis(endpointing as u64));
                });
                env.extend(deepgram.env().into_iter().map(|(k, v)| (k.to_string(), v)));
            }
            "openai-realtime" => {
                // Its words come only after the commit (no turn detection):
                // a transcription's time, as the batch request takes.
                let after_commit = if realistic { 300 } else { 0 };
                realtime.behave(|b| {
                    b.transcribe_delay = std::time::Duration::from_millis(after_commit);
                    b.delta_every = std::time::Duration::ZERO;
                });
                env.extend(realtime.env().into_iter().map(|(k, v)| (k.to_string(), v)));
            }
            _ => {}
        }
        let agent = mocks::realtime_agent::RealtimeAgentMock::start().await;
        if realtime_agent() {
            agent.set(|b| {
                if realistic {
                    b.realistic();
                } else {
                    b.first_audio = std::time::Duration::ZERO;
                }
                // A short answer, over before the next utterance, as the pipeline's.
                b.default_reply = mocks::realtime_agent::Reply::speech("Okay.", 100);
            });
            env.extend(agent.env().into_iter().map(|(k, v)| (k.to_string(), v)));
        }
        let mut config = Config::from_lookup(|k| env.get(k).cloned()).unwrap();
        config.listen = "127.0.0.1:0".parse().unwrap();
        let mut server = Server::start(config).await.unwrap();
        server.guest_loaded().await.unwrap();
        // Each call: one short utterance after another; each reply (100 ms)
        // ends before the next utterance begins.
        // (Realistic providers take ~1 s: the next utterance waits for the reply.)
        let tone = hotline_audio::tone(400, 382.0, 8000, 8000.0);
        let gap_ms = if realistic { 3000 } else { 900 };
        let mut audio = vec![0i16; 8000];
        for _ in 0..turns.div_ceil(calls) {
            audio.extend(&tone);
            audio.extend(std::iter::repeat_n(0, 8 * gap_ms));
        }
        let opts = CallOptions {
            server: format!("http://{}", server.local_addr()),
            audio,
            speed: if calls == 1 && !realistic { 4.0 } else { 1.0 },
            ..CallOptions::default()
        };
        let placed: Vec<_> = (0..calls)
            .map(|i| {
                let opts = CallOptions { call_sid: format!("CAbench{i:026}"), ..opts.clone() };
                // Spread over one turn's length, as independent callers are;
                // STAGGER=0 makes every call end its utterance at once.
                let stagger = var("STAGGER", 1) as u64 * 1300 * i as u64 / calls as u64;
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(stagger)).await;
                    place_call(&opts).await
                })
            })
            .collect();
        let mut greetings = Vec::new();
        for call in placed {
            let report = call.await.unwrap().unwrap();
            let start = report.first(|m| *m == hotline::sim::Moment::StreamStart).unwrap_or(0.0);
            if let Some(greeting) = report.first(|m| *m == hotline::sim::Moment::ReplyStart) {
                greetings.push(greeting - start);
            }
        }
        report("stream start → first greeting frame", &mut greetings);
        if tools {
            tool_round_trips(&mock);
        }
    });
    let mut t = times.lock().unwrap().clone();
    let stt = match stt_var().as_str() {
        _ if realtime_agent() => "realtime agent".to_string(),
        "deepgram" | "openai-realtime" => format!("streaming STT, {}", stt_var()),
        _ => "batch STT".to_string(),
    };
    let mocks = if var("REALISTIC", 0) == 1 { "realistic" } else { "instant" };
    report(&format!("EoU → first reply frame ({stt}, {mocks} mocks, {calls} concurrent call(s))"), &mut t);
}

/// `AGENT=realtime`: the realtime agent instead of the pipeline.
fn realtime_agent() -> bool {
    std::env::var("AGENT").is_ok_and(|a| a == "realtime")
}

/// `STT`: `deepgram`, `openai-realtime`, or batch (unset).
fn stt_var() -> String {
    std::env::var("STT").unwrap_or_default()
}
