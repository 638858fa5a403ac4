//! Call records, against SQLite and a real PostgreSQL server: whole
//! simulated calls (the echo agent and the AI stand-ins) leave records with
//! turns and a timeline; the API finds them by filter, page and words; a
//! restart keeps them and retention purges; a newer schema is refused; and
//! the database going away mid-call touches no call.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hotline::config::{Backend, StoreSettings};
use hotline::sim::{CallOptions, place_call};
use hotline::store::Records;
use hotline::store::record::{CallRecord, Outcome, TurnRecord};
use hotline_common::Secret;
use reqwest::StatusCode;
use serde_json::Value;

use crate::mocks::openai::OpenAiMock;
use crate::postgres::{Postgres, TempDir};
use crate::support::*;

/// Where a test's records go.
enum Store {
    Sqlite(TempDir),
    Postgres(Postgres),
}

impl Store {
    fn sqlite() -> Store {
        Store::Sqlite(TempDir::new("records"))
    }

    fn postgres() -> Store {
        Store::Postgres(Postgres::start())
    }

    fn settings(&self) -> StoreSettings {
        let backend = match self {
            Store::Sqlite(dir) => Backend::Sqlite(dir.path().join("data")),
            Store::Postgres(pg) => Backend::Postgres(Secret::new(pg.url())),
        };
        StoreSettings {
            backend,
            queue: 1024,
            retention: Some(Duration::from_secs(30 * 86_400)),
            mask_numbers: true,
            record_audio: false,
            data_dir: None,
            instance: "store-test".into(),
        }
    }
}

async fn server(store: &Store, tweak: impl FnOnce(&mut hotline::config::Config)) -> TestServer {
    let settings = store.settings();
    start_server(move |c| {
        c.store = settings;
        c.admin_token = Some(TOKEN.into());
        tweak(c);
    })
    .await
}

async fn api(base: &str, path: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new().get(format!("{base}{path}")).bearer_auth(TOKEN).send().await.unwrap();
    (response.status(), response.json().await.unwrap_or_default())
}

/// The calls the API lists once it lists `n` (the writer batches for 200 ms).
async fn calls_once_there_are(base: &str, query: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, page) = api(base, &format!("/api/calls?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let calls = page["calls"].as_array().unwrap().clone();
        if calls.len() >= n {
            return calls;
        }
        assert!(Instant::now() < deadline, "{} calls listed, waited for {n}: {page}", calls.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn echo_call(base: &str, call_sid: &str) -> CallOptions {
    CallOptions {
        server: base.into(),
        audio: concat(&[silence(600), tone(1000, 300.0), silence(1500)]),
        speed: 4.0,
        idle_ms: 400,
        call_sid: call_sid.into(),
        ..CallOptions::default()
    }
}

fn events(call: &Value) -> Vec<String> {
    call["timeline"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap().to_string()).collect()
}

async fn echo_calls_are_recorded_and_found(store: Store) {
    let s = server(&store, |_| {}).await;
    let digest = active_digest(&s.base).await;
    let sids = ["CArecord00000000000000000000000001", "CArecord00000000000000000000000002"];
    for sid in sids {
        let report = place_call(&echo_call(&s.base, sid)).await.unwrap();
        assert_eq!(report.close, Some((1000, "stream stopped".into())));
    }
    let calls = calls_once_there_are(&s.base, "", 2).await;
    assert_eq!(calls.len(), 2);
    // Newest first.
    assert_eq!(calls[0]["call_sid"], sids[1]);
    let c = &calls[1];
    assert_eq!(c["call_sid"], sids[0]);
    assert_eq!(c["stream_sid"], "MZrecord00000000000000000000000001");
    assert_eq!((c["direction"].as_str(), c["outcome"].as_str()), (Some("inbound"), Some("caller_hung_up")));
    assert_eq!(c["close_code"], 1000);
    assert_eq!((c["from"].as_str(), c["to"].as_str()), (Some("+*******0000"), Some("+*******9999")), "masked");
    assert_eq!(c["guests"], serde_json::json!([digest]));
    assert!(c["duration_ms"].as_i64().unwrap() > 0 && c["frames_in"].as_i64().unwrap() > 100, "{c}");

    let (status, call) = api(&s.base, &format!("/api/calls/{}", sids[0])).await;
    assert_eq!(status, StatusCode::OK);
    let turns = call["turns"].as_array().unwrap();
    assert!(!turns.is_empty(), "{call}");
    assert!(turns[0]["eou_at_ms"].as_i64().unwrap() > 1000, "{call}");
    let events = events(&call);
    for expected in
        ["ws_start", "agent", "speech_start", "eou", "mark_sent", "mark_ack", "ws_stop", "call_end", "call_ended"]
    {
        assert!(events.iter().any(|e| e == expected), "no {expected} in the timeline: {events:?}");
    }
    let at: Vec<i64> = call["timeline"].as_array().unwrap().iter().map(|e| e["at_ms"].as_i64().unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] <= w[1] + 100), "media time goes forward: {at:?}");
    assert_eq!(api(&s.base, "/api/calls/CAnothing").await.0, StatusCode::NOT_FOUND);

    // Filters and pages.
    let count = |query: &'static str| {
        let base = s.base.clone();
        async move { api(&base, &format!("/api/calls?{query}")).await.1["calls"].as_array().map_or(99, Vec::len) }
    };
    assert_eq!(count("outcome=caller_hung_up").await, 2);
    assert_eq!(count("outcome=drained").await, 0);
    let future = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() + 60_000;
    assert_eq!(api(&s.base, &format!("/api/calls?since={future}")).await.1["calls"], serde_json::json!([]));
    assert_eq!(api(&s.base, &format!("/api/calls?until={future}")).await.1["calls"].as_array().unwrap().len(), 2);
    assert_eq!(
        api(&s.base, &format!("/api/calls?guest={}", &digest[..12])).await.1["calls"].as_array().unwrap().len(),
        2
    );
    assert_eq!(count("guest=0000ffff").await, 0);
    let (_, first) = api(&s.base, "/api/calls?limit=1").await;
    assert_eq!(first["calls"][0]["call_sid"], sids[1]);
    let cursor = first["next_cursor"].as_str().expect("a next page").to_string();
    let (_, second) = api(&s.base, &format!("/api/calls?limit=1&cursor={cursor}")).await;
    assert_eq!(second["calls"][0]["call_sid"], sids[0]);
    assert_eq!(second["next_cursor"], Value::Null);
    let (status, bad) = api(&s.base, "/api/calls?outcome=bored").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad["error"].as_str().unwrap().starts_with("outcome"), "{bad}");

    let ready: Value = reqwest::get(format!("{}/readyz", s.base)).await.unwrap().json().await.unwrap();
    assert_eq!(ready["db"], "ok");
    assert_eq!((ready["records"]["written"].as_u64(), ready["records"]["dropped"].as_u64()), (Some(2), Some(0)));
}

#[tokio::test]
async fn echo_calls_are_recorded_and_found_sqlite() {
    echo_calls_are_recorded_and_found(Store::sqlite()).await;
}

#[tokio::test]
async fn echo_calls_are_recorded_and_found_postgres() {
    echo_calls_are_recorded_and_found(Store::postgres()).await;
}

async fn ai_turns_are_recorded(store: Store) {
    let mock = OpenAiMock::start().await;
    mock.behave(|b| {
        b.default_transcript = "what is the Weather like".into();
        b.default_reply = "It is sunny today. Have a nice day.".into();
    });
    let env = mock.env();
    let from_env = config_from(&env);
    let s = server(&store, move |c| c.providers = from_env.providers).await;
    let question = fox()[..16_000].to_vec();
    let opts = CallOptions {
        server: s.base.clone(),
        audio: concat(&[silence(1500), question, silence(4000)]),
        idle_ms: 2000,
        call_sid: "CAai0000000000000000000000000000001".into(),
        ..CallOptions::default()
    };
    place_call(&opts).await.unwrap();
    calls_once_there_are(&s.base, "", 1).await;
    let (_, call) = api(&s.base, "/api/calls/CAai0000000000000000000000000000001").await;
    let turn =
        call["turns"].as_array().unwrap().iter().find(|t| !t["transcript"].is_null()).expect("a transcribed turn");
    assert_eq!(turn["transcript"], "what is the Weather like");
    assert_eq!(turn["reply"], "It is sunny today. Have a nice day.");
    assert_eq!(turn["outcome"], "spoken");
    for timing in ["stt_ms", "llm_first_token_ms", "tts_first_byte_ms", "first_audio_ms"] {
        assert!(turn[timing].as_f64().is_some_and(|ms| ms >= 0.0), "{timing}: {turn}");
    }
    assert!(events(&call).iter().any(|e| e == "stt_final"), "{call}");
    // Words of a transcript or a reply, any case.
    assert_eq!(api(&s.base, "/api/calls?q=weather").await.1["calls"].as_array().unwrap().len(), 1);
    assert_eq!(api(&s.base, "/api/calls?q=SUNNY%20today").await.1["calls"].as_array().unwrap().len(), 1);
    assert_eq!(api(&s.base, "/api/calls?q=zebra").await.1["calls"].as_array().unwrap().len(), 0);
    assert_eq!(api(&s.base, "/api/calls?q=%25").await.1["calls"].as_array().unwrap().len(), 0, "% is a character");
}

#[tokio::test]
async fn ai_turns_are_recorded_sqlite() {
    ai_turns_are_recorded(Store::sqlite()).await;
}

#[tokio::test]
async fn ai_turns_are_recorded_postgres() {
    ai_turns_are_recorded(Store::postgres()).await;
}

fn days_ago(days: u64) -> i64 {
    (SystemTime::now() - Duration::from_secs(days * 86_400)).duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn a_restart_keeps_records_and_retention_purges(store: Store) {
    let s = server(&store, |_| {}).await;
    place_call(&echo_call(&s.base, "CAkept0000000000000000000000000001")).await.unwrap();
    let old = CallRecord {
        call_sid: "CAold00000000000000000000000000001".into(),
        stream_sid: "MZold".into(),
        direction: "inbound".into(),
        started_at: days_ago(40),
        ended_at: days_ago(40) + 1000,
        duration_ms: 1000,
        guests: vec!["d".into()],
        outcome: Some(Outcome::CallerHungUp),
        ..CallRecord::default()
    };
    s.server.app().calls.records.submit(old);
    assert_eq!(calls_once_there_are(&s.base, "", 2).await.len(), 2);
    s.server.begin_drain();
    s.server.wait().await;

    // The same database again: the purge at start removes what is past
    // the retention, and keeps the rest.
    let s = server(&store, |_| {}).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let calls = calls_once_there_are(&s.base, "", 1).await;
        if calls.len() == 1 {
            assert_eq!(calls[0]["call_sid"], "CAkept0000000000000000000000000001");
            break;
        }
        assert!(Instant::now() < deadline, "the old call was never purged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(api(&s.base, "/api/calls/CAold00000000000000000000000000001").await.0, StatusCode::NOT_FOUND);
    let (_, kept) = api(&s.base, "/api/calls/CAkept0000000000000000000000000001").await;
    assert!(!kept["turns"].as_array().unwrap().is_empty(), "{kept}");
}

#[tokio::test]
async fn a_restart_keeps_records_and_retention_purges_sqlite() {
    a_restart_keeps_records_and_retention_purges(Store::sqlite()).await;
}

#[tokio::test]
async fn a_restart_keeps_records_and_retention_purges_postgres() {
    a_restart_keeps_records_and_retention_purges(Store::postgres()).await;
}

/// A record that started `hours_ago` (from the middle of the current
/// hour, so it never straddles a boundary), with turns answered after
/// these first-audio latencies (`None`: not answered) and errors.
fn record_at(sid: &str, hours_ago: i64, outcome: Outcome, turns: &[(Option<f64>, Option<&str>)]) -> CallRecord {
    const HOUR: i64 = 3_600_000;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let started_at = (now / HOUR) * HOUR + HOUR / 2 - hours_ago * HOUR;
    let turns = turns
        .iter()
        .enumerate()
        .map(|(i, (first_audio_ms, errors))| TurnRecord {
            turn: i as i64 + 1,
            first_audio_ms: *first_audio_ms,
            errors: errors.map(str::to_string),
            ..TurnRecord::default()
        })
        .collect();
    CallRecord {
        call_sid: sid.into(),
        stream_sid: format!("MZ{sid}"),
        direction: "inbound".into(),
        started_at,
        ended_at: started_at + 1000,
        duration_ms: 1000,
        guests: vec!["d".into()],
        outcome: Some(outcome),
        turns,
        ..CallRecord::default()
    }
}

async fn stats_count_hours_outcomes_latency_and_errors(store: Store) {
    let s = server(&store, |_| {}).await;
    let records = [
        record_at("CAs1", 0, Outcome::CallerHungUp, &[(Some(500.0), None), (Some(900.0), None)]),
        record_at("CAs2", 0, Outcome::AgentHungUp, &[(Some(700.0), None), (None, Some("llm: 429 too many"))]),
        record_at("CAs3", 2, Outcome::CallerHungUp, &[(Some(1500.0), Some("stt: timed out\ntts: 500"))]),
        record_at("CAs4", 30, Outcome::GuestFailure, &[(Some(9999.0), None)]), // outside a day
    ];
    for record in records {
        s.server.app().calls.records.submit(record);
    }
    calls_once_there_are(&s.base, "", 4).await;
    let (status, stats) = api(&s.base, "/api/stats").await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let hours = stats["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 24);
    assert_eq!(stats["until"].as_i64().unwrap() - stats["since"].as_i64().unwrap(), 24 * 3_600_000);
    let now = &hours[23];
    assert_eq!((now["calls"].as_u64(), now["turns"].as_u64()), (Some(2), Some(4)), "{now}");
    assert_eq!(now["outcomes"], serde_json::json!({ "agent_hung_up": 1, "caller_hung_up": 1 }));
    assert_eq!(now["first_audio_ms"], serde_json::json!({ "p50": 700.0, "p95": 900.0 }));
    assert_eq!(now["provider_errors"], serde_json::json!({ "stt": 0, "llm": 1, "tts": 0 }));
    assert_eq!(now["provider_error_rate"], 0.25);
    assert_eq!((hours[21]["calls"].as_u64(), hours[22]["calls"].as_u64()), (Some(1), Some(0)));
    assert_eq!(hours[22]["first_audio_ms"], serde_json::json!({ "p50": null, "p95": null }));
    let total = &stats["total"];
    assert!(total.get("start").is_none(), "{total}");
    assert_eq!((total["calls"].as_u64(), total["turns"].as_u64()), (Some(3), Some(5)), "{total}");
    assert_eq!(total["outcomes"]["caller_hung_up"], 2);
    assert_eq!(total["first_audio_ms"], serde_json::json!({ "p50": 700.0, "p95": 1500.0 }));
    assert_eq!(total["provider_errors"], serde_json::json!({ "stt": 1, "llm": 1, "tts": 1 }));
    // Two days hold the older call too.
    let (_, two_days) = api(&s.base, "/api/stats?hours=48").await;
    assert_eq!(two_days["total"]["calls"], 4);
    for bad in ["hours=0", "hours=169", "hours=day", "days=1"] {
        let (status, body) = api(&s.base, &format!("/api/stats?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[tokio::test]
async fn stats_count_hours_outcomes_latency_and_errors_sqlite() {
    stats_count_hours_outcomes_latency_and_errors(Store::sqlite()).await;
}

#[tokio::test]
async fn stats_count_hours_outcomes_latency_and_errors_postgres() {
    stats_count_hours_outcomes_latency_and_errors(Store::postgres()).await;
}

/// What a newer hotline would leave: its newest migration one this one
/// does not know.
const NEWER_SCHEMA: &str =
    "UPDATE hotline_migrations SET version = 7 WHERE version = (SELECT MAX(version) FROM hotline_migrations)";

async fn a_database_from_a_newer_hotline_is_refused(store: Store) {
    let settings = store.settings();
    let records = Records::open(&settings).await.expect("a fresh database opens");
    let db = records.db().unwrap().clone();
    // What a newer hotline would leave: a migration this one does not know.
    match &db {
        hotline::store::db::Db::Sqlite(pool) => {
            sqlx::query(NEWER_SCHEMA).execute(pool).await.unwrap();
        }
        hotline::store::db::Db::Postgres(pool) => {
            sqlx::query(NEWER_SCHEMA).execute(pool).await.unwrap();
        }
    }
    records.flush().await;
    let err = Records::open(&settings).await.err().expect("refused").to_string();
    assert!(err.contains("schema is version 7, newer than this hotline knows (up to 3)"), "{err}");
}

#[tokio::test]
async fn a_database_from_a_newer_hotline_is_refused_sqlite() {
    a_database_from_a_newer_hotline_is_refused(Store::sqlite()).await;
}

#[tokio::test]
async fn a_database_from_a_newer_hotline_is_refused_postgres() {
    a_database_from_a_newer_hotline_is_refused(Store::postgres()).await;
}

async fn readyz(base: &str) -> (StatusCode, Value) {
    let response = reqwest::get(format!("{base}/readyz")).await.unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Polls `/readyz` until its `db` says `want`; every answer must be 200.
async fn db_becomes(base: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, ready) = readyz(base).await;
        assert_eq!(status, StatusCode::OK, "the database never makes the server unready: {ready}");
        if ready["db"] == want {
            return ready;
        }
        assert!(Instant::now() < deadline, "db never became {want}: {ready}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_database_going_away_mid_call_touches_no_call() {
    let pg = Postgres::start();
    let store = Store::Postgres(pg);
    let s = server(&store, |c| c.store.queue = 4).await;
    let Store::Postgres(pg) = &store else { unreachable!() };
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let opts = CallOptions {
                server: s.base.clone(),
                audio: concat(&[silence(1000), tone(800, 300.0), silence(2500)]),
                idle_ms: 500,
                call_sid: format!("CAaway{i:028}"),
                ..CallOptions::default()
            };
            tokio::spawn(async move { place_call(&opts).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    pg.stop();
    let (status, ready) = readyz(&s.base).await;
    assert_eq!((status, &ready["live_calls"]), (StatusCode::OK, &serde_json::json!(20)), "{ready}");
    for call in calls {
        let report = call.await.unwrap().expect("the call completes");
        assert_eq!(report.close, Some((1000, "stream stopped".into())), "every call ends normally");
        echo_is_contiguous(&report, EouPick::Last).expect("and its echo came back whole");
    }
    let ready = db_becomes(&s.base, "degraded").await;
    assert_eq!(ready["ready"], true);
    let dropped_after = |ready: &Value| ready["records"]["dropped"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while dropped_after(&readyz(&s.base).await.1) == 0 {
        assert!(Instant::now() < deadline, "20 records, a queue of 4, no database: some must be dropped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    pg.start_again();
    db_becomes(&s.base, "ok").await;
    let after = "CAback0000000000000000000000000001";
    place_call(&echo_call(&s.base, after)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while api(&s.base, &format!("/api/calls/{after}")).await.0 != StatusCode::OK {
        assert!(Instant::now() < deadline, "records never resumed once the database was back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, ready) = readyz(&s.base).await;
    let (written, dropped) = (ready["records"]["written"].as_u64().unwrap(), dropped_after(&ready));
    assert_eq!(written + dropped, 21, "every record written or counted as dropped: {ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_while_postgres_is_down_takes_calls_and_records_them_once_it_is_up() {
    let store = Store::postgres();
    let Store::Postgres(pg) = &store else { unreachable!() };
    pg.stop();
    let s = server(&store, |_| {}).await;
    let (status, ready) = readyz(&s.base).await;
    assert_eq!((status, ready["db"].as_str()), (StatusCode::OK, Some("degraded")), "{ready}");
    let sid = "CAearly000000000000000000000000001";
    let report = place_call(&echo_call(&s.base, sid)).await.unwrap();
    assert_eq!(report.close, Some((1000, "stream stopped".into())));
    pg.start_again();
    db_becomes(&s.base, "ok").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while api(&s.base, &format!("/api/calls/{sid}")).await.0 != StatusCode::OK {
        assert!(Instant::now() < deadline, "the queued record was never written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_api_needs_the_admin_token() {
    let without = start_server(|_| {}).await;
    let get = |base: &str, token: Option<&str>| {
        let mut request = reqwest::Client::new().get(format!("{base}/api/calls"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(get(&without.base, Some(TOKEN)).await.unwrap().status(), StatusCode::NOT_FOUND);
    let store = Store::sqlite();
    let s = server(&store, |_| {}).await;
    assert_eq!(get(&s.base, None).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(get(&s.base, Some("wrong-token-0123456789")).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(get(&s.base, Some(TOKEN)).await.unwrap().status(), StatusCode::OK);
    let delete =
        reqwest::Client::new().delete(format!("{}/api/calls", s.base)).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(delete.status(), StatusCode::METHOD_NOT_ALLOWED);
    // Placing a call needs Twilio's REST API, which this server has not.
    let post =
        reqwest::Client::new().post(format!("{}/api/calls", s.base)).bearer_auth(TOKEN).json(&serde_json::json!({}));
    assert_eq!(post.send().await.unwrap().status(), StatusCode::CONFLICT);
    // A token but no records: the API says so.
    let off = start_server(|c| c.admin_token = Some(TOKEN.into())).await;
    let (status, body) = api(&off.base, "/api/calls").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("records are off"), "{body}");
    let ready: Value = reqwest::get(format!("{}/readyz", off.base)).await.unwrap().json().await.unwrap();
    assert_eq!((ready["db"].as_str(), &ready["records"]), (Some("off"), &Value::Null));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_the_records_and_a_newer_schema_stops_the_binary() {
    let dir = TempDir::new("flush");
    let data = dir.path().join("data").display().to_string();
    let mut child = crate::shutdown::spawn_hotline(&[("HOTLINE_DATA_DIR", &data)]).await;
    let sid = "CAflush000000000000000000000000001";
    place_call(&echo_call(&child.base, sid)).await.unwrap();
    // At once: the record is at most in the writer's hands.
    let pid = child.process.id().unwrap() as i32;
    // SAFETY: kill(2) on the child this test started; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = tokio::time::timeout(Duration::from_secs(20), child.process.wait()).await.unwrap().unwrap();
    assert!(status.success());
    let mut flushed = None;
    while let Ok(line) = child.logs.try_recv() {
        let json: Value = serde_json::from_str(&line).unwrap_or_default();
        if json["event"] == "records_flushed" {
            flushed = Some(json);
        }
    }
    assert!(flushed.is_some(), "the writer reports its flush");
    let store = Store::Sqlite(TempDir(dir.path().to_path_buf()));
    let s = server(&store, |_| {}).await;
    assert_eq!(api(&s.base, &format!("/api/calls/{sid}")).await.0, StatusCode::OK);
    s.server.begin_drain();
    s.server.wait().await;

    // A schema from the future: the binary refuses to start, and says why.
    let db = dir.path().join("data/hotline.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    sqlx::query(NEWER_SCHEMA).execute(&pool).await.unwrap();
    pool.close().await;
    let out =
        hotline_command(&[("HOTLINE_DATA_DIR", &data)]).stderr(std::process::Stdio::piped()).output().await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("schema is version 7, newer than this hotline knows (up to 3)"), "{stderr}");
}

/// First sample louder than a whisper, if any.
fn first_sound(samples: impl Iterator<Item = i16>) -> Option<usize> {
    samples.into_iter().position(|s| s.unsigned_abs() > 500)
}

async fn calls_are_recorded_as_stereo_wav_and_served_by_range(store: Store, data: std::path::PathBuf) {
    // A day long past, left by an earlier run: the writer purges it at start.
    let recordings = data.join("recordings");
    std::fs::create_dir_all(recordings.join("2001-02-03")).unwrap();
    std::fs::write(recordings.join("2001-02-03/CAold.wav"), b"RIFF").unwrap();
    std::fs::create_dir_all(recordings.join("notes")).unwrap();
    let s = server(&store, |c| {
        c.store.record_audio = true;
        c.store.data_dir = Some(data.clone());
    })
    .await;
    let sid = "CArec00000000000000000000000000001";
    let opts = CallOptions {
        audio: concat(&[silence(600), tone(1000, 300.0), silence(1500), tone(800, 500.0), silence(2000)]),
        ..echo_call(&s.base, sid)
    };
    let report = place_call(&opts).await.unwrap();
    calls_once_there_are(&s.base, "", 1).await;
    let (_, call) = api(&s.base, &format!("/api/calls/{sid}")).await;
    let recording = &call["recording"];
    assert_eq!(recording["url"], format!("/api/calls/{sid}/recording"), "{call}");
    let duration_ms = recording["duration_ms"].as_u64().unwrap();
    assert_eq!(duration_ms, report.caller.len() as u64 / 8, "as long as the caller's audio");

    let url = format!("{}{}", s.base, recording["url"].as_str().unwrap());
    let client = reqwest::Client::new();
    let whole = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["content-type"], "audio/wav");
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    let wav = whole.bytes().await.unwrap();
    assert_eq!(wav.len() as u64, recording["bytes"].as_u64().unwrap());
    let mut reader = hound::WavReader::new(std::io::Cursor::new(wav.to_vec())).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (2, 8000, 16));
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let (left, right): (Vec<i16>, Vec<i16>) = samples.chunks(2).map(|p| (p[0], p[1])).unzip();
    // The caller on the left, sample for sample.
    let caller: Vec<i16> = report.caller.iter().map(|&c| hotline_audio::ulaw::decode(c)).collect();
    assert_eq!(left, caller);
    // The echo on the right, where the caller heard it (the simulator
    // lines up what it received as Twilio would play it).
    let heard: Vec<i16> = report.agent.iter().map(|&c| hotline_audio::ulaw::decode(c)).collect();
    let (ours, theirs) = (first_sound(right.iter().copied()).unwrap(), first_sound(heard.iter().copied()).unwrap());
    assert!(ours.abs_diff(theirs) < 8 * 400, "the first echo at {ours} vs heard at {theirs} (samples)");
    let loud = |s: &[i16]| s.iter().filter(|v| v.unsigned_abs() > 500).count();
    let (ours, theirs) = (loud(&right), loud(&heard));
    assert!(ours.abs_diff(theirs) * 5 < theirs, "echo samples: {ours} recorded, {theirs} heard");

    // A byte range, as `<audio>` seeks.
    let part = client.get(&url).bearer_auth(TOKEN).header("range", "bytes=44-143").send().await.unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()["content-range"], format!("bytes 44-143/{}", wav.len()));
    assert_eq!(part.bytes().await.unwrap(), wav.slice(44..144));
    let past = client.get(&url).bearer_auth(TOKEN).header("range", format!("bytes={}-", wav.len()));
    let past = past.send().await.unwrap();
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(past.headers()["content-range"], format!("bytes */{}", wav.len()));
    assert_eq!(client.get(&url).send().await.unwrap().status(), StatusCode::UNAUTHORIZED, "the token is needed");
    let metrics = client.get(format!("{}/metrics", s.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("\nhotline_recording_chunks_dropped_total 0\n"), "{metrics}");

    // The old day went; what is not a day stays.
    let deadline = Instant::now() + Duration::from_secs(5);
    while recordings.join("2001-02-03").exists() {
        assert!(Instant::now() < deadline, "the old day was never purged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recordings.join("notes").exists());
    // A call without a recording says so; the file gone is a 404 too, and logged.
    let old = record_at("CAnorec", 1, Outcome::CallerHungUp, &[]);
    s.server.app().calls.records.submit(old);
    calls_once_there_are(&s.base, "", 2).await;
    let (status, body) = api(&s.base, "/api/calls/CAnorec/recording").await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("this call has no recording")));
    let day = std::fs::read_dir(&recordings).unwrap().flatten().find(|d| d.file_name() != "notes").unwrap();
    std::fs::remove_file(day.path().join(format!("{sid}.wav"))).unwrap();
    let (status, body) = api(&s.base, &format!("/api/calls/{sid}/recording")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["error"].as_str().unwrap().contains("cannot be read"), "{body}");
}

#[tokio::test]
async fn calls_are_recorded_as_stereo_wav_and_served_by_range_sqlite() {
    let store = Store::sqlite();
    let Store::Sqlite(dir) = &store else { unreachable!() };
    let data = dir.path().join("data");
    calls_are_recorded_as_stereo_wav_and_served_by_range(store, data).await;
}

#[tokio::test]
async fn calls_are_recorded_as_stereo_wav_and_served_by_range_postgres() {
    // Beside PostgreSQL, the recordings go to the data directory.
    let dir = TempDir::new("pg-recordings");
    calls_are_recorded_as_stereo_wav_and_served_by_range(Store::postgres(), dir.path().join("data")).await;
}
