//! Call control over Twilio's REST API, against a loopback stand-in that
//! checks auth and forms as Twilio does: the agent hanging up completes
//! the phone call, not only the stream; `stream_ended` answers `<Hangup/>`;
//! REST failures are retried once where safe and never touch the call.

use std::time::{Duration, Instant};

use hotline::sim::{CallOptions, place_call};
use reqwest::StatusCode;

use crate::mocks::twilio::{RestCall, TwilioMock};
use crate::support::*;

async fn server_with(twilio: &TwilioMock) -> TestServer {
    let env = twilio.env();
    let from_env =
        hotline::config::Config::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    start_server(move |c| {
        c.twilio = from_env.twilio;
        c.guest_path = Some(PROBE_GUEST.into());
    })
    .await
}

/// A call whose guest (the probe) hangs up at the caller's `0`.
fn hanging_up(base: &str, sid: &str) -> CallOptions {
    CallOptions {
        server: base.into(),
        audio: silence(2000),
        speed: 4.0,
        dtmf: vec![(300, '0')],
        call_sid: sid.into(),
        idle_ms: 3000,
        ..CallOptions::default()
    }
}

/// The stand-in's requests, once there are `n`.
async fn rest_calls(twilio: &TwilioMock, n: usize) -> Vec<RestCall> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let calls = twilio.calls();
        if calls.len() >= n {
            return calls;
        }
        assert!(Instant::now() < deadline, "{} REST requests, waited for {n}: {calls:?}", calls.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn completed(sid: &str) -> RestCall {
    RestCall { what: format!("update {sid}"), form: vec![("Status".into(), "completed".into())] }
}

#[tokio::test]
async fn the_agent_hanging_up_completes_the_phone_call() {
    let twilio = TwilioMock::start().await;
    let s = server_with(&twilio).await;
    let sid = "CActl00000000000000000000000000001";
    let report = place_call(&hanging_up(&s.base, sid)).await.unwrap();
    assert_eq!(report.close.as_ref().map(|c| c.0), Some(1000), "the stream closed normally: {:?}", report.close);
    assert_eq!(rest_calls(&twilio, 1).await, [completed(sid)]);
    assert_eq!(twilio.violations(), Vec::<String>::new());

    // Twilio then asks the action URL what comes next: the end.
    let ended = reqwest::Client::new()
        .post(format!("{}/webhook/stream_ended", s.base))
        .form(&[("CallSid", sid), ("CallStatus", "in-progress")])
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::OK);
    assert_eq!(ended.headers()["content-type"], "text/xml; charset=utf-8");
    let twiml = ended.text().await.unwrap();
    let doc = roxmltree::Document::parse(&twiml).unwrap();
    let verbs: Vec<&str> =
        doc.root_element().children().filter(|n| n.is_element()).map(|n| n.tag_name().name()).collect();
    assert_eq!(verbs, ["Hangup"], "{twiml}");
}

#[tokio::test]
async fn rest_failures_are_retried_once_when_it_may_help_and_never_touch_the_call() {
    let twilio = TwilioMock::start().await;
    let s = server_with(&twilio).await;
    // A 503, then success: retried once.
    twilio.fail_next(&[503]);
    place_call(&hanging_up(&s.base, "CActl00000000000000000000000000002")).await.unwrap();
    let calls = rest_calls(&twilio, 2).await;
    let retried = completed("CActl00000000000000000000000000002");
    assert_eq!(calls, [retried.clone(), retried]);
    // A 404 (the call is over already) is not retried, nor is a 401.
    for (status, sid) in [(404, "CActl00000000000000000000000000003"), (401, "CActl00000000000000000000000000004")] {
        twilio.fail_next(&[status]);
        let report = place_call(&hanging_up(&s.base, sid)).await.unwrap();
        assert_eq!(report.close.as_ref().map(|c| c.0), Some(1000), "the call ended as asked");
    }
    let calls = rest_calls(&twilio, 4).await;
    tokio::time::sleep(Duration::from_millis(800)).await; // a retry would come after 500 ms
    assert_eq!(twilio.calls().len(), 4, "no retry after 404 or 401: {calls:?}");
    // A stand-in that is not there: the call still ends as it should.
    drop(twilio);
    let s2 = {
        let gone = TwilioMock::start().await;
        let env = gone.env();
        let from_env =
            hotline::config::Config::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
                .unwrap();
        let mut rest = from_env.twilio.unwrap();
        rest.api_url = "http://127.0.0.1:9".into(); // discard port: nothing listens
        start_server(move |c| {
            c.twilio = Some(rest);
            c.guest_path = Some(PROBE_GUEST.into());
        })
        .await
    };
    let report = place_call(&hanging_up(&s2.base, "CActl00000000000000000000000000005")).await.unwrap();
    assert_eq!(report.close.as_ref().map(|c| c.0), Some(1000));
    assert_eq!(reqwest::get(format!("{}/healthz", s.base)).await.unwrap().status(), StatusCode::OK);
}
