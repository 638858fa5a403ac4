//! What checking who may start a call costs per call: verifying a
//! webhook's `X-Twilio-Signature` (a Twilio-sized form, both tokens of a
//! rotation tried on a mismatch), issuing the stream token into the TwiML,
//! and checking it at `start`.
//!
//! `cargo bench --bench webhook_auth`

use std::hint::black_box;
use std::time::SystemTime;

use criterion::{Criterion, criterion_group, criterion_main};
use hotline::twilio::signature::Verifier;
use hotline::twilio::stream_token::{StreamTokens, add_to_twiml};
use hotline_common::Secret;

/// The parameters of a real voice webhook.
fn twilio_form() -> Vec<(String, String)> {
    [
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", "CA0123456789abcdef0123456789abcdef"),
        ("CallStatus", "ringing"),
        ("Called", "+15550100000"),
        ("CalledCity", "SAN FRANCISCO"),
        ("CalledCountry", "US"),
        ("CalledState", "CA"),
        ("CalledZip", "94105"),
        ("Caller", "+15550199999"),
        ("CallerCity", "OAKLAND"),
        ("CallerCountry", "US"),
        ("CallerState", "CA"),
        ("CallerZip", "94601"),
        ("Direction", "inbound"),
        ("From", "+15550199999"),
        ("FromCity", "OAKLAND"),
        ("FromCountry", "US"),
        ("FromState", "CA"),
        ("FromZip", "94601"),
        ("To", "+15550100000"),
        ("ToCity", "SAN FRANCISCO"),
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("ToZip", "94105"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .to_vec()
}

const URL: &str = "https://agent.example.com/webhook/incoming_call";
const TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect action="https://agent.example.com/webhook/stream_ended"><Stream url="wss://agent.example.com/ws/twilio-media" statusCallback="https://agent.example.com/webhook/stream_status"><Parameter name="call_sid" value="CA0123456789abcdef0123456789abcdef"/></Stream></Connect></Response>"#;

fn webhook_auth(c: &mut Criterion) {
    let (primary, secondary) =
        (Secret::new("0123456789abcdef0123456789abcdef"), Secret::new("fedcba9876543210fedcba98"));
    let form = twilio_form();
    let verifier = Verifier::new([&primary, &secondary]);
    let good = Verifier::sign(&primary, URL, &form);
    let bad = Verifier::sign(&Secret::new("ffffffffffffffffffffffffffffffff"), URL, &form);
    c.bench_function("signature valid (webhook)", |b| {
        b.iter(|| verifier.verify(black_box(URL), black_box(&form), Some(good.as_bytes())))
    });
    c.bench_function("signature refused (2 tokens x 2 URL forms)", |b| {
        b.iter(|| verifier.verify(black_box(URL), black_box(&form), Some(bad.as_bytes())))
    });
    let (tokens, _) = StreamTokens::new(Some(&Secret::new("a-stream-secret-of-at-least-32-chars!")), &[]);
    c.bench_function("stream token issued into the TwiML", |b| {
        b.iter(|| {
            let token = tokens.issue(black_box("CA0123456789abcdef0123456789abcdef"), SystemTime::now());
            add_to_twiml(black_box(TWIML), &token)
        })
    });
    let token = tokens.issue("CA0123456789abcdef0123456789abcdef", SystemTime::now());
    c.bench_function("stream token checked at start", |b| {
        b.iter(|| tokens.verify(Some(black_box(&token)), "CA0123456789abcdef0123456789abcdef", SystemTime::now()))
    });
}

criterion_group!(benches, webhook_auth);
criterion_main!(benches);
