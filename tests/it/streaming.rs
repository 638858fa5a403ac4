//! Streaming speech-to-text (`HOTLINE_STT=deepgram`): whole real-time calls
//! through the real server, with Deepgram's live API and OpenAI's LLM and
//! speech as loopback stand-ins (`mocks/`).

use std::collections::HashMap;

use hotline::config::Config;
use hotline::sim::{CallOptions, CallReport, Moment, place_call};

use crate::mocks::deepgram::DeepgramMock;
use crate::mocks::openai::OpenAiMock;
use crate::support::*;

async fn server(openai: &OpenAiMock, deepgram: &DeepgramMock) -> TestServer {
    let env: HashMap<String, String> =
        openai.env().into_iter().chain(deepgram.env()).map(|(k, v)| (k.to_string(), v)).collect();
    let from_env = Config::from_lookup(|k| env.get(k).cloned()).expect("config from the environment");
    start_server(move |c| c.providers = from_env.providers).await
}

pub(crate) async fn call(s: &TestServer, audio: Vec<i16>) -> CallReport {
    let opts = CallOptions { server: s.base.clone(), audio, speed: 1.0, idle_ms: 2500, ..CallOptions::default() };
    place_call(&opts).await.expect("call completes")
}

/// Two seconds of speech: one utterance.
pub(crate) fn question() -> Vec<i16> {
    fox()[..16_000].to_vec()
}

pub(crate) fn replied_after_eou(report: &CallReport) -> bool {
    let eou = report.first(|m| *m == Moment::CallerEou).expect("caller EoU");
    report.at(|m| *m == Moment::ReplyStart).into_iter().any(|r| r >= eou)
}

#[tokio::test]
async fn the_callers_audio_streams_to_deepgram_and_its_flushed_words_reach_the_llm() {
    let (openai, deepgram) = (OpenAiMock::start().await, DeepgramMock::start().await);
    deepgram.behave(|b| b.transcripts = ["is it going to rain".to_string()].into());
    let s = server(&openai, &deepgram).await;
    let audio = concat(&[silence(1500), question(), silence(4000)]);
    let sent_bytes = audio.len(); // one μ-law byte per sample
    let report = call(&s, audio).await;

    assert_eq!(deepgram.state.log.violations(), Vec::<String>::new());
    assert_eq!(openai.log().violations(), Vec::<String>::new());
    let connections = deepgram.connections();
    assert_eq!(connections.len(), 1, "one stream for the call: {connections:?}");
    let c = &connections[0];
    // Every frame until the stop, as it arrived (the end of the call may race the close).
    assert!(c.audio_bytes * 10 >= sent_bytes * 9, "{} of {sent_bytes} bytes streamed", c.audio_bytes);
    assert_eq!(c.finalizes, 1, "one flush, at the end of the one utterance");
    assert!(openai.state.uploads.lock().unwrap().is_empty(), "no batch transcription");
    let chats = openai.state.chats.lock().unwrap().clone();
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0].last().unwrap(), &("user".into(), "is it going to rain".into()));
    assert!(replied_after_eou(&report), "the agent answered");
    eventually_true(|| deepgram.connections()[0].closed_cleanly).await;
}

#[tokio::test]
async fn a_stream_dropped_mid_utterance_reconnects_and_resends_what_was_not_final() {
    let (openai, deepgram) = (OpenAiMock::start().await, DeepgramMock::start().await);
    // Half a second into the question (1.5 s of silence first): mid-utterance.
    deepgram.behave(|b| b.drop_after_bytes = Some(2000 * 8));
    let s = server(&openai, &deepgram).await;
    let audio = concat(&[silence(1500), question(), silence(4000)]);
    let sent_bytes = audio.len();
    let report = call(&s, audio).await;

    assert_eq!(deepgram.state.log.violations(), Vec::<String>::new());
    let connections = deepgram.connections();
    assert_eq!(connections.len(), 2, "reconnected once: {connections:?}");
    assert_eq!(connections[0].audio_bytes, 2000 * 8, "the first broke there");
    // The second started with the audio no final covered, all of the call
    // so far (nothing was final yet), and then went on: it has (nearly)
    // the whole call, not just what came after the break.
    let second = connections[1].audio_bytes;
    assert!(second * 10 >= sent_bytes * 9, "second connection: {second} of {sent_bytes} bytes");
    assert_eq!(connections[1].finalizes, 1);
    let chats = openai.state.chats.lock().unwrap().clone();
    assert_eq!(chats.len(), 1, "the utterance was answered once");
    assert_eq!(chats[0].last().unwrap(), &("user".into(), "what is the weather like today".into()));
    assert!(replied_after_eou(&report));
}

#[tokio::test]
async fn deepgrams_own_endpoint_answers_the_turn_without_a_flush() {
    // Deepgram finds the endpoint (300 ms of quiet) before the guest's
    // end-of-utterance silence (500 ms) is over: the words are final
    // already, so the turn needs no `Finalize` and its round trip.
    let (openai, deepgram) = (OpenAiMock::start().await, DeepgramMock::start().await);
    deepgram.behave(|b| {
        b.transcripts = ["is it going to rain".to_string()].into();
        b.endpointing = Some(std::time::Duration::from_millis(300));
        // A flush, if one were asked for, would show in the turn's timing.
        b.finalize_delay = std::time::Duration::from_millis(400);
    });
    let s = server(&openai, &deepgram).await;
    let report = call(&s, concat(&[silence(1500), question(), silence(4000)])).await;

    assert_eq!(deepgram.state.log.violations(), Vec::<String>::new());
    let connections = deepgram.connections();
    assert_eq!(connections.len(), 1, "{connections:?}");
    assert_eq!(connections[0].finalizes, 0, "no flush: the endpoint's final covered the voice");
    let chats = openai.state.chats.lock().unwrap().clone();
    assert_eq!(chats.len(), 1, "one turn: {chats:?}");
    assert_eq!(chats[0].last().unwrap(), &("user".into(), "is it going to rain".into()));
    assert!(replied_after_eou(&report), "the agent answered");
}

pub(crate) async fn eventually_true(cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
