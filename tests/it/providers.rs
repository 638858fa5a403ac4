//! Whole calls through the AI path: the real server, the simulator as
//! Twilio, and loopback stand-ins for OpenAI and Google (`mocks/`) that
//! speak their real protocols. Calls run in real time, since provider
//! latency is wall-clock time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hotline::config::Config;
use hotline::providers::Choice;
use hotline::sim::{CallOptions, CallReport, Moment, place_call};
use hotline_audio::ulaw;

use crate::mocks::google::GoogleMock;
use crate::mocks::openai::{MockToolCall, OpenAiMock, VOICE};
use crate::support::*;

static FILLER: &[u8] = include_bytes!("../../guest/agent/assets/filler.ulaw");
static APOLOGY: &[u8] = include_bytes!("../../guest/agent/assets/apology.ulaw");
const GREETING: &str = "Hello! This is hotline. How can I help?";

fn config_from(env: &[(&str, String)]) -> anyhow::Result<Config> {
    let map: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    Config::from_lookup(|k| map.get(k).cloned())
}

/// A server configured the way `hotline serve` reads its environment.
async fn server_with(env: &[(&str, String)]) -> TestServer {
    let from_env = config_from(env).expect("config from the environment");
    start_server(move |c| {
        c.providers = from_env.providers;
        c.fallback_ms = from_env.fallback_ms;
    })
    .await
}

/// Two seconds of "The quick brown fox…": one utterance.
fn question() -> Vec<i16> {
    fox()[..16_000].to_vec()
}

async fn call(s: &TestServer, audio: Vec<i16>) -> (CallReport, Instant) {
    let opts = CallOptions { server: s.base.clone(), audio, speed: 1.0, idle_ms: 2500, ..CallOptions::default() };
    let began = Instant::now();
    (place_call(&opts).await.expect("call completes"), began)
}

/// The agent played `expected` (its first 100 ms) starting near `at_ms`.
fn played_near(report: &CallReport, at_ms: f64, expected: &[u8]) -> bool {
    let start = ((at_ms - 40.0).max(0.0) * 8.0) as usize;
    let end = (start + 2000).min(report.agent.len());
    report.agent.get(start..end).is_some_and(|w| w.windows(800).any(|w| w == &expected[..800]))
}

/// Lag-1 autocorrelation: ~0.9 for speech sampled as linear PCM at 8-16
/// kHz; near 0 for μ-law bytes (or any other bytes) mistaken for samples.
fn smoothness(samples: &[i16]) -> f64 {
    let x: Vec<f64> = samples.iter().map(|&s| s as f64).collect();
    let mean = x.iter().sum::<f64>() / x.len() as f64;
    let num: f64 = x.windows(2).map(|w| (w[0] - mean) * (w[1] - mean)).sum();
    let den: f64 = x.iter().map(|v| (v - mean).powi(2)).sum();
    num / den
}

fn replies_after(report: &CallReport, t: f64) -> Vec<f64> {
    report.at(|m| *m == Moment::ReplyStart).into_iter().filter(|&r| r >= t - 20.0).collect()
}

async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn openai_question_is_transcribed_answered_and_spoken_while_the_llm_still_streams() {
    let mock = OpenAiMock::start().await;
    mock.behave(|b| {
        b.llm_token_delay = Duration::from_millis(150);
        b.default_reply = "Sure. It is sunny and warm today, with a light breeze from the west. Enjoy it.".into();
    });
    let s = server_with(&mock.env()).await;
    let (report, began) = call(&s, concat(&[silence(1500), question(), silence(4000)])).await;

    assert_eq!(mock.log().violations(), Vec::<String>::new());
    let uploads = mock.state.uploads.lock().unwrap().clone();
    assert_eq!(uploads.len(), 1, "one utterance, one transcription");
    let u = &uploads[0];
    assert_eq!(u.rate, 16_000, "STT gets 16 kHz");
    let secs = u.samples.len() as f64 / 16_000.0;
    assert!((2.0..=3.5).contains(&secs), "2 s of speech + pre-roll + EoU silence, got {secs:.2} s");
    let smooth = smoothness(&u.samples);
    assert!(smooth > 0.6, "linear PCM, resampled (lag-1 autocorrelation {smooth:.2})");

    let chats = mock.state.chats.lock().unwrap().clone();
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0].first().unwrap().0, "system");
    assert_eq!(chats[0].last().unwrap(), &("user".into(), "what is the weather like".into()));
    let speech = mock.state.speech.lock().unwrap().clone();
    assert_eq!(
        speech,
        [GREETING, "Sure.", "It is sunny and warm today, with a light breeze from the west.", "Enjoy it."],
        "one speech request per sentence, in order"
    );

    let eou = report.first(|m| *m == Moment::CallerEou).expect("caller EoU");
    let reply = *replies_after(&report, eou).first().expect("reply audio after the EoU");
    let llm_done = *mock.log().completed("/chat/completions").first().expect("LLM stream ended");
    let first_tts = mock.log().requests("/audio/speech")[1].at;
    assert!(first_tts < llm_done, "the first sentence went to TTS before the LLM finished");
    let reply_wall = began + Duration::from_millis(reply as u64);
    assert!(
        reply_wall + Duration::from_millis(500) < llm_done,
        "reply audio at {reply:.0} ms media time, {:?} before the LLM stream ended",
        llm_done.saturating_duration_since(reply_wall)
    );
    assert_eq!(report.close, Some((1000, "stream stopped".into())));
}

#[tokio::test]
async fn barge_in_cancels_llm_and_tts_plays_nothing_late_and_keeps_the_heard_part() {
    let mock = OpenAiMock::start().await;
    mock.behave(|b| {
        b.replies = [
            "Sure. Let me see what I can find for you right now. \
             One two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen \
             seventeen eighteen nineteen twenty twenty-one twenty-two twenty-three twenty-four.",
            "Okay.",
        ]
        .map(String::from)
        .into();
        b.transcripts = ["tell me", "wait"].map(String::from).into();
        // Sentence two is at TTS after ~0.5 s and speaks for 2.7 s; the
        // stream goes on for ~2 s: both are in flight at the barge-in.
        b.llm_token_delay = Duration::from_millis(50);
        b.tts_ms_per_char = 60;
        b.tts_chunk_pause = Duration::from_millis(100); // real time
    });
    let s = server_with(&mock.env()).await;
    // The greeting lasts 2.3 s at 60 ms a character: wait for it.
    let audio = concat(&[silence(3000), question(), silence(1300), question(), silence(4000)]);
    let (report, _) = call(&s, audio).await;
    assert_eq!(mock.log().violations(), Vec::<String>::new());

    let onsets = report.at(|m| *m == Moment::CallerSpeechStart);
    let eous = report.at(|m| *m == Moment::CallerEou);
    assert!(onsets.len() >= 2 && eous.len() >= 2, "two utterances: {onsets:?} {eous:?}");
    assert_eq!(report.at(|m| *m == Moment::Clear).len(), 1, "one clear: {:?}", report.timeline);
    let clear = report.first(|m| *m == Moment::Clear).expect("barge-in sends clear");
    assert!(clear >= onsets[1] && clear - onsets[1] <= 300.0, "clear {clear} ms for speech at {} ms", onsets[1]);
    // Between the clear and the end of the caller's new utterance the agent
    // must be silent: any audio there is a late chunk of the cancelled turn.
    let late: Vec<f64> =
        report.at(|m| *m == Moment::ReplyStart).into_iter().filter(|&t| t > clear && t < eous[1]).collect();
    assert!(late.is_empty(), "late audio after the clear at {late:?}");
    assert!(!replies_after(&report, eous[1]).is_empty(), "the interruption itself is answered");

    eventually("the LLM stream is dropped", || mock.log().disconnected("/chat/completions")).await;
    eventually("the TTS stream is dropped", || mock.log().disconnected("/audio/speech")).await;
    let chats = mock.state.chats.lock().unwrap().clone();
    assert_eq!(chats.len(), 2);
    let assistant: Vec<&str> = chats[1].iter().filter(|(r, _)| r == "assistant").map(|(_, t)| t.as_str()).collect();
    assert_eq!(assistant, [GREETING, "Sure."], "history holds only what the caller heard");
    assert_eq!(chats[1].last().unwrap().1, "wait");
}

#[tokio::test]
async fn a_slow_llm_gets_the_filler_which_the_reply_cuts() {
    let mock = OpenAiMock::start().await;
    mock.behave(|b| {
        b.llm_first_delay = Duration::from_secs(4);
        b.llm_token_delay = Duration::from_millis(20);
    });
    let mut env = mock.env();
    env.push(("HOTLINE_FALLBACK_MS", "3500".into()));
    let s = server_with(&env).await;
    let (report, _) = call(&s, concat(&[silence(1500), question(), silence(7500)])).await;
    assert_eq!(mock.log().violations(), Vec::<String>::new());

    let eou = report.first(|m| *m == Moment::CallerEou).unwrap();
    let replies = replies_after(&report, eou);
    let filler_at = *replies.first().expect("something plays after the EoU");
    assert!((3300.0..=4000.0).contains(&(filler_at - eou)), "filler {:.0} ms after the EoU", filler_at - eou);
    assert!(played_near(&report, filler_at, FILLER), "the first audio is the filler");
    let clear = report.at(|m| *m == Moment::Clear).into_iter().find(|&t| t > filler_at).expect("the filler is cut");
    assert!(report.first(|m| *m == Moment::MarkEchoed("t1-filler".into())).is_some());
    let reply = report.at(|m| *m == Moment::MarkReceived("t1-s0".into()));
    assert!(reply.first().is_some_and(|&t| t >= clear), "the real reply follows the cut");
    assert!(!played_near(&report, reply[0], FILLER));
    assert_eq!(report.close, Some((1000, "stream stopped".into())));
}

#[tokio::test]
async fn a_failing_tts_is_retried_once_then_apologized_for_and_the_call_goes_on() {
    let mock = OpenAiMock::start().await;
    mock.behave(|b| {
        b.tts_fail_containing = Some("sunny".into());
        b.replies = ["It is sunny today.", "Fine, thanks."].map(String::from).into();
    });
    let s = server_with(&mock.env()).await;
    let audio = concat(&[silence(1500), question(), silence(5500), question(), silence(3500)]);
    let (report, _) = call(&s, audio).await;
    assert_eq!(mock.log().violations(), Vec::<String>::new());

    let speech = mock.state.speech.lock().unwrap().clone();
    assert_eq!(speech.iter().filter(|t| t.contains("sunny")).count(), 2, "one retry of the failed request: {speech:?}");
    let eous = report.at(|m| *m == Moment::CallerEou);
    assert_eq!(eous.len(), 2);
    let apology = *replies_after(&report, eous[0]).first().expect("audio after the first EoU");
    assert!(played_near(&report, apology, APOLOGY), "the apology plays");
    assert!(report.first(|m| *m == Moment::MarkReceived("t2-s0".into())).is_some(), "the next turn is answered");
    assert!(speech.contains(&"Fine, thanks.".to_string()));

    let ready: serde_json::Value = reqwest::get(format!("{}/readyz", s.base)).await.unwrap().json().await.unwrap();
    let tts = &ready["providers"]["tts"];
    assert_eq!(tts["provider"], "openai");
    assert_eq!(tts["status"], "ok", "the newest request succeeded: {ready}");
    assert!(tts["last_error"]["message"].as_str().unwrap().contains("500"), "{ready}");
    assert_eq!(ready["providers"]["stt"]["status"], "ok");

    let m = crate::metrics::scrape_until(&s.base, "hotline_turns_total{outcome=\"spoken\"}", 1.0).await;
    assert!(m["hotline_provider_errors_total{kind=\"tts\",error=\"http_5xx\"}"] >= 1.0);
    assert_eq!(m["hotline_provider_errors_total{kind=\"stt\",error=\"http_5xx\"}"], 0.0);
    assert_eq!(m["hotline_turns_total{outcome=\"failed\"}"], 1.0, "the turn whose speech failed");
    assert_eq!(m["hotline_turns_total{outcome=\"spoken\"}"], 1.0);
    assert_eq!(m["hotline_stt_seconds_count"], 2.0, "both utterances transcribed");
    assert_eq!(m["hotline_first_audio_seconds_count"], 1.0, "only the spoken turn has a first audio");
}

#[tokio::test]
async fn a_stt_timeout_is_retried_and_a_broken_llm_stream_is_not() {
    let mock = OpenAiMock::start().await;
    mock.behave(|b| {
        b.stt_delays = [Duration::from_secs(5)].into();
        b.llm_break_after = Some(2);
        b.default_reply = "Well then I think that it is fine.".into();
    });
    let mut env = mock.env();
    env.push(("HOTLINE_PROVIDER_TIMEOUT_MS", "1000".into()));
    let s = server_with(&env).await;
    let (report, _) = call(&s, concat(&[silence(1500), question(), silence(7000)])).await;

    assert_eq!(mock.log().requests("/audio/transcriptions").len(), 2, "timed out once, retried once");
    assert_eq!(mock.log().requests("/chat/completions").len(), 1, "no retry mid-stream");
    let eou = report.first(|m| *m == Moment::CallerEou).unwrap();
    let first = *replies_after(&report, eou).first().expect("audio after the EoU");
    assert!(played_near(&report, first, APOLOGY), "a broken reply gets the apology");
    let ready: serde_json::Value = reqwest::get(format!("{}/readyz", s.base)).await.unwrap().json().await.unwrap();
    assert_eq!(ready["providers"]["llm"]["status"], "degraded", "{ready}");
    assert_eq!(report.close, Some((1000, "stream stopped".into())));
}

#[tokio::test]
async fn google_path_with_service_account_auth_and_token_refresh() {
    let mock = GoogleMock::start().await;
    // The greeting's token expires before the first turn, which must get a
    // new one first.
    *mock.state.token_secs.lock().unwrap() = 2;
    let s = server_with(&mock.env()).await;
    let audio = concat(&[silence(2500), question(), silence(4000), question(), silence(3500)]);
    let call_task = {
        let base = s.base.clone();
        tokio::spawn(async move {
            let opts = CallOptions { server: base, audio, speed: 1.0, idle_ms: 2500, ..CallOptions::default() };
            place_call(&opts).await.expect("call completes")
        })
    };
    // After the first turn, every token is revoked: the next request gets
    // a 401, and the client must fetch a new token and try again.
    let state = mock.state.clone();
    eventually_long(|| !state.synthesized.lock().unwrap().is_empty()).await;
    *mock.state.token_secs.lock().unwrap() = 3600;
    eventually_long(|| state.synthesized.lock().unwrap().len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    mock.revoke_all();
    let report = call_task.await.unwrap();

    assert_eq!(mock.log().violations(), Vec::<String>::new(), "no expired token used, every JWT verified");
    assert!(mock.tokens_issued() >= 3, "refreshed before expiry and after the revocation: {}", mock.tokens_issued());
    assert!(*mock.state.refused_revoked.lock().unwrap() >= 1);
    let claims = mock.state.assertions.lock().unwrap()[0].clone();
    assert_eq!(claims["iss"], crate::mocks::google::EMAIL);

    let recognized = mock.state.recognized.lock().unwrap().clone();
    assert_eq!(recognized.len(), 2);
    let secs = recognized[0].len() as f64 / 8000.0;
    assert!((2.0..=3.5).contains(&secs), "μ-law at 8 kHz, one byte a sample: {secs:.2} s");
    let mut pcm = Vec::new();
    ulaw::decode_into(&recognized[0], &mut pcm);
    assert!(smoothness(&pcm) > 0.6, "the bytes are μ-law of the caller's speech");
    let synthesized = mock.state.synthesized.lock().unwrap().clone();
    assert_eq!(synthesized[0], GREETING);
    assert!(synthesized.iter().any(|t| t == "It is sunny today."));
    let eous = report.at(|m| *m == Moment::CallerEou);
    assert_eq!(eous.len(), 2);
    for eou in eous {
        assert!(!replies_after(&report, eou).is_empty(), "each turn is answered");
    }
    assert_eq!(mock.state.chats.lock().unwrap().len(), 2);
}

async fn eventually_long(cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn providers_are_chosen_by_environment() {
    let openai = [("OPENAI_API_KEY", "sk-live-abcdefghijklmnop".to_string())];
    let google = [("GOOGLE_CLOUD_SERVICE_ACCOUNT_JSON", "{}".to_string())];
    let choices = |c: &Config| (c.providers.stt, c.providers.llm, c.providers.tts);

    let none = config_from(&[]).unwrap();
    assert_eq!(choices(&none), (Choice::None, Choice::None, Choice::None));
    let o = config_from(&openai).unwrap();
    assert_eq!(choices(&o), (Choice::OpenAi, Choice::OpenAi, Choice::OpenAi));
    assert_eq!(o.providers.openai.as_ref().unwrap().voice, VOICE);
    let g = config_from(&google).unwrap();
    assert_eq!(choices(&g), (Choice::Google, Choice::Google, Choice::Google));
    let mut both = openai.to_vec();
    both.extend(google.clone());
    both.push(("HOTLINE_TTS", "google".into()));
    both.push(("HOTLINE_STT", "none".into()));
    assert_eq!(choices(&config_from(&both).unwrap()), (Choice::None, Choice::OpenAi, Choice::Google));

    let err = config_from(&[("HOTLINE_LLM", "google".into())]).unwrap_err();
    assert!(format!("{err:#}").contains("HOTLINE_LLM=google"), "{err:#}");
    let err = config_from(&[("HOTLINE_STT", "whisper".into())]).unwrap_err();
    assert!(format!("{err:#}").contains("HOTLINE_STT"), "{err:#}");
    assert!(!format!("{o:?}").contains("sk-live"), "the key never shows in Debug output");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_tokens_never_reach_the_logs() {
    let openai = OpenAiMock::start().await;
    openai.behave(|b| b.default_reply = "It is sunny today.".into());
    let google = GoogleMock::start().await;
    let mut env = openai.env();
    env.extend(google.env());
    env.push(("HOTLINE_TTS", "google".into()));
    env.push(("RUST_LOG", "info,hotline=debug,reqwest=debug,hyper=debug".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut child = crate::shutdown::spawn_hotline(&env).await;
    let opts = CallOptions {
        server: child.base.clone(),
        audio: concat(&[silence(1500), question(), silence(3000)]),
        speed: 1.0,
        ..CallOptions::default()
    };
    let report = place_call(&opts).await.unwrap();
    assert!(report.first(|m| *m == Moment::MarkReceived("t1-s0".into())).is_some(), "a full AI turn ran");
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.process.kill().await.unwrap();
    let mut logs = String::new();
    while let Ok(line) = child.logs.try_recv() {
        logs.push_str(&line);
        logs.push('\n');
    }
    for event in ["\"turn\"", "stt_text", "llm_text", "It is sunny today."] {
        assert!(logs.contains(event), "the AI path logs {event} (debug level)");
    }
    for secret in [crate::mocks::openai::KEY, "ya29.mock", "PRIVATE KEY"] {
        assert!(!logs.contains(secret), "{secret:?} appears in the logs");
    }
}

#[tokio::test]
async fn https_providers_are_verified_against_the_system_roots_plus_a_private_ca() {
    let (ca_pem, tls) = crate::mocks::private_ca();
    let mock = OpenAiMock::start_tls(tls).await;
    assert!(mock.url.starts_with("https://"));
    let ca_file = std::env::temp_dir().join(format!("hotline-test-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, &ca_pem).unwrap();

    // Without the CA the certificate is refused: the turn fails and says why.
    let untrusting = server_with(&mock.env()).await;
    let (report, _) = call(&untrusting, concat(&[silence(1500), question(), silence(2500)])).await;
    assert!(mock.log().requests("").is_empty(), "no request got through an untrusted certificate");
    let eou = report.first(|m| *m == Moment::CallerEou).unwrap();
    assert!(played_near(&report, replies_after(&report, eou)[0], APOLOGY));
    let ready: serde_json::Value =
        reqwest::get(format!("{}/readyz", untrusting.base)).await.unwrap().json().await.unwrap();
    let error = ready["providers"]["stt"]["last_error"]["message"].as_str().unwrap_or("").to_lowercase();
    assert!(error.contains("certificate"), "{ready}");

    // With it, the same call is a normal AI turn over TLS.
    let mut env = mock.env();
    env.push(("HOTLINE_PROVIDER_CA_FILE", ca_file.display().to_string()));
    let trusting = server_with(&env).await;
    let (report, _) = call(&trusting, concat(&[silence(1500), question(), silence(2500)])).await;
    assert!(report.first(|m| *m == Moment::MarkReceived("t1-s0".into())).is_some(), "{:?}", report.timeline);
    assert_eq!(mock.state.uploads.lock().unwrap().len(), 1);
    assert_eq!(mock.log().violations(), Vec::<String>::new());
    let _ = std::fs::remove_file(ca_file);
}

// ---- tools ------------------------------------------------------------------

#[tokio::test]
async fn the_llm_ends_the_call_with_end_call_after_the_goodbye_is_heard() {
    let mock = OpenAiMock::start().await;
    mock.behave(|b| b.tool_calls = [vec![MockToolCall::new("call_1", "end_call", "{}")]].into());
    let s = server_with(&mock.env()).await;
    let (report, _) = call(&s, concat(&[silence(1500), question(), silence(6000)])).await;
    assert_eq!(mock.log().violations(), Vec::<String>::new());

    let bodies = mock.state.chat_bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "the call ends: no second request");
    let tools: Vec<&str> =
        bodies[0]["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert_eq!(tools, ["end_call"], "transfer_to_human only with HOTLINE_TRANSFER_TO");
    assert_eq!(mock.state.speech.lock().unwrap().clone(), [GREETING, "Goodbye."]);
    let heard = report.first(|m| *m == Moment::MarkEchoed("t1-s0".into())).expect("the goodbye's mark came back");
    assert_eq!(report.close, Some((1000, "call ended by agent".into())), "the agent hung up: {:?}", report.timeline);
    assert!(heard > 0.0);
}

#[tokio::test]
async fn parallel_tool_calls_split_over_deltas_are_assembled_and_answered() {
    let mock = OpenAiMock::start().await;
    mock.behave(|b| {
        b.tool_calls = [vec![
            MockToolCall::new("call_a", "weather", r#"{"city":"Paris","unit":"celsius"}"#),
            MockToolCall::new("call_b", "stock", r#"{"symbol":"ACME"}"#),
        ]]
        .into();
        b.replies = ["".into(), "I cannot look that up.".into()].into();
    });
    let s = server_with(&mock.env()).await;
    let (report, _) = call(&s, concat(&[silence(1500), question(), silence(4000)])).await;
    assert_eq!(mock.log().violations(), Vec::<String>::new(), "every request is one OpenAI accepts");

    let bodies = mock.state.chat_bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2, "the tool results go back to the LLM");
    let messages = bodies[1]["messages"].as_array().unwrap();
    let n = messages.len();
    let assistant = &messages[n - 3];
    assert_eq!(assistant["role"], "assistant");
    assert!(assistant["content"].is_null(), "an assistant that only called tools: {assistant}");
    let calls = assistant["tool_calls"].as_array().unwrap();
    let got: Vec<(&str, &str, &str)> = calls
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap(),
                c["function"]["name"].as_str().unwrap(),
                c["function"]["arguments"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [("call_a", "weather", r#"{"city":"Paris","unit":"celsius"}"#), ("call_b", "stock", r#"{"symbol":"ACME"}"#)]
    );
    for (m, id) in messages[n - 2..].iter().zip(["call_a", "call_b"]) {
        assert_eq!((m["role"].as_str(), m["tool_call_id"].as_str()), (Some("tool"), Some(id)));
        assert_eq!(m["content"], r#"{"error":"unknown tool"}"#);
    }
    assert_eq!(bodies[1]["tools"], bodies[0]["tools"], "the same tools each round");
    assert!(mock.state.speech.lock().unwrap().contains(&"I cannot look that up.".to_string()));
    assert_eq!(report.close, Some((1000, "stream stopped".into())));
}

#[tokio::test]
async fn a_greeting_is_synthesized_once_and_the_next_call_plays_it_from_the_cache() {
    let mock = OpenAiMock::start().await;
    let s = server_with(&mock.env()).await;
    let (first, _) = call(&s, silence(2000)).await;
    let (second, _) = call(&s, silence(2000)).await;

    assert_eq!(mock.log().violations(), Vec::<String>::new());
    let speech = mock.state.speech.lock().unwrap().clone();
    assert_eq!(speech, [GREETING], "one speech request for two calls' greetings");
    let heard = |r: &CallReport| r.agent.iter().position(|&b| b != ulaw::SILENCE).map(|at| r.agent[at..].to_vec());
    let (a, b) = (heard(&first).expect("first greeting"), heard(&second).expect("second greeting"));
    let n = a.len().min(b.len()).min(8000);
    assert!(n >= 4000, "half a second of greeting at least, got {n} bytes");
    assert_eq!(a[..n], b[..n], "the same greeting, played from the cache");

    // Off: every call asks again.
    let mock = OpenAiMock::start().await;
    let mut env = mock.env();
    env.push(("HOTLINE_TTS_CACHE_KB", "0".into()));
    let s = server_with(&env).await;
    call(&s, silence(1500)).await;
    call(&s, silence(1500)).await;
    assert_eq!(mock.state.speech.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn the_configured_greeting_is_synthesized_when_the_server_starts() {
    let mock = OpenAiMock::start().await;
    let mut env = mock.env();
    env.push(("HOTLINE_GREETING", "Thanks for calling Acme.".into()));
    let s = server_with(&env).await;
    eventually("the greeting's speech request at start", || mock.state.speech.lock().unwrap().len() == 1).await;
    let (report, _) = call(&s, silence(1500)).await;
    assert_eq!(mock.state.speech.lock().unwrap().clone(), ["Thanks for calling Acme."], "no second request");
    assert!(report.agent.iter().any(|&b| b != ulaw::SILENCE), "the greeting played");
}

#[tokio::test]
async fn a_webhook_opens_a_provider_connection_that_the_calls_first_request_reuses() {
    let mock = OpenAiMock::start().await;
    let s = server_with(&mock.env()).await;
    let requests = || mock.log().requests.lock().unwrap().clone();
    assert!(requests().is_empty(), "nothing is asked of the provider before a call is coming");

    // The webhook alone: Twilio opens the stream a moment after it.
    stream_token(&s.base, "CAwarm1").await;
    eventually("the connection opened ahead", || !requests().is_empty()).await;
    let head = requests()[0].clone();
    assert_eq!((head.method.as_str(), head.path.as_str()), ("HEAD", "/"));
    assert!(head.headers.get("authorization").is_none(), "no key goes to the provider's root");
    // A burst of webhooks opens one connection, not one each.
    stream_token(&s.base, "CAwarm2").await;

    let _ = call(&s, concat(&[silence(1500), question(), silence(4000)])).await;
    let requests = requests();
    assert_eq!(mock.log().violations(), Vec::<String>::new());
    assert_eq!(requests.iter().filter(|r| r.method == hyper::Method::HEAD).count(), 1, "{requests:?}");
    let first = requests.iter().find(|r| r.method != hyper::Method::HEAD).expect("the call's requests");
    assert_eq!(first.conn, head.conn, "the call's first request ({}) found the connection open", first.path);
    assert_eq!(mock.state.uploads.lock().unwrap().len(), 1, "and the call went on as usual");
}
