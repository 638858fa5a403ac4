//! Start-up errors of the real binary: a refused setting stops it with a
//! non-zero exit and a message that names the variable to fix.

use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Runs `hotline` with `env` until it exits (20 s at most): its status and stderr.
fn run(env: &[(&str, &str)]) -> (ExitStatus, String) {
    let stderr = std::env::temp_dir().join(format!("hotline-config-{}-{}.log", std::process::id(), env[0].0));
    let mut child = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .env("PORT", "0")
        .env("HOTLINE_BIND", "127.0.0.1")
        .env("HOTLINE_CACHE_DIR", "off")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("hotline kept running with {env:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(&stderr).unwrap();
    let _ = std::fs::remove_file(&stderr);
    (status, text)
}

#[test]
fn a_setting_out_of_range_stops_the_start_naming_its_variable() {
    let cases = [
        ("HOTLINE_MAX_BODY_BYTES", "0", r#"HOTLINE_MAX_BODY_BYTES="0": 0 is not in 1024..=16777216"#),
        ("HOTLINE_GUEST_DEADLINE_MS", "0", r#"HOTLINE_GUEST_DEADLINE_MS="0": 0 is not in 5..=10000"#),
        ("HOTLINE_MAX_CALLS", "4294967290", r#"HOTLINE_MAX_CALLS="4294967290": 4294967290 is not in 1..=100000"#),
    ];
    for (var, value, message) in cases {
        let (status, stderr) = run(&[(var, value)]);
        assert_eq!(status.code(), Some(1), "{var}={value}: {stderr}");
        assert!(stderr.contains(message), "{var}={value}: {stderr}");
    }
}

#[test]
fn start_up_failures_name_the_variable_to_fix() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (status, stderr) = run(&[("PORT", &port)]);
    assert!(!status.success());
    assert!(stderr.contains("(PORT, HOTLINE_BIND)"), "{stderr}");

    let (status, stderr) = run(&[("HOTLINE_GUEST", "/nonexistent/logic.wasm")]);
    assert!(!status.success());
    assert!(stderr.contains("/nonexistent/logic.wasm (HOTLINE_GUEST)"), "{stderr}");

    let (status, stderr) = run(&[("PUBLIC_BASE_URL", "x.example")]);
    assert!(!status.success());
    assert!(stderr.contains(r#"PUBLIC_BASE_URL="x.example": must start with https:// or http://"#), "{stderr}");

    // The guests' fetch settings: each malformed one named, no secret quoted.
    for (var, value, says) in [
        ("HOTLINE_GUEST_ALLOWED_HOSTS", "http://api.example.com", "http:// is only for loopback hosts"),
        ("HOTLINE_GUEST_ALLOWED_HOSTS", "https://api.example.com/v1", "no path"),
        ("HOTLINE_GUEST_SECRETS", r#"{"token": 42}"#, "JSON object of names to string values"),
        ("HOTLINE_GUEST_SECRETS", "{\"token\": \"Bearer s3cr3t\\r\\nX: y\"}", "not a valid HTTP header value"),
        ("HOTLINE_GUEST_VARIABLES", "orders_api=https://x", "JSON object"),
    ] {
        let (status, stderr) = run(&[(var, value)]);
        assert!(!status.success());
        assert!(stderr.contains(var) && stderr.contains(says), "{var}={value}: {stderr}");
        assert!(!stderr.contains("s3cr3t"), "a secret in the error: {stderr}");
    }
}
