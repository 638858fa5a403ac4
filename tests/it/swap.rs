//! Hot swap through the admin API on a running server: validation of what
//! is uploaded, rollback, auth, and live calls moving (or staying) when the
//! active version changes.

use hotline::config::SwapPolicy;
use hotline::sim::{CallOptions, CallReport, Moment, place_call};
use reqwest::StatusCode;

use crate::support::*;

const V2: &str = env!("HOTLINE_GUEST_V2_WASM");
const BROKEN: &str = env!("HOTLINE_GUEST_BROKEN_WASM");
const OTHER_WORLD: &str = env!("HOTLINE_GUEST_OTHER_WORLD_WASM");
const CLOCK: &str = env!("HOTLINE_GUEST_CLOCK_WASM");

#[tokio::test]
async fn admin_api_needs_the_token_and_is_absent_without_one() {
    let closed = start_server(|_| {}).await;
    let response = reqwest::Client::new().get(format!("{}/admin/guest", closed.base)).bearer_auth(TOKEN).send();
    assert_eq!(response.await.unwrap().status(), StatusCode::NOT_FOUND);

    let s = admin_server(SwapPolicy::Migrate).await;
    let client = reqwest::Client::new();
    let url = format!("{}/admin/guest", s.base);
    assert_eq!(client.get(&url).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    for wrong in ["nope", "test-admin-token-0123456780", "test-admin-token-01234567890"] {
        let response = client.get(&url).bearer_auth(wrong).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "token {wrong:?}");
        let rollback = client.post(format!("{url}/rollback")).bearer_auth(wrong).send().await.unwrap();
        assert_eq!(rollback.status(), StatusCode::UNAUTHORIZED);
    }
    let status = admin_get(&s.base).await;
    assert_eq!(status["active"]["source"], "built-in");
    assert_eq!(status["history"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn rejected_guests_leave_the_active_version_untouched() {
    let s = admin_server(SwapPolicy::Migrate).await;
    let before = active_digest(&s.base).await;
    let cases: [(&str, Vec<u8>, &str, &str); 4] = [
        ("garbage", b"\0asm but not really a component".to_vec(), "compile", "compile"),
        ("other world", std::fs::read(OTHER_WORLD).unwrap(), "type-check", "hotline:call"),
        ("reads the clock", std::fs::read(CLOCK).unwrap(), "type-check", "wasi:clocks/wall-clock"),
        ("traps when a call ends", std::fs::read(BROKEN).unwrap(), "smoke test", "stopped"),
    ];
    for (name, bytes, step, reason_mentions) in cases {
        let (status, body) = put_guest(&s.base, bytes).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
        assert_eq!(body["error"]["step"], step, "{name}: {body}");
        let reason = body["error"]["reason"].as_str().unwrap();
        assert!(reason.contains(reason_mentions), "{name}: reason {reason:?}");
        assert_eq!(active_digest(&s.base).await, before, "{name}: active version changed");
    }
    // Calls are still served by the original version.
    let report = place_call(&CallOptions {
        server: s.base.clone(),
        audio: silence(300),
        speed: 4.0,
        idle_ms: 200,
        ..CallOptions::default()
    })
    .await
    .unwrap();
    assert!(report.first(|m| *m == Moment::MarkReceived("greeting".into())).is_some());
}

#[tokio::test]
async fn push_cli_reports_rejection_with_a_nonzero_exit() {
    let s = admin_server(SwapPolicy::Migrate).await;
    let url = s.base.clone();
    let push = move |component: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
            .args(["guest", "push", component, "--url", &url])
            .env("HOTLINE_ADMIN_TOKEN", TOKEN)
            .output()
            .unwrap()
    };
    let base = s.base.clone();
    let (rejected, accepted) = tokio::task::spawn_blocking(move || (push(BROKEN), push(V2))).await.unwrap();
    assert_eq!(rejected.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&rejected.stderr);
    assert!(stderr.contains("rejected at smoke test") && stderr.contains("unchanged"), "{stderr}");
    assert!(accepted.status.success(), "{}", String::from_utf8_lossy(&accepted.stderr));
    let digest = active_digest(&base).await;
    assert!(String::from_utf8_lossy(&accepted.stdout).contains(&digest));
}

#[tokio::test]
async fn manual_rollback_returns_to_the_previous_version() {
    let s = admin_server(SwapPolicy::Migrate).await;
    let v1 = active_digest(&s.base).await;
    let (status, body) = put_guest(&s.base, std::fs::read(V2).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v2 = active_digest(&s.base).await;
    assert_ne!(v1, v2);
    assert_eq!(body["active"]["digest"], v2.as_str());
    let history = admin_get(&s.base).await["history"].clone();
    assert_eq!(history[0]["digest"], v2.as_str(), "newest first");
    assert_eq!(history[1]["digest"], v1.as_str());

    assert_eq!(rollback(&s.base).await, StatusCode::OK);
    assert_eq!(active_digest(&s.base).await, v1);
    let last = admin_get(&s.base).await["last_rollback"].clone();
    let api = get_json(&s.base, "/api/guests").await;
    assert_eq!(api["last_rollback"], last, "/api/guests is /admin/guest");
    assert_eq!(api["history"][0]["digest"], v1.as_str(), "after the rollback, v1 is the newest");
    assert_eq!(
        (&last["from"], &last["to"], &last["reason"]),
        (&v2.as_str().into(), &v1.as_str().into(), &"admin".into())
    );
    assert!(last["at_unix_ms"].as_u64().unwrap() > 1_700_000_000_000, "{last}");
    assert_eq!(rollback(&s.base).await, StatusCode::CONFLICT, "nothing older than v1");
}

/// Marks the server sent, in order, with the media time they arrived.
pub(crate) fn marks(report: &CallReport) -> Vec<(f64, String)> {
    report
        .timeline
        .iter()
        .filter_map(|e| if let Moment::MarkReceived(n) = &e.moment { Some((e.at_ms, n.clone())) } else { None })
        .collect()
}

pub(crate) fn two_turn_call(base: &str, i: usize) -> CallOptions {
    CallOptions {
        server: base.to_string(),
        audio: concat(&[silence(5200), tone(600, 300.0), silence(8000), tone(700, 420.0), silence(1200)]),
        speed: 4.0,
        call_sid: format!("CAswap{i:028}"),
        idle_ms: 1000,
        ..CallOptions::default()
    }
}

async fn swap_during_calls(policy: SwapPolicy) -> (Vec<CallReport>, serde_json::Value, CallReport) {
    let s = admin_server(policy).await;
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let opts = two_turn_call(&s.base, i);
            tokio::spawn(async move { place_call(&opts).await })
        })
        .collect();
    // Swap while every call is live: after its greeting began, well before
    // its second utterance (at 14 s of media, 3.5 s of wall time).
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    assert_eq!(
        reqwest::get(format!("{}/readyz", s.base)).await.unwrap().json::<serde_json::Value>().await.unwrap()["live_calls"],
        20
    );
    let (status, body) = put_guest(&s.base, std::fs::read(V2).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fresh = CallOptions { call_sid: "CAfresh".into(), audio: silence(400), ..two_turn_call(&s.base, 99) };
    let fresh = place_call(&fresh).await.unwrap();
    let mut reports = Vec::new();
    for call in calls {
        reports.push(call.await.unwrap().expect("live call completes"));
    }
    (reports, admin_get(&s.base).await, fresh)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_moves_live_calls_to_the_new_version_without_losing_a_frame() {
    let (reports, admin, fresh) = swap_during_calls(SwapPolicy::Migrate).await;
    for (i, report) in reports.iter().enumerate() {
        assert_eq!(report.close, Some((1000, "stream stopped".into())), "call {i}: {:?}", report.close);
        let marks = marks(report);
        assert_eq!(marks.first().map(|m| m.1.as_str()), Some("greeting"), "call {i} started on v1");
        let first_v2 =
            marks.iter().position(|m| m.1.starts_with("v2-")).unwrap_or_else(|| panic!("call {i}: {marks:?}"));
        assert!(marks[first_v2..].iter().all(|m| m.1.starts_with("v2-")), "call {i} went back to v1: {marks:?}");
        assert!(marks.iter().any(|m| m.1 == "v2-t2-s0"), "call {i}: second reply on v2: {marks:?}");
        assert_eq!(hotline::sim::reply_latencies(report).len(), 2, "call {i}: two replies");
        echo_is_contiguous(report, EouPick::Last).unwrap_or_else(|e| panic!("call {i}: {e}"));
        assert_eq!(report.odd_frames, 0);
    }
    assert_eq!(admin["active"]["migrations"], 20, "{admin}");
    assert_eq!(admin["history"][1]["calls"], 20, "all began on v1: {admin}");
    assert_eq!(marks(&fresh).first().map(|m| m.1.as_str()), Some("v2-greeting"), "new calls start on v2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_pin_live_calls_finish_on_their_version() {
    let (reports, admin, fresh) = swap_during_calls(SwapPolicy::Pin).await;
    for (i, report) in reports.iter().enumerate() {
        assert_eq!(report.close, Some((1000, "stream stopped".into())), "call {i}");
        let marks = marks(report);
        assert!(marks.iter().all(|m| !m.1.starts_with("v2-")), "call {i} moved: {marks:?}");
        assert!(marks.iter().any(|m| m.1 == "t2-s0"), "call {i}: {marks:?}");
        echo_is_contiguous(report, EouPick::Last).unwrap_or_else(|e| panic!("call {i}: {e}"));
    }
    assert_eq!(admin["active"]["migrations"], 0);
    assert_eq!(marks(&fresh).first().map(|m| m.1.as_str()), Some("v2-greeting"), "new calls start on v2");
}

#[tokio::test]
async fn a_restart_with_the_same_guest_uses_the_precompiled_cache() {
    let dir = std::env::temp_dir().join(format!("hotline-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut load_ms = Vec::new();
    for expect_cached in [false, true] {
        let s = start_server(|c| {
            c.admin_token = Some(TOKEN.into());
            c.sandbox.cache_dir = Some(dir.clone());
        })
        .await;
        let active = admin_get(&s.base).await["active"].clone();
        assert_eq!(active["cached"], expect_cached, "{active}");
        load_ms.push(active["load_ms"].as_u64().unwrap());
    }
    let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries.len(), 1, "one entry, no temp files left: {entries:?}");
    // A corrupt entry is ignored (and replaced), never trusted.
    let entry = dir.join(&entries[0]);
    std::fs::write(&entry, b"not a compiled component").unwrap();
    let s = start_server(|c| {
        c.admin_token = Some(TOKEN.into());
        c.sandbox.cache_dir = Some(dir.clone());
    })
    .await;
    assert_eq!(admin_get(&s.base).await["active"]["cached"], false);
    assert_ne!(std::fs::read(&entry).unwrap(), b"not a compiled component");
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("default guest load+validate: {} ms compiled, {} ms from cache", load_ms[0], load_ms[1]);
}

#[tokio::test]
async fn replacing_the_guest_file_swaps_it_and_a_bad_file_is_refused() {
    let dir = std::env::temp_dir().join(format!("hotline-watch-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("logic.wasm");
    std::fs::write(&path, hotline::versions::DEFAULT_GUEST).unwrap();
    let s = start_server(|c| c.guest_path = Some(path.clone())).await;
    let v1 = active_digest(&s.base).await;
    // Deploy the way tools do: write a temp file, rename it over.
    let deploy = |bytes: &[u8]| {
        let tmp = dir.join("logic.wasm.tmp");
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    };
    deploy(b"garbage, not a component");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(active_digest(&s.base).await, v1, "a bad file must not replace the active version");

    deploy(&std::fs::read(V2).unwrap());
    let v2 = hotline::sandbox::digest_of(&std::fs::read(V2).unwrap());
    let mut now = String::new();
    for _ in 0..100 {
        now = active_digest(&s.base).await;
        if now == v2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(now, v2, "the new file became active");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_that_keeps_trapping_is_rolled_back_on_its_own() {
    let s = admin_server(SwapPolicy::Migrate).await;
    let v1 = active_digest(&s.base).await;
    let (status, body) = put_guest(&s.base, std::fs::read(PROBE_GUEST).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let probe = active_digest(&s.base).await;
    // Two calls, each pressing the trap key twice (a trap is recovered once,
    // the second gets the apology). The default policy rolls back at the
    // third trap; the call that has not trapped twice by then is migrated
    // back to v1 at its next event and finishes normally.
    let (a, b) = (trapping_call(&s.base, "CAtrap1"), trapping_call(&s.base, "CAtrap2"));
    let (a, b) = tokio::join!(place_call(&a), place_call(&b));
    let mut closes: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().map(|r| r.close.unwrap()).collect();
    closes.sort();
    assert_eq!(closes[1], (1011, "call logic failed".into()), "{closes:?}");
    assert!(closes[0].0 == 1000 || closes[0].0 == 1011, "{closes:?}");
    let version: serde_json::Value = reqwest::get(format!("{}/version", s.base)).await.unwrap().json().await.unwrap();
    assert_eq!(version["guest_digest"], v1.as_str(), "rolled back: {version}");
    assert_eq!(version["auto_rollback"]["from"], probe.as_str());
    assert_eq!(version["auto_rollback"]["to"], v1.as_str());
    assert_eq!(version["auto_rollback"]["traps"], 3);
    let history = admin_get(&s.base).await;
    assert_eq!(history["active"]["digest"], v1.as_str());
    assert_eq!(history["last_rollback"]["reason"], "traps", "{history}");
}

#[tokio::test]
async fn an_oversized_upload_is_refused_before_it_is_read_in_full() {
    let s = start_server(|c| {
        c.admin_token = Some(TOKEN.into());
        c.admin_max_bytes = 4096;
    })
    .await;
    let before = active_digest(&s.base).await;
    let (status, body) = put_guest(&s.base, std::fs::read(V2).unwrap()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["step"], "read");
    assert_eq!(active_digest(&s.base).await, before);
}

#[test]
fn the_compile_cache_keeps_the_recently_used_within_its_bound() {
    use hotline::sandbox::{Sandbox, SandboxConfig};
    let dir = std::env::temp_dir().join(format!("hotline-cache-bound-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sandbox = |max: u64| {
        let config = SandboxConfig {
            max_instances: 4,
            cache_dir: Some(dir.clone()),
            cache_max_bytes: max,
            ..hotline::config::Config::default().sandbox
        };
        Sandbox::new(config).unwrap()
    };
    let [a, b, c] =
        [hotline::versions::DEFAULT_GUEST.to_vec(), std::fs::read(V2).unwrap(), std::fs::read(PROBE_GUEST).unwrap()];
    let entry = |bytes: &[u8]| {
        let digest = hotline::sandbox::digest_of(bytes);
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().contains(&digest))
    };
    // Unbounded: all three are kept; their sizes set the bound below.
    let roomy = sandbox(u64::MAX);
    for bytes in [&a, &b, &c] {
        assert!(!roomy.load(bytes).unwrap().from_cache());
    }
    let size = |bytes: &[u8]| std::fs::metadata(entry(bytes).unwrap()).unwrap().len();
    let total = size(&a) + size(&b) + size(&c);
    std::fs::remove_dir_all(&dir).unwrap();

    // Room for less than three: loading A, B, using A again, then C evicts
    // B, the least recently used, and keeps A and C.
    let tight = sandbox(total - 1);
    assert!(!tight.load(&a).unwrap().from_cache());
    assert!(!tight.load(&b).unwrap().from_cache());
    assert!(tight.load(&a).unwrap().from_cache(), "a hit");
    assert!(!tight.load(&c).unwrap().from_cache());
    assert!(entry(&a).is_some(), "recently used: kept");
    assert!(entry(&b).is_none(), "least recently used: evicted");
    assert!(entry(&c).is_some(), "just written: kept");
    let _ = std::fs::remove_dir_all(&dir);
}
