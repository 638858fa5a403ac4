//! The realtime agent (`HOTLINE_AGENT=realtime`): whole real-time calls
//! through the real server, answered by a loopback stand-in of OpenAI's
//! Realtime API (`mocks/realtime_agent.rs`), the caller played by the
//! simulator (which plays the agent's audio in real time and echoes marks
//! as Twilio does).

use std::collections::HashMap;
use std::time::Duration;

use hotline::config::Config;
use hotline::sim::{CallOptions, CallReport, Moment, place_call};
use serde_json::Value;

use crate::mocks::realtime_agent::{Given, RealtimeAgentMock, Reply};
use crate::streaming::{eventually_true, question};
use crate::support::*;

async fn server(realtime: &RealtimeAgentMock) -> TestServer {
    let env: HashMap<String, String> = realtime.env().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let from_env = Config::from_lookup(|k| env.get(k).cloned()).expect("config from the environment");
    start_server(move |c| c.providers = from_env.providers).await
}

async fn call(s: &TestServer, audio: Vec<i16>) -> CallReport {
    let opts = CallOptions { server: s.base.clone(), audio, speed: 1.0, idle_ms: 2500, ..CallOptions::default() };
    place_call(&opts).await.expect("call completes")
}

/// Where `needle` starts in `haystack`, if it is there whole.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// How much of the start of `audio` the caller heard, in bytes: its
/// longest prefix found whole in what the simulator played.
fn heard_prefix(report: &CallReport, audio: &[u8]) -> usize {
    let (mut lo, mut hi) = (0, audio.len());
    // The prefix found is monotone in its length: bisect on whole frames.
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if find(&report.agent, &audio[..mid]).is_some() {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

fn replies(realtime: &RealtimeAgentMock) -> Vec<Given> {
    realtime.connections().iter().flat_map(|c| c.responses.clone()).filter(|r| r.said.is_none()).collect()
}

#[tokio::test]
async fn a_call_is_answered_with_the_models_own_mulaw() {
    let realtime = RealtimeAgentMock::start().await;
    let s = server(&realtime).await;
    let report = call(&s, concat(&[silence(1500), question(), silence(4000)])).await;

    assert_eq!(realtime.state.log.violations(), Vec::<String>::new());
    let connections = realtime.connections();
    assert_eq!(connections.len(), 1, "one session for the call");
    let c = &connections[0];
    let session = c.session.as_ref().expect("a session.update");
    assert_eq!(session["model"], "gpt-realtime", "HOTLINE_OPENAI_REALTIME_MODEL's default");
    assert!(session["instructions"].as_str().is_some_and(|i| i.contains("phone")), "the guest's system prompt");
    assert!(session["tools"].as_array().unwrap().iter().any(|t| t["name"] == "end_call"), "the guest's tools");
    // The guest's greeting, said by the model in its voice.
    let greeting = &c.responses[0];
    assert!(greeting.said.as_deref().is_some_and(|i| i.contains("How can I help?")), "{greeting:?}");
    // One utterance: cleared, appended, committed; about its 2 s (and the guest's pre-roll).
    assert_eq!(c.commits.len(), 1, "{:?}", c.commits);
    assert!((14_000..=24_000).contains(&c.commits[0]), "utterance of {} bytes", c.commits[0]);
    assert_eq!(c.of_type("input_audio_buffer.clear").len(), 1);
    let replies = replies(&realtime);
    assert_eq!(replies.len(), 1);
    let reply = &replies[0];
    assert_eq!(reply.status, "completed");
    // Every byte the model sent reached the caller as it was (no resampling,
    // no re-encoding), in one piece.
    let at = find(&report.agent, &reply.audio).expect("the reply's audio, whole, in what the caller heard");
    let eou = report.first(|m| *m == Moment::CallerEou).unwrap();
    let reply_ms = at as f64 / 8.0;
    println!("caller EoU at {eou:.0} ms, the reply's first byte played at {reply_ms:.0} ms");
    assert!(reply_ms > eou);
    // The greeting's audio too, before it.
    let greeting_at = find(&report.agent, &greeting.audio).expect("the greeting's audio");
    assert!(greeting_at < at);
    eventually_true(|| realtime.connections()[0].closed_cleanly).await;
}

#[tokio::test]
async fn a_barge_in_cancels_the_response_and_truncates_it_at_what_the_caller_heard() {
    let realtime = RealtimeAgentMock::start().await;
    // A long answer, generated a little faster than it plays: still
    // streaming when the caller talks over it.
    realtime.set(|b| {
        b.replies = [Reply::speech("Let me tell you all about the weather this week, day by day.", 8000)].into();
        b.delta_every = Duration::from_millis(15);
    });
    let s = server(&realtime).await;
    let report = call(&s, concat(&[silence(1500), question(), silence(3000), question(), silence(6000)])).await;

    assert_eq!(realtime.state.log.violations(), Vec::<String>::new());
    assert!(report.first(|m| *m == Moment::Clear).is_some(), "the server cleared Twilio's audio");
    let c = &realtime.connections()[0];
    assert_eq!(c.of_type("response.cancel").len(), 1, "the response was cancelled");
    let first = &replies(&realtime)[0];
    assert_eq!(first.status, "cancelled");
    let truncates = c.of_type("conversation.item.truncate");
    assert_eq!(truncates.len(), 1, "{truncates:?}");
    let t = &truncates[0];
    assert_eq!((t["item_id"].as_str(), t["content_index"].as_u64()), (Some(first.item_id.as_str()), Some(0)));
    let end_ms = t["audio_end_ms"].as_u64().unwrap();
    let heard_ms = heard_prefix(&report, &first.audio) as u64 / 8;
    println!(
        "barge-in: the caller heard {heard_ms} ms of the reply, the model's record cut at {end_ms} ms \
         ({} ms of it generated)",
        first.audio.len() / 8
    );
    assert!(heard_ms > 500 && heard_ms < 6000, "the reply was interrupted mid-way: {heard_ms} ms heard");
    assert!(end_ms.abs_diff(heard_ms) <= 60, "truncated at {end_ms} ms, heard {heard_ms} ms");
    // The second question was answered, after the interruption.
    assert_eq!(c.commits.len(), 2);
    let second = &replies(&realtime)[1];
    assert!(find(&report.agent, &second.audio).is_some(), "the second answer was heard");
}

#[tokio::test]
async fn a_tool_call_goes_to_the_call_logic_and_its_result_back_to_the_model() {
    let realtime = RealtimeAgentMock::start().await;
    realtime.set(|b| {
        b.replies = [
            // A tool the default agent does not have: it answers so, and the model goes on.
            Reply {
                text: String::new(),
                audio_ms: 0,
                call: Some(("check_weather".into(), r#"{"city":"Oslo"}"#.into())),
            },
            Reply::speech("I cannot check that, sorry.", 1200),
            // Then the caller is done: a goodbye, and the call ends once it is heard.
            Reply { text: "Goodbye!".into(), audio_ms: 600, call: Some(("end_call".into(), "{}".into())) },
        ]
        .into();
    });
    let s = server(&realtime).await;
    let audio = concat(&[silence(1500), question(), silence(4000), question(), silence(8000)]);
    let report = call(&s, audio).await;

    assert_eq!(realtime.state.log.violations(), Vec::<String>::new());
    let c = &realtime.connections()[0];
    let outputs: Vec<Value> = c.of_type("conversation.item.create");
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    let item = &outputs[0]["item"];
    assert_eq!(item["type"], "function_call_output");
    assert_eq!(item["output"], r#"{"error":"unknown tool"}"#);
    let given = replies(&realtime);
    assert_eq!(given.len(), 3, "the tool round went back to the model, then the goodbye: {given:?}");
    assert!(find(&report.agent, &given[1].audio).is_some(), "the answer after the tool was heard");
    let goodbye = find(&report.agent, &given[2].audio).expect("the goodbye was heard");
    // The agent hung up once the goodbye had played (the call's end, not the caller's).
    let closed = report.timeline.iter().find_map(|e| match &e.moment {
        Moment::ServerClosed(code, reason) => Some((e.at_ms, *code, reason.clone())),
        _ => None,
    });
    let (at, code, reason) = closed.expect("the server closed the call");
    assert_eq!((code, reason.as_str()), (1000, "call ended by agent"));
    assert!(at >= (goodbye + given[2].audio.len()) as f64 / 8.0 - 40.0, "hung up at {at} ms");
}

#[tokio::test]
async fn a_dropped_socket_is_reconnected_and_the_next_utterance_answered() {
    let realtime = RealtimeAgentMock::start().await;
    // The socket goes once the first answer is given (the greeting is the first response).
    realtime.set(|b| b.drop_after_responses = Some(2));
    let s = server(&realtime).await;
    let audio = concat(&[silence(1500), question(), silence(4500), question(), silence(4500)]);
    let report = call(&s, audio).await;

    assert_eq!(realtime.state.log.violations(), Vec::<String>::new());
    let connections = realtime.connections();
    assert_eq!(connections.len(), 2, "reconnected once");
    assert_eq!((connections[0].commits.len(), connections[0].responses.len()), (1, 2));
    let second = &connections[1];
    assert!(second.session.is_some(), "the new session was configured");
    // It was told the conversation so far, as text: the greeting, the
    // caller's words, the answer.
    let told: Vec<(String, String)> = second
        .of_type("conversation.item.create")
        .iter()
        .map(|e| (e["item"]["role"].as_str().unwrap().to_string(), e["item"]["content"][0]["text"].to_string()))
        .collect();
    assert_eq!(told.len(), 3, "{told:?}");
    assert_eq!(told[1], ("user".into(), "\"what is the weather like today\"".into()));
    assert_eq!(second.commits.len(), 1, "the second utterance went to the new session");
    let answer = second.responses.iter().find(|r| r.said.is_none()).expect("answered on the new socket");
    let at = find(&report.agent, &answer.audio).expect("the second answer was heard");
    let eous = report.at(|m| *m == Moment::CallerEou);
    assert!(at as f64 / 8.0 > eous[1], "after the second utterance");
}

#[tokio::test]
async fn a_socket_dropped_mid_answer_gets_the_apology_and_the_call_goes_on() {
    let realtime = RealtimeAgentMock::start().await;
    realtime.set(|b| b.drop_mid_reply_after_ms = Some(400));
    let s = server(&realtime).await;
    let audio = concat(&[silence(1500), question(), silence(5000), question(), silence(4500)]);
    let report = call(&s, audio).await;

    assert_eq!(realtime.state.log.violations(), Vec::<String>::new());
    let connections = realtime.connections();
    assert_eq!(connections.len(), 2, "reconnected once");
    let answer = connections[1].responses.iter().find(|r| r.said.is_none()).expect("the second question answered");
    assert!(find(&report.agent, &answer.audio).is_some(), "its answer was heard");
    assert!(apologized(&report), "the broken answer was followed by the apology");
}

/// Agent audio began between the caller's first and second utterances:
/// after a failed answer, that is the apology.
fn apologized(report: &CallReport) -> bool {
    let starts = report.at(|m| *m == Moment::CallerSpeechStart);
    let (first, second) = (starts[0], starts[starts.len() - 1]);
    let replies = report.at(|m| *m == Moment::ReplyStart);
    println!("caller speech starts {starts:?}, agent audio starts {replies:?}");
    replies.into_iter().any(|t| t > first && t < second)
}

#[tokio::test]
async fn an_error_event_fails_the_turn_and_the_next_one_is_answered() {
    let realtime = RealtimeAgentMock::start().await;
    realtime.set(|b| b.error_on_reply = Some(1));
    let s = server(&realtime).await;
    let audio = concat(&[silence(1500), question(), silence(5000), question(), silence(4500)]);
    let report = call(&s, audio).await;

    assert_eq!(realtime.state.log.violations(), Vec::<String>::new());
    assert!(apologized(&report), "the refused answer was followed by the apology");
    let c = &realtime.connections()[0];
    assert_eq!(c.commits.len(), 2, "both utterances were committed");
    let given = replies(&realtime);
    assert_eq!(given.len(), 1, "the first was refused, the second answered");
    assert!(find(&report.agent, &given[0].audio).is_some(), "the second answer was heard");
}
