//! The guests' `fetch`: the host's policy and requests against loopback
//! HTTP servers (allowed, refused before any connection, timed out, cut at
//! the size limit, redirects handed back, secrets added by name), and the
//! orders example in whole calls: the real binary with its settings, the
//! orders API and the OpenAI stand-in for speech.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use hotline::fetch::Fetcher;
use hotline::providers::Providers;
use hotline::sandbox::wit::{FetchError, HttpRequest, HttpResponse};
use hotline::sim::{CallOptions, place_call};
use http_body_util::{BodyExt, Full};
use hyper::{Response, StatusCode};

use crate::mocks::openai::OpenAiMock;
use crate::mocks::realtime_agent::RealtimeAgentMock;
use crate::mocks::{Body, Recorded, json_response, serve};
use crate::support::*;

const TOKEN: &str = "Bearer orders-s3cr3t-0123456789";
const SORRY: &str = "Sorry, I cannot look up orders right now. Please try again later.";

/// A loopback orders API: `/orders/1234` is shipped (with the token),
/// `/orders/slow` answers after 3 s, `/orders/huge` sends 2 MiB,
/// `/redirect` points elsewhere; it keeps every request.
async fn orders_api() -> (String, Arc<Mutex<Vec<Recorded>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let addr = serve(
        move |r: Recorded| {
            log.lock().unwrap().push(r.clone());
            async move {
                let authorized = r.headers.get("authorization").is_some_and(|v| v == TOKEN);
                match r.path.as_str() {
                    _ if !authorized => json_response(StatusCode::UNAUTHORIZED, serde_json::json!({"error": "token"})),
                    "/orders/1234" => {
                        json_response(StatusCode::OK, serde_json::json!({"status": "shipped", "arrives": "Friday"}))
                    }
                    "/orders/slow" | "/orders/5" => {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        json_response(StatusCode::OK, serde_json::json!({"status": "late"}))
                    }
                    "/orders/huge" => body_response(StatusCode::OK, vec![b'x'; 2 << 20]),
                    "/redirect" => Response::builder()
                        .status(StatusCode::FOUND)
                        .header("location", "https://elsewhere.example/")
                        .body(empty())
                        .unwrap(),
                    _ => json_response(StatusCode::NOT_FOUND, serde_json::json!({"error": "no such order"})),
                }
            }
        },
        None,
    )
    .await;
    (format!("http://{addr}"), seen)
}

fn body_response(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let body = Full::new(Bytes::from(body)).map_err(|e: std::convert::Infallible| match e {}).boxed();
    Response::builder().status(status).header("X-Order-Api", "1").body(body).unwrap()
}

fn empty() -> Body {
    body_response(StatusCode::OK, Vec::new()).into_body()
}

/// A fetcher with the settings these variables give, as `serve` builds it.
fn fetcher(env: &[(&str, String)]) -> Fetcher {
    let config = config_from(env);
    let providers = Providers::new(config.providers.clone()).unwrap();
    Fetcher::new(providers.fetch_client, config.fetch)
}

fn policy(api: &str) -> Vec<(&'static str, String)> {
    vec![
        ("HOTLINE_GUEST_ALLOWED_HOSTS", format!("https://api.example.com, {api}")),
        ("HOTLINE_GUEST_SECRETS", format!(r#"{{"orders_token": "{TOKEN}"}}"#)),
        ("HOTLINE_GUEST_FETCH_TIMEOUT_MS", "500".into()),
    ]
}

fn get(url: &str) -> HttpRequest {
    HttpRequest {
        id: 7,
        method: "GET".into(),
        url: url.into(),
        headers: vec![("Accept".into(), "application/json".into())],
        body: Vec::new(),
        secret_headers: vec![("Authorization".into(), "orders_token".into())],
    }
}

async fn fetch(f: &Fetcher, request: HttpRequest) -> Result<HttpResponse, FetchError> {
    f.perform(f.check(request)?).await
}

#[tokio::test]
async fn an_allowed_request_is_answered_with_the_secret_added() {
    let (api, seen) = orders_api().await;
    let f = fetcher(&policy(&api));
    let response = fetch(&f, get(&format!("{api}/orders/1234?verbose=1"))).await.unwrap();
    assert_eq!(response.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body, serde_json::json!({"status": "shipped", "arrives": "Friday"}));
    assert!(response.headers.iter().any(|(k, v)| k == "content-type" && v == "application/json"));
    assert!(response.headers.iter().all(|(k, _)| *k == k.to_lowercase()), "{:?}", response.headers);
    let request = seen.lock().unwrap()[0].clone();
    assert_eq!(request.headers["authorization"], TOKEN, "the host added the secret");
    assert_eq!(request.headers["accept"], "application/json");

    // Other statuses are answers too, headers lower-cased.
    let missing = fetch(&f, get(&format!("{api}/orders/999"))).await.unwrap();
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn disallowed_or_malformed_requests_are_refused_before_any_connection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = format!("http://{}", listener.local_addr().unwrap());
    let (api, _) = orders_api().await;
    let f = fetcher(&policy(&api));
    let refused = |r: Result<HttpResponse, FetchError>| match r {
        Err(FetchError::Refused(why)) => why,
        other => panic!("not refused: {other:?}"),
    };
    let why = refused(fetch(&f, get(&format!("{other}/orders/1"))).await);
    assert!(why.contains("is not in HOTLINE_GUEST_ALLOWED_HOSTS"), "{why}");
    assert!(listener.accept().now_or_never().is_none(), "no connection was made to a host not allowed");

    let cases: Vec<(HttpRequest, &str)> = vec![
        (HttpRequest { method: "TRACE".into(), ..get(&format!("{api}/")) }, "method"),
        (get("not a url"), "does not parse"),
        (get("https://api.example.com:8443/"), "not in HOTLINE_GUEST_ALLOWED_HOSTS"),
        (get("http://api.example.com/"), "not in HOTLINE_GUEST_ALLOWED_HOSTS"),
        (HttpRequest { secret_headers: vec![("x-key".into(), "nope".into())], ..get(&api) }, "unknown secret \"nope\""),
        (HttpRequest { headers: vec![("Host".into(), "evil".into())], ..get(&api) }, "host's to set"),
        (HttpRequest { headers: vec![("Connection".into(), "close".into())], ..get(&api) }, "host's to set"),
        (HttpRequest { headers: vec![("x-a".into(), "a\r\nb".into())], ..get(&api) }, "invalid value"),
        (HttpRequest { body: vec![0; 65 * 1024], method: "POST".into(), ..get(&api) }, "more than 65536"),
        (get(&api.replace("http://", "http://user:pw@")), "user or password"),
    ];
    for (request, expected) in cases {
        let why = refused(fetch(&f, request).await);
        assert!(why.contains(expected), "{why:?} does not say {expected:?}");
        assert!(!why.contains(TOKEN), "a refusal names no secret value");
    }

    // With no allowed hosts (the default), every fetch is refused.
    let off = fetcher(&[]);
    assert!(refused(fetch(&off, get(&api)).await).contains("fetch is off"));
}

#[tokio::test]
async fn slow_huge_redirected_and_unreachable_requests_get_their_errors() {
    let (api, _) = orders_api().await;
    let f = fetcher(&policy(&api));
    assert!(matches!(fetch(&f, get(&format!("{api}/orders/slow"))).await, Err(FetchError::Timeout)));
    assert!(matches!(fetch(&f, get(&format!("{api}/orders/huge"))).await, Err(FetchError::TooLarge)));

    // A limit above the body lets it through.
    let mut roomy = policy(&api);
    roomy.push(("HOTLINE_GUEST_FETCH_MAX_BYTES", (4 << 20).to_string()));
    let big = fetch(&fetcher(&roomy), get(&format!("{api}/orders/huge"))).await.unwrap();
    assert_eq!(big.body.len(), 2 << 20);

    // A redirect is handed to the guest, not followed.
    let redirect = fetch(&f, get(&format!("{api}/redirect"))).await.unwrap();
    assert_eq!(redirect.status, 302);
    assert!(redirect.headers.contains(&("location".to_string(), "https://elsewhere.example/".to_string())));

    // A server that is gone: `failed`, with the reason and without the URL.
    let gone = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let f = fetcher(&policy(&gone));
    match fetch(&f, get(&format!("{gone}/orders/1?secret-query"))).await {
        Err(FetchError::Failed(why)) => assert!(!why.contains("secret-query"), "{why}"),
        other => panic!("expected failed: {other:?}"),
    }
}

/// The settings of a server running the orders example against `api`.
/// The orders example against `api`, with the providers of `providers`.
fn orders_env(api: &str, providers: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    let mut env = providers;
    env.push(("HOTLINE_GUEST", env!("HOTLINE_GUEST_ORDERS_WASM").into()));
    env.push(("HOTLINE_GUEST_ALLOWED_HOSTS", api.into()));
    env.push(("HOTLINE_GUEST_SECRETS", format!(r#"{{"orders_token": "{TOKEN}"}}"#)));
    env.push(("HOTLINE_GUEST_VARIABLES", format!(r#"{{"orders_api": "{api}"}}"#)));
    env
}

fn keyed(base: &str, sid: &str, keys: &str) -> CallOptions {
    let dtmf = keys.chars().enumerate().map(|(i, key)| (300 + 100 * i as u64, key)).collect();
    keypad_call(base, sid, dtmf)
}

/// The texts the speech stand-in was asked for, once one contains `text`.
async fn spoken(openai: &OpenAiMock, text: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let speech = openai.state.speech.lock().unwrap().clone();
        if speech.iter().any(|s| s.contains(text)) {
            return speech;
        }
        assert!(Instant::now() < deadline, "never spoken: {text:?}; spoken: {speech:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orders_example_looks_up_an_order_in_a_real_call() {
    let (api, seen) = orders_api().await;
    let openai = OpenAiMock::start().await;
    let env = orders_env(&api, openai.env());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut child = crate::shutdown::spawn_hotline(&env).await;

    let report = place_call(&keyed(&child.base, "CAorders000000000000000000000001", "1234#")).await.unwrap();
    spoken(&openai, "Order 1234 has shipped and arrives Friday.").await;
    assert!(report.frames_received > 0);
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "one lookup");
    assert_eq!(requests[0].path, "/orders/1234");
    assert_eq!(requests[0].headers["authorization"], TOKEN);

    // Five lookups at once against a slow API: the fifth is refused (four
    // in flight per call), the caller hears the sorry, the call goes on.
    let report = place_call(&keyed(&child.base, "CAorders000000000000000000000002", "5#5#5#5#5#")).await.unwrap();
    spoken(&openai, SORRY).await;
    assert_eq!(report.close.as_ref().map(|c| c.0), Some(1000), "{:?}", report.close);

    let _ = child.process.start_kill();
    let _ = child.process.wait().await;
    let mut lines = Vec::new();
    while let Ok(line) = child.logs.try_recv() {
        lines.push(line);
    }
    let events: Vec<serde_json::Value> = lines.iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let fetched = events.iter().find(|e| e["event"] == "guest_fetch").expect("a guest_fetch line");
    assert_eq!((fetched["status"].as_u64(), fetched["path"].as_str()), (Some(200), Some("/orders/1234")), "{fetched}");
    assert_eq!(fetched["origin"], api.as_str());
    let refused = events.iter().find(|e| e["event"] == "guest_fetch_refused").expect("a refusal");
    assert!(refused["reason"].as_str().unwrap().contains("in flight"), "{refused}");
    let secret = TOKEN.trim_start_matches("Bearer ");
    assert!(!lines.iter().any(|l| l.contains(secret)), "the secret is in the log");
    let names: HashSet<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(names.contains("order_lookup") && names.contains("order_answer"), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orders_example_fetches_and_the_realtime_agent_says_the_answer() {
    // HOTLINE_AGENT=realtime: the guest's `fetch` is the host's as on the
    // pipeline, and its `speak` of the answer becomes a response of the model's.
    let (api, seen) = orders_api().await;
    let realtime = RealtimeAgentMock::start().await;
    let env = orders_env(&api, realtime.env());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut child = crate::shutdown::spawn_hotline(&env).await;

    let report = place_call(&keyed(&child.base, "CAorders000000000000000000000003", "1234#")).await.unwrap();
    let said = || -> Vec<String> {
        realtime.connections().iter().flat_map(|c| c.responses.clone()).filter_map(|r| r.said).collect()
    };
    crate::streaming::eventually_true(|| said().iter().any(|s| s.contains("Order 1234 has shipped"))).await;
    assert_eq!(realtime.state.log.violations(), Vec::<String>::new());
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "one lookup");
    assert_eq!(requests[0].path, "/orders/1234");
    assert_eq!(requests[0].headers["authorization"], TOKEN);
    assert!(report.frames_received > 0, "the caller heard the model");
    let _ = child.process.start_kill();
    let _ = child.process.wait().await;
}

#[tokio::test]
async fn a_lookup_against_a_stopped_server_fails_and_the_call_goes_on() {
    let openai = OpenAiMock::start().await;
    let gone = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let settings = config_from(&orders_env(&gone, openai.env()));
    let s = start_server(move |c| {
        c.providers = settings.providers;
        c.fetch = settings.fetch;
        c.guest_path = settings.guest_path;
    })
    .await;
    // The lookup fails, the caller hears the sorry; a second one does too:
    // the call is still there.
    let report = place_call(&keyed(&s.base, "CAorders000000000000000000000003", "42#43#")).await.unwrap();
    spoken(&openai, SORRY).await;
    assert_eq!(report.close.as_ref().map(|c| c.0), Some(1000), "{:?}", report.close);
    let speech = openai.state.speech.lock().unwrap().clone();
    assert!(speech.iter().filter(|t| *t == SORRY).count() >= 1, "{speech:?}");
}
