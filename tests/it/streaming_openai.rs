//! Streaming speech-to-text from OpenAI's realtime transcription
//! (`HOTLINE_STT=openai-realtime`): whole real-time calls through the real
//! server, with the realtime endpoint and OpenAI's LLM and speech as
//! loopback stand-ins (`mocks/`).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use hotline::config::Config;
use hotline::sim::{CallOptions, Moment, place_call};

use crate::mocks::openai::OpenAiMock;
use crate::mocks::openai_realtime::OpenAiRealtimeMock;
use crate::streaming::{call, eventually_true, question, replied_after_eou};
use crate::support::*;

fn env(openai: &OpenAiMock, realtime: &OpenAiRealtimeMock) -> Vec<(&'static str, String)> {
    openai.env().into_iter().chain(realtime.env()).collect()
}

async fn server(openai: &OpenAiMock, realtime: &OpenAiRealtimeMock) -> TestServer {
    let env: HashMap<String, String> = env(openai, realtime).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let from_env = Config::from_lookup(|k| env.get(k).cloned()).expect("config from the environment");
    start_server(move |c| c.providers = from_env.providers).await
}

fn user_turns(openai: &OpenAiMock) -> Vec<(String, String)> {
    let chats = openai.state.chats.lock().unwrap().clone();
    chats.iter().map(|chat| chat.last().unwrap().clone()).collect()
}

#[tokio::test]
async fn the_callers_audio_streams_to_openai_and_the_committed_items_words_reach_the_llm() {
    let (openai, realtime) = (OpenAiMock::start().await, OpenAiRealtimeMock::start().await);
    realtime.behave(|b| {
        b.transcripts = ["is it going to rain".to_string()].into();
        b.transcribe_delay = Duration::from_millis(150);
    });
    let s = server(&openai, &realtime).await;
    let audio = concat(&[silence(1500), question(), silence(4000)]);
    let sent_bytes = audio.len(); // one μ-law byte per sample
    let report = call(&s, audio).await;

    assert_eq!(realtime.state.log.violations(), Vec::<String>::new());
    assert_eq!(openai.log().violations(), Vec::<String>::new());
    let connections = realtime.connections();
    assert_eq!(connections.len(), 1, "one stream for the call: {connections:?}");
    let c = &connections[0];
    let model = &c.session.as_ref().expect("a session.update")["session"]["audio"]["input"]["transcription"]["model"];
    assert_eq!(model, "gpt-4o-mini-transcribe", "HOTLINE_OPENAI_STT_MODEL's default");
    // Every frame until the stop, as it arrived (the end of the call may race the close).
    assert!(c.audio_bytes * 10 >= sent_bytes * 9, "{} of {sent_bytes} bytes streamed", c.audio_bytes);
    assert_eq!((c.commits, c.empty_commits), (1, 0), "one commit, at the end of the one utterance");
    assert_eq!(c.items, ["is it going to rain"]);
    assert!(openai.state.uploads.lock().unwrap().is_empty(), "no batch transcription");
    assert_eq!(user_turns(&openai), [("user".to_string(), "is it going to rain".to_string())]);
    assert!(replied_after_eou(&report), "the agent answered");
    eventually_true(|| realtime.connections()[0].closed_cleanly).await;
}

#[tokio::test]
async fn a_stream_dropped_mid_utterance_reconnects_and_resends_what_was_not_final() {
    let (openai, realtime) = (OpenAiMock::start().await, OpenAiRealtimeMock::start().await);
    // Half a second into the question (1.5 s of silence first): mid-utterance.
    realtime.behave(|b| b.drop_after_bytes = Some(2000 * 8));
    let s = server(&openai, &realtime).await;
    let audio = concat(&[silence(1500), question(), silence(4000)]);
    let sent_bytes = audio.len();
    let report = call(&s, audio).await;

    assert_eq!(realtime.state.log.violations(), Vec::<String>::new());
    let connections = realtime.connections();
    assert_eq!(connections.len(), 2, "reconnected once: {connections:?}");
    assert_eq!((connections[0].audio_bytes, connections[0].commits), (2000 * 8, 0), "the first broke there");
    // The second began with its own session.update, then the audio no
    // final covered (all of the call so far) and went on: it has (nearly)
    // the whole call, not just what came after the break.
    assert!(connections[1].session.is_some());
    let second = connections[1].audio_bytes;
    assert!(second * 10 >= sent_bytes * 9, "second connection: {second} of {sent_bytes} bytes");
    assert_eq!(connections[1].commits, 1);
    assert_eq!(user_turns(&openai), [("user".to_string(), "what is the weather like today".to_string())]);
    assert!(replied_after_eou(&report));
}

#[tokio::test]
async fn a_stream_dropped_at_the_commit_resends_the_utterance_and_commits_again() {
    let (openai, realtime) = (OpenAiMock::start().await, OpenAiRealtimeMock::start().await);
    realtime.behave(|b| {
        b.drop_at_commit = true;
        b.transcripts = ["is it going to rain".to_string()].into();
    });
    let s = server(&openai, &realtime).await;
    let report = call(&s, concat(&[silence(1500), question(), silence(4000)])).await;

    assert_eq!(realtime.state.log.violations(), Vec::<String>::new());
    let connections = realtime.connections();
    assert_eq!(connections.len(), 2, "reconnected once: {connections:?}");
    assert_eq!((connections[0].commits, connections[0].items.len()), (1, 0), "the first broke at its commit");
    // The utterance's audio, committed but never transcribed, is sent again.
    assert!(connections[1].audio_bytes >= connections[0].audio_bytes, "{connections:?}");
    assert_eq!(connections[1].commits, 1);
    assert_eq!(connections[1].items, ["is it going to rain"]);
    assert_eq!(user_turns(&openai), [("user".to_string(), "is it going to rain".to_string())]);
    assert!(replied_after_eou(&report));
}

#[tokio::test]
async fn each_utterance_is_its_own_item_and_audio_after_a_commit_is_the_next_ones() {
    let (openai, realtime) = (OpenAiMock::start().await, OpenAiRealtimeMock::start().await);
    realtime.behave(|b| b.transcripts = ["is it going to rain".to_string(), "and tomorrow".to_string()].into());
    openai.behave(|b| b.default_reply = "Yes.".into());
    let s = server(&openai, &realtime).await;
    let audio = concat(&[silence(1000), question(), silence(4000), question(), silence(4000)]);
    let report = call(&s, audio).await;

    assert_eq!(realtime.state.log.violations(), Vec::<String>::new());
    let connections = realtime.connections();
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0].items, ["is it going to rain", "and tomorrow"]);
    // Each commit cleared the buffer and appended its utterance again: the
    // second item is its 2 s of speech (with the pre-roll, the end-of-
    // utterance silence and the slack), not all 6 s since the first commit.
    assert_eq!(connections[0].clears, 2);
    let second = connections[0].item_bytes[1];
    assert!((2000 * 8..=4000 * 8).contains(&second), "the second item has {second} bytes");
    let users: Vec<String> = openai
        .state
        .chats
        .lock()
        .unwrap()
        .last()
        .unwrap()
        .iter()
        .filter(|(role, _)| role == "user")
        .map(|(_, text)| text.clone())
        .collect();
    assert_eq!(users, ["is it going to rain", "and tomorrow"], "the second turn sees both, in order");
    assert_eq!(report.at(|m| *m == Moment::CallerEou).len(), 2);
}

#[tokio::test]
async fn barge_in_cancels_the_reply_and_the_interruption_is_its_own_item() {
    let (openai, realtime) = (OpenAiMock::start().await, OpenAiRealtimeMock::start().await);
    realtime.behave(|b| b.transcripts = ["tell me", "wait"].map(String::from).into());
    openai.behave(|b| {
        b.replies = [
            "Sure. Let me see what I can find for you right now. \
             One two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen \
             seventeen eighteen nineteen twenty twenty-one twenty-two twenty-three twenty-four.",
            "Okay.",
        ]
        .map(String::from)
        .into();
        b.llm_token_delay = Duration::from_millis(50);
        b.tts_ms_per_char = 60;
        b.tts_chunk_pause = Duration::from_millis(100); // real time
    });
    let s = server(&openai, &realtime).await;
    // The greeting lasts 2.3 s at 60 ms a character: wait for it.
    let audio = concat(&[silence(3000), question(), silence(1300), question(), silence(4000)]);
    let report = call(&s, audio).await;
    assert_eq!(realtime.state.log.violations(), Vec::<String>::new());
    assert_eq!(openai.log().violations(), Vec::<String>::new());

    let onsets = report.at(|m| *m == Moment::CallerSpeechStart);
    let eous = report.at(|m| *m == Moment::CallerEou);
    assert!(onsets.len() >= 2 && eous.len() >= 2, "two utterances: {onsets:?} {eous:?}");
    let clear = report.first(|m| *m == Moment::Clear).expect("barge-in sends clear");
    assert!(clear >= onsets[1] && clear - onsets[1] <= 300.0, "clear {clear} ms for speech at {} ms", onsets[1]);
    let late: Vec<f64> =
        report.at(|m| *m == Moment::ReplyStart).into_iter().filter(|&t| t > clear && t < eous[1]).collect();
    assert!(late.is_empty(), "late audio after the clear at {late:?}");
    assert!(report.at(|m| *m == Moment::ReplyStart).into_iter().any(|t| t >= eous[1]), "the interruption is answered");

    let connections = realtime.connections();
    assert_eq!(connections.len(), 1, "the stream outlives the cancelled turn");
    assert_eq!(connections[0].items, ["tell me", "wait"]);
    let chats = openai.state.chats.lock().unwrap().clone();
    assert_eq!(chats.len(), 2);
    assert_eq!(chats[1].last().unwrap(), &("user".to_string(), "wait".to_string()));
}

/// The release binary with debug logs, to see what the listener handed the guest.
#[tokio::test]
async fn partials_reach_the_guest_as_the_words_so_far_of_the_item() {
    let (openai, realtime) = (OpenAiMock::start().await, OpenAiRealtimeMock::start().await);
    realtime.behave(|b| b.transcripts = ["is it going to rain".to_string()].into());
    let log = std::env::temp_dir().join(format!("hotline-rtstt-partials-{}.log", std::process::id()));
    let vars = env(&openai, &realtime);
    let mut vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.push(("RUST_LOG", "hotline=debug"));
    let _process = hotline_command(&vars).stderr(std::fs::File::create(&log).unwrap()).spawn().expect("spawn hotline");
    let base = listening_at(&log).await;
    let opts = CallOptions {
        server: base,
        audio: concat(&[silence(1000), question(), silence(3000)]),
        speed: 1.0,
        idle_ms: 2500,
        ..CallOptions::default()
    };
    let report = place_call(&opts).await.expect("call completes");
    assert!(replied_after_eou(&report));

    let lines = log_lines(&log);
    let partials: Vec<&str> =
        lines.iter().filter(|l| l["event"] == "stt_partial").filter_map(|l| l["text"].as_str()).collect();
    assert_eq!(partials, ["is", "is it", "is it going", "is it going to", "is it going to rain"]);
    // The listener's (the guest logs an `stt_final` of its own, without a provider).
    let finals: Vec<_> =
        lines.iter().filter(|l| l["event"] == "stt_final" && l["provider"] == "openai-realtime").collect();
    assert_eq!(finals.len(), 1, "one utterance: {finals:?}");
    assert_eq!(finals[0]["partials"].as_u64(), Some(5));
    let open = lines.iter().find(|l| l["event"] == "stt_stream_open").expect("stt_stream_open");
    assert_eq!(open["provider"], "openai-realtime");
    assert_eq!(user_turns(&openai), [("user".to_string(), "is it going to rain".to_string())]);
    let _ = std::fs::remove_file(&log);
}

async fn listening_at(log: &Path) -> String {
    for _ in 0..400 {
        if let Some(line) = log_lines(log).into_iter().find(|l| l["event"] == "listening") {
            let base = format!("http://{}", line["addr"].as_str().unwrap());
            // Ready: the guest is loaded.
            for _ in 0..400 {
                if reqwest::get(format!("{base}/readyz")).await.is_ok_and(|r| r.status().is_success()) {
                    return base;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("hotline never listened: {}", std::fs::read_to_string(log).unwrap_or_default());
}

fn log_lines(log: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}
