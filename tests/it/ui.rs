//! The dashboard: sign-in sessions (cookie flags, forged and expired
//! cookies, cross-site refusals, the bearer token still working, failed
//! sign-ins throttled), the web app's serving (hashed assets cached for a
//! year, `index.html` never, deep links), and the whole app in a real
//! browser (headless Chromium driven by `ui/tests/browser.mjs`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hotline::config::{Backend, Config, StoreSettings};
use hotline::sim::{CallOptions, place_call};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::mocks::openai::OpenAiMock;
use crate::postgres::TempDir;
use crate::support::*;

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn dashboard_server(tweak: impl FnOnce(&mut Config)) -> TestServer {
    start_server(|c| {
        c.admin_token = Some(TOKEN.into());
        tweak(c);
    })
    .await
}

/// Signs in; the `Set-Cookie` header and the cookie to send back.
async fn login(base: &str) -> (String, String) {
    let response = client()
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({ "token": TOKEN }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let set = response.headers()[SET_COOKIE].to_str().unwrap().to_string();
    let cookie = set.split(';').next().unwrap().to_string();
    (set, cookie)
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn without_a_token_the_dashboard_and_its_api_do_not_exist() {
    let s = start_server(|_| {}).await;
    let c = client();
    for path in ["/app/", "/app/login", "/app/assets/x.js", "/api/auth/me", "/api/calls"] {
        assert_eq!(c.get(format!("{}{path}", s.base)).send().await.unwrap().status(), StatusCode::NOT_FOUND, "{path}");
    }
    let login = c.post(format!("{}/api/auth/login", s.base)).json(&serde_json::json!({"token": TOKEN}));
    assert_eq!(login.send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_cookie_that_opens_the_api() {
    let s = dashboard_server(|_| {}).await;
    let c = client();
    let (set, cookie) = login(&s.base).await;
    assert!(set.starts_with("hotline_session="), "{set}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(flag), "{flag} in {set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    let me = c.get(format!("{}/api/auth/me", s.base)).header(COOKIE, &cookie).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["via"], "session");
    let expires = me["expires_at"].as_u64().unwrap() / 1000;
    assert!(expires.abs_diff(now_secs() + 12 * 3600) < 10, "{me}");
    // Past the session check (this server keeps no records: 404 says so).
    let calls = c.get(format!("{}/api/calls", s.base)).header(COOKIE, &cookie).send().await.unwrap();
    assert_eq!(calls.status(), StatusCode::NOT_FOUND);
    assert!(calls.text().await.unwrap().contains("records are off"));
    let guest = c.get(format!("{}/admin/guest", s.base)).header(COOKIE, &cookie).send().await.unwrap();
    assert_eq!(guest.status(), StatusCode::OK);
    // A form works too (the page posts JSON; a script may post a form).
    let form = c.post(format!("{}/api/auth/login", s.base)).form(&[("token", TOKEN)]).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    // Scripts keep the bearer token.
    let bearer = c.get(format!("{}/api/auth/me", s.base)).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(bearer.json::<Value>().await.unwrap()["via"], "bearer");
    // Signing out clears the cookie.
    let out = c
        .post(format!("{}/api/auth/logout", s.base))
        .header(COOKIE, &cookie)
        .header("x-hotline-csrf", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::OK);
    assert!(out.headers()[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
}

#[tokio::test]
async fn behind_https_the_cookie_is_secure_and_lasts_as_configured() {
    let s = dashboard_server(|c| {
        c.public_base_url = Some("https://agent.example.com".into());
        c.session_lifetime = Duration::from_secs(2 * 3600);
    })
    .await;
    let (set, _) = login(&s.base).await;
    assert!(set.contains("; Secure") && set.contains("Max-Age=7200"), "{set}");
}

#[tokio::test]
async fn forged_expired_and_missing_sessions_are_refused() {
    let s = dashboard_server(|_| {}).await;
    let c = client();
    let me = |cookie: String| c.get(format!("{}/api/auth/me", s.base)).header(COOKIE, cookie).send();
    let expired = hotline::http::session::issue(TOKEN, now_secs() - 1);
    assert_eq!(me(format!("hotline_session={expired}")).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let other = hotline::http::session::issue("another-admin-token-0123456789", now_secs() + 3600);
    assert_eq!(
        me(format!("hotline_session={other}")).await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "a rotated token"
    );
    let (_, cookie) = login(&s.base).await;
    let tampered = cookie.replacen("hotline_session=", "hotline_session=9", 1);
    assert_eq!(me(tampered).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(me("other=1".into()).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    // None of these counts as a guess at the token: the address still signs in.
    assert_eq!(me(cookie).await.unwrap().status(), StatusCode::OK);
    // The pages send a browser without a session to the sign-in page.
    let page = c.get(format!("{}/app/calls/CA123", s.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()[LOCATION], "/app/login");
}

#[tokio::test]
async fn cross_site_state_changes_are_refused() {
    let s = dashboard_server(|_| {}).await;
    let c = client();
    let (_, cookie) = login(&s.base).await;
    let rollback = || c.post(format!("{}/admin/guest/rollback", s.base)).header(COOKIE, &cookie);
    // No custom header: what a form on another site would send.
    assert_eq!(rollback().send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let cross = rollback().header("x-hotline-csrf", "1").header("sec-fetch-site", "cross-site");
    assert_eq!(cross.send().await.unwrap().status(), StatusCode::FORBIDDEN);
    // Same origin: through to the handler (nothing to roll back to).
    let same = rollback().header("x-hotline-csrf", "1").header("sec-fetch-site", "same-origin");
    assert_eq!(same.send().await.unwrap().status(), StatusCode::CONFLICT);
    // Another site's page cannot sign a browser in either.
    let login =
        c.post(format!("{}/api/auth/login", s.base)).header("sec-fetch-site", "cross-site").form(&[("token", TOKEN)]);
    assert_eq!(login.send().await.unwrap().status(), StatusCode::FORBIDDEN);
    // The bearer token needs no header: browsers never send it on their own.
    let bearer = c.post(format!("{}/admin/guest/rollback", s.base)).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(bearer.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_address() {
    let s = dashboard_server(|_| {}).await;
    let c = client();
    let mut statuses = Vec::new();
    for i in 0..11 {
        let body = serde_json::json!({ "token": format!("wrong-token-{i:04}-xxxxxxxx") });
        statuses.push(c.post(format!("{}/api/auth/login", s.base)).json(&body).send().await.unwrap().status().as_u16());
    }
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert_eq!(statuses[10], 429, "{statuses:?}");
    let right = c.post(format!("{}/api/auth/login", s.base)).json(&serde_json::json!({ "token": TOKEN }));
    assert_eq!(right.send().await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS, "locked out, right token or not");
}

#[tokio::test]
async fn assets_are_cached_for_a_year_and_the_page_never() {
    let s = dashboard_server(|_| {}).await;
    let c = client();
    let (_, cookie) = login(&s.base).await;
    let index = c.get(format!("{}/app/calls/CA123", s.base)).header(COOKIE, &cookie).send().await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    assert_eq!(index.headers()[CACHE_CONTROL], "no-cache");
    assert_eq!(index.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
    let html = index.text().await.unwrap();
    let script = html.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("a script");
    assert!(script.starts_with("/app/assets/index-") && script.ends_with(".js"), "{script}");
    // Assets need no session: they hold no data, and the sign-in page needs them.
    let asset = c.get(format!("{}{script}", s.base)).send().await.unwrap();
    assert_eq!(asset.status(), StatusCode::OK);
    assert_eq!(asset.headers()[CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert_eq!(asset.headers()[CONTENT_TYPE], "text/javascript; charset=utf-8");
    let login_page = c.get(format!("{}/app/login", s.base)).send().await.unwrap();
    assert_eq!(login_page.status(), StatusCode::OK, "the sign-in page needs no session");
    let missing = c.get(format!("{}/app/assets/index-nothere.js", s.base)).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND, "an unknown asset is not the page");
    let app = c.get(format!("{}/app", s.base)).send().await.unwrap();
    assert_eq!((app.status(), app.headers()[LOCATION].to_str().unwrap()), (StatusCode::SEE_OTHER, "/app/"));
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `ui/node_modules`, installed from the lock file when missing (CI's
/// `.ci/run` installs it first; a developer's first run does it here).
fn node_modules() {
    let ui = repo().join("ui");
    if ui.join("node_modules/playwright-core").exists() {
        return;
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&ui)
        .status()
        .expect("npm is needed for the browser test (Node 20 or later)");
    assert!(status.success(), "npm ci in ui/ failed");
}

/// The whole dashboard in headless Chromium: a call seen live on the
/// overview until it ends, a recorded AI call found, searched and opened
/// with its recording, a guest pushed and rolled back (the overview shows
/// the rollback), no console errors.
/// Chromium missing is a failure, not a skip (`.ci/run` installs it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(Path::new(&chromium).exists(), "{chromium} is missing: apt-get install chromium chromium-driver");
    node_modules();

    let mock = OpenAiMock::start().await;
    mock.behave(|b| {
        b.default_transcript = "is the Pelican delivery on time".into();
        b.default_reply = "Yes, it arrives at noon.".into();
    });
    let env = mock.env();
    let from_env = config_from(&env);
    let data = TempDir::new("ui");
    let dir = data.path().join("data");
    let s = dashboard_server(move |c| {
        c.providers = from_env.providers;
        c.store = StoreSettings {
            backend: Backend::Sqlite(dir),
            queue: 64,
            retention: None,
            mask_numbers: true,
            record_audio: true,
            data_dir: None,
            instance: "ui-test".into(),
        };
    })
    .await;

    let sid = "CAui00000000000000000000000000000001";
    let question = fox()[..16_000].to_vec();
    let opts = CallOptions {
        server: s.base.clone(),
        audio: concat(&[silence(1500), question, silence(4000)]),
        idle_ms: 2000,
        call_sid: sid.into(),
        ..CallOptions::default()
    };
    place_call(&opts).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = client().get(format!("{}/api/calls", s.base)).bearer_auth(TOKEN).send().await.unwrap();
        let page: Value = listed.json().await.unwrap();
        if !page["calls"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the call was never recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let shots: PathBuf = repo().join("target/ui-screenshots");
    // Only this run's screenshots count as taken.
    let _ = std::fs::remove_dir_all(&shots);
    let live_sid = "CAui00000000000000000000000000000002";
    let mut node = tokio::process::Command::new("node")
        .arg(repo().join("ui/tests/browser.mjs"))
        .args([&s.base, TOKEN])
        .env("HOTLINE_UI_CALL_SID", sid)
        .env("HOTLINE_UI_WORD", "pelican")
        .env("HOTLINE_UI_INSTANCE", "ui-test")
        .env("HOTLINE_UI_LIVE_SID", live_sid)
        .env("HOTLINE_UI_GUEST", env!("HOTLINE_GUEST_V2_WASM"))
        .env("HOTLINE_UI_SCREENSHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node is needed for the browser test (Node 20 or later)");
    let mut stderr = node.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    // The script's lines as they come: it says when its overview is open
    // for a call to watch, and the call is placed then (a call placed
    // before would have ended before the page looked).
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let mut stdout = String::new();
    let mut live_call = None;
    let run = async {
        while let Some(line) = lines.next_line().await.expect("the browser test's output") {
            println!("{line}");
            if line == "waiting for a live call" && live_call.is_none() {
                // A question after the greeting: the state changes, a turn is counted.
                let opts = CallOptions {
                    server: s.base.clone(),
                    audio: concat(&[silence(1000), fox()[..16_000].to_vec(), silence(3000)]),
                    idle_ms: 2000,
                    call_sid: live_sid.into(),
                    ..CallOptions::default()
                };
                live_call = Some(tokio::spawn(async move { place_call(&opts).await.map(|_| ()) }));
            }
            stdout.push_str(&line);
            stdout.push('\n');
        }
        node.wait().await.expect("the browser test's exit")
    };
    let status =
        tokio::time::timeout(Duration::from_secs(240), run).await.expect("the browser test finishes within 4 minutes");
    let stderr = stderr.await.unwrap();
    assert!(status.success(), "the browser test failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("ok no errors in the browser console"), "{stdout}");
    let live_call = live_call.expect("the browser test asked for a live call");
    live_call.await.unwrap().expect("the live call went through");
    for page in ["login", "overview", "overview-live", "calls", "calls-search", "call-detail", "guests"] {
        assert!(shots.join(format!("{page}.png")).exists(), "no screenshot of {page}");
    }
}
