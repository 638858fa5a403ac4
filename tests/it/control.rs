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
    let from_env = config_from(&env);
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
        let from_env = config_from(&env);
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

/// A server with the REST stand-in, records and the admin API.
async fn dialling_server(twilio: &TwilioMock, data: &std::path::Path, dial_from: Option<&str>) -> TestServer {
    let mut env = twilio.env();
    if let Some(from) = dial_from {
        env.push(("HOTLINE_DIAL_FROM", from.into()));
    }
    let from_env = config_from(&env);
    let dir = data.join("data");
    start_server(move |c| {
        c.twilio = from_env.twilio;
        c.admin_token = Some(TOKEN.into());
        c.store = hotline::config::StoreSettings {
            backend: hotline::config::Backend::Sqlite(dir),
            ..hotline::config::StoreSettings::off()
        };
    })
    .await
}

async fn dial(base: &str, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
    let response =
        reqwest::Client::new().post(format!("{base}/api/calls")).bearer_auth(TOKEN).json(&body).send().await.unwrap();
    (response.status(), response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn an_outbound_call_is_placed_by_rest_and_runs_as_an_inbound_one_does() {
    let twilio = TwilioMock::start().await;
    let data = crate::postgres::TempDir::new("dial");
    let s = dialling_server(&twilio, data.path(), Some("+15557654321")).await;
    let (status, placed) = dial(&s.base, serde_json::json!({ "to": "+15551234567" })).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    assert_eq!(placed["status"], "queued");
    let sid = placed["call_sid"].as_str().unwrap().to_string();
    let created = &twilio.calls()[0];
    let field = |k: &str| created.form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(
        (created.what.as_str(), field("To").as_str(), field("From").as_str()),
        ("create", "+15551234567", "+15557654321")
    );
    assert_eq!(field("Url"), format!("{}/webhook/incoming_call", s.base));
    assert_eq!(field("StatusCallback"), format!("{}/webhook/call_status", s.base));
    assert_eq!(field("MachineDetection"), "", "no voicemail message to leave: no detection unless asked");
    assert_eq!(twilio.violations(), Vec::<String>::new());

    // Detection asked for: asynchronous, its verdict to our webhook.
    let (status, _) = dial(&s.base, serde_json::json!({ "to": "+15551234568", "detect_machine": true })).await;
    assert_eq!(status, StatusCode::CREATED);
    let created = &twilio.calls()[1];
    let field = |k: &str| created.form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!((field("MachineDetection").as_str(), field("AsyncAmd").as_str()), ("DetectMessageEnd", "true"));
    assert_eq!(field("AsyncAmdStatusCallback"), format!("{}/webhook/amd", s.base));

    // Twilio, once the callee answers: the webhook, then the stream.
    let answered = CallOptions {
        server: s.base.clone(),
        audio: concat(&[silence(500), tone(800, 300.0), silence(1500)]),
        speed: 4.0,
        call_sid: sid.clone(),
        from: "+15557654321".into(),
        direction: "outbound-api",
        idle_ms: 500,
        ..CallOptions::default()
    };
    let report = place_call(&answered).await.unwrap();
    assert!(report.frames_received > 0, "the agent spoke");
    let status = reqwest::Client::new()
        .post(format!("{}/webhook/call_status", s.base))
        .form(&[("CallSid", sid.as_str()), ("CallStatus", "completed"), ("Direction", "outbound-api")])
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    let deadline = Instant::now() + Duration::from_secs(10);
    let record = loop {
        let r = reqwest::Client::new().get(format!("{}/api/calls/{sid}", s.base)).bearer_auth(TOKEN).send().await;
        let r = r.unwrap();
        if r.status() == StatusCode::OK {
            break r.json::<serde_json::Value>().await.unwrap();
        }
        assert!(Instant::now() < deadline, "the outbound call was never recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(record["direction"], "outbound", "{record}");
}

#[tokio::test]
async fn outbound_requests_are_checked_before_twilio_hears_of_them() {
    let twilio = TwilioMock::start().await;
    let data = crate::postgres::TempDir::new("dial-bad");
    let s = dialling_server(&twilio, data.path(), None).await;
    for (body, named) in [
        (serde_json::json!({ "to": "+15551234567" }), "from: needed"),
        (serde_json::json!({ "to": "555-1234", "from": "+15557654321" }), "to: an E.164"),
        (serde_json::json!({ "to": "+15551234567", "from": "sip:x@y" }), "from: an E.164"),
        (serde_json::json!({ "to": "+15551234567", "from": "+15557654321", "url": "x" }), "unknown field"),
    ] {
        let (status, answer) = dial(&s.base, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(answer["error"].as_str().unwrap().contains(named), "{named}: {answer}");
    }
    assert!(twilio.calls().is_empty(), "nothing reached Twilio");
    // Twilio refusing (a number it cannot dial): a 502 with its message.
    twilio.fail_next(&[500]);
    twilio.fail_next(&[500]);
    let (status, answer) = dial(&s.base, serde_json::json!({ "to": "+15551234567", "from": "+15557654321" })).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("Twilio answered 500"), "{answer}");
    assert_eq!(twilio.calls().len(), 1, "a create is not repeated after a 5xx (it may have placed the call)");
    // Without the REST API: 409, saying what to set.
    let off = start_server(|c| c.admin_token = Some(TOKEN.into())).await;
    let (status, answer) = dial(&off.base, serde_json::json!({ "to": "+15551234567", "from": "+15557654321" })).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(answer["error"].as_str().unwrap().contains("TWILIO_ACCOUNT_SID"), "{answer}");
}

#[tokio::test]
async fn hotline_dial_asks_the_server_to_place_the_call() {
    let twilio = TwilioMock::start().await;
    let data = crate::postgres::TempDir::new("dial-cli");
    let s = dialling_server(&twilio, data.path(), Some("+15557654321")).await;
    let run = |to: &'static str| {
        hotline_command(&[("HOTLINE_ADMIN_TOKEN", TOKEN)]).args(["dial", to, "--url", &s.base]).output()
    };
    let placed = run("+15551234567").await.unwrap();
    let stdout = String::from_utf8_lossy(&placed.stdout);
    assert!(placed.status.success(), "{stdout} {}", String::from_utf8_lossy(&placed.stderr));
    assert!(stdout.starts_with("CA") && stdout.trim_end().ends_with("(queued)"), "{stdout}");
    let refused = run("555").await.unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not placed: to: an E.164"), "{refused:?}");
    assert_eq!(twilio.calls().len(), 1);
}
