//! `hotline guest test`: the repo's scenario files pass against the guests
//! they describe, and a scenario that expects the wrong thing fails.

use std::path::{Path, PathBuf};

use hotline::scenario::{run, run_file};

use crate::support::*;

fn files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

#[tokio::test]
async fn the_default_guest_passes_its_scenarios() {
    for path in files("default") {
        let report = run_file(default_guest(), &path).await.unwrap();
        assert!(report.passed(), "{}: {:#?}", report.name, report.failures);
    }
}

#[tokio::test]
async fn the_dtmf_example_passes_its_scenarios() {
    let bytes = std::fs::read(env!("HOTLINE_GUEST_DTMF_WASM")).unwrap();
    let dtmf = sandbox().load(&bytes).expect("the example loads");
    for path in files("dtmf") {
        let report = run_file(&dtmf, &path).await.unwrap();
        assert!(report.passed(), "{}: {:#?}", report.name, report.failures);
    }
}

#[tokio::test]
async fn the_orders_example_passes_its_scenarios() {
    let bytes = std::fs::read(env!("HOTLINE_GUEST_ORDERS_WASM")).unwrap();
    let orders = sandbox().load(&bytes).expect("the example loads");
    for path in files("orders") {
        let report = run_file(&orders, &path).await.unwrap();
        assert!(report.passed(), "{}: {:#?}", report.name, report.failures);
    }
}

/// A `fetched` step needs a `fetch` to answer; a `fetch` expectation says
/// what differs.
#[tokio::test]
async fn fetch_steps_answer_a_fetch_and_check_the_request() {
    let bytes = std::fs::read(env!("HOTLINE_GUEST_ORDERS_WASM")).unwrap();
    let orders = sandbox().load(&bytes).expect("the example loads");
    let text = r##"
{"config": {"providers": true, "variables": {"orders_api": "https://orders.example.com"}}}
{"start": {}}
{"dtmf": "4"}
{"dtmf": "#"}
{"expect": {"fetch": {"method": "POST", "url": "https://orders.example.com/orders/5", "secret_headers": {}}}}
{"fetched": {}}
{"fetched": {}}
"##;
    let report = run(&orders, "inline", text, PathBuf::new()).await;
    let failures = report.failures.join("\n");
    assert!(failures.contains(r#"line 6: fetch method "GET", expected "POST""#), "{failures}");
    assert!(failures.contains(r#"expected "https://orders.example.com/orders/5""#), "{failures}");
    assert!(failures.contains(r#"fetch secret headers {"authorization": "orders_token"}, expected {}"#), "{failures}");
    assert!(failures.contains("line 8: no fetch to answer"), "{failures}");
}

#[tokio::test]
async fn wrong_expectations_and_bad_steps_fail_with_the_line() {
    let text = r#"
# greets, but not with two replies
{"start": {}}
{"expect": {"replies": 2, "marks": ["hello"]}}
{"tone": {"ms": 300}}
{"expect": {"clear_within_ms": 10}}
{"jump": {}}
"#;
    let report = run(default_guest(), "inline", text, PathBuf::new()).await;
    let failures = report.failures.join("\n");
    assert!(failures.contains("line 4: 1 replies"), "{failures}");
    assert!(failures.contains("line 4: marks [\"greeting\"], expected [\"hello\"]"), "{failures}");
    assert!(failures.contains("line 6: no clear"), "{failures}");
    assert!(failures.contains("line 7: not a step"), "{failures}");
}

/// A `config` step is held to the server's own ranges (`HOTLINE_EOU_MS`...).
#[tokio::test]
async fn config_steps_take_only_values_the_server_accepts() {
    let report = run(default_guest(), "inline", "{\"config\": {\"eou_ms\": 20}}\n", PathBuf::new()).await;
    assert_eq!(report.failures, [r#"line 1: config: HOTLINE_EOU_MS="20": 20 is not in 100..=5000"#]);
}

#[tokio::test]
async fn the_cli_exits_nonzero_on_failure() {
    let dir = std::env::temp_dir().join(format!("hotline-scenario-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let failing = dir.join("failing.jsonl");
    std::fs::write(&failing, "{\"start\": {}}\n{\"expect\": {\"hangup\": true}}\n").unwrap();
    let passing = files("default").remove(0);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
            .args(["guest", "test", env!("HOTLINE_GUEST_DEFAULT_WASM")])
            .arg(&passing)
            .arg(&failing)
            .env("HOTLINE_CACHE_DIR", "off")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL") && stdout.contains("hangup: false, expected true"), "{stdout}");
    assert!(stdout.contains("1 passed, 1 failed"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
