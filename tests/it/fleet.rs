//! A fleet: real instances (the release binary, each on its own loopback
//! port and its own compile cache) sharing one real PostgreSQL server. A
//! push to one reaches the others with their live calls migrating; a
//! rollback, by hand or automatic, rolls back all; SIGTERM drains one and
//! leaves the others alone; a restart with an empty cache runs the fleet's
//! version from the database; a version that cannot load says so.

use std::time::{Duration, Instant};

use hotline::sim::{CallOptions, CallReport, place_call};
use reqwest::StatusCode;
use serde_json::Value;

use crate::postgres::{Postgres, TempDir};
use crate::shutdown::{Child, spawn_hotline};
use crate::support::*;
use crate::swap::marks;

const V2: &str = env!("HOTLINE_GUEST_V2_WASM");
/// How long the fleet may take to follow (compiling included, on a busy
/// two-core machine): generous, a bound on hanging, not a performance claim.
const FOLLOW: Duration = Duration::from_secs(30);

struct Instance {
    child: Child,
    name: String,
    _cache: TempDir,
}

impl Instance {
    fn base(&self) -> &str {
        &self.child.base
    }
}

/// An instance named `name` on `pg`, with an empty compile cache of its own.
async fn instance(pg: &Postgres, name: &str) -> Instance {
    let cache = TempDir::new(&format!("fleet-cache-{name}"));
    let (url, dir) = (pg.url(), cache.path().display().to_string());
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("HOTLINE_INSTANCE", name),
        ("HOTLINE_ADMIN_TOKEN", TOKEN),
        ("HOTLINE_CACHE_DIR", dir.as_str()),
        ("HOTLINE_DRAIN_SECS", "20"),
    ];
    Instance { child: spawn_hotline(&env).await, name: name.to_string(), _cache: cache }
}

/// The first instance seeds the fleet; the others start together.
async fn fleet(pg: &Postgres, names: &[&str]) -> Vec<Instance> {
    let mut all = vec![instance(pg, names[0]).await];
    let rest = futures_util::future::join_all(names[1..].iter().map(|n| instance(pg, n))).await;
    all.extend(rest);
    all
}

async fn json(url: String) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// Waits until every instance serves `digest` (its `/version`); returns
/// how long that took from `since`.
async fn all_serving(fleet: &[&Instance], digest: &str, since: Instant) -> Duration {
    let deadline = Instant::now() + FOLLOW;
    for i in fleet {
        loop {
            if active_digest(i.base()).await == digest {
                break;
            }
            assert!(Instant::now() < deadline, "{} never served {digest}", i.name);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    since.elapsed()
}

/// Polls `f` until it holds (within `FOLLOW`), with the last value seen.
async fn eventually<F, Fut>(what: &str, mut f: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (bool, Value)>,
{
    let deadline = Instant::now() + FOLLOW;
    loop {
        let (ok, seen) = f().await;
        if ok {
            return seen;
        }
        assert!(Instant::now() < deadline, "{what}: {seen}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every instance's row in the database says `state` with `digest`.
async fn rows_say(base: &str, names: &[&str], state: &str, digest: &str) -> Value {
    let what = format!("every instance {state} {digest}");
    eventually(&what, || async {
        let fleet = admin_get(base).await["fleet"].clone();
        let rows = fleet["instances"].as_array().cloned().unwrap_or_default();
        let ok = names
            .iter()
            .all(|n| rows.iter().any(|r| r["instance"] == *n && r["state"] == state && r["target"] == digest));
        (ok, fleet)
    })
    .await
}

/// A call whose second utterance comes 7.5 s (wall) in: time for the fleet
/// to follow a push made 1 s in, compiling included.
fn long_call(base: &str, sid: String) -> CallOptions {
    CallOptions {
        server: base.to_string(),
        audio: concat(&[silence(5200), tone(600, 300.0), silence(24_000), tone(700, 420.0), silence(1200)]),
        speed: 4.0,
        call_sid: sid,
        idle_ms: 1000,
        ..CallOptions::default()
    }
}

fn assert_migrated(name: &str, report: &CallReport) {
    assert_eq!(report.close, Some((1000, "stream stopped".into())), "{name}: {:?}", report.close);
    let marks = marks(report);
    assert_eq!(marks.first().map(|m| m.1.as_str()), Some("greeting"), "{name} started on v1: {marks:?}");
    let first_v2 = marks.iter().position(|m| m.1.starts_with("v2-")).unwrap_or_else(|| panic!("{name}: {marks:?}"));
    assert!(marks[first_v2..].iter().all(|m| m.1.starts_with("v2-")), "{name} went back: {marks:?}");
    assert!(marks.iter().any(|m| m.1 == "v2-t2-s0"), "{name}: second reply on v2: {marks:?}");
    echo_is_contiguous(report, EouPick::Last).unwrap_or_else(|e| panic!("{name}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_to_one_reaches_the_fleet_with_live_calls_migrating_and_a_rollback_on_another_rolls_back_all() {
    let pg = Postgres::start();
    let names = ["fleet-a", "fleet-b", "fleet-c"];
    let all = fleet(&pg, &names).await;
    let refs: Vec<&Instance> = all.iter().collect();
    let v1 = active_digest(all[0].base()).await;
    all_serving(&refs, &v1, Instant::now()).await;
    rows_say(all[0].base(), &names, "loaded", &v1).await;

    // Two live calls on each instance.
    let calls: Vec<_> = all
        .iter()
        .flat_map(|i| (0..2).map(move |n| (i.name.clone(), long_call(i.base(), format!("CA{}{n}", i.name)))))
        .map(|(name, opts)| (name, tokio::spawn(async move { place_call(&opts).await })))
        .collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for i in &all {
        assert_eq!(json(format!("{}/readyz", i.base())).await["live_calls"], 2, "{}", i.name);
    }

    let pushed = Instant::now();
    let (status, body) = put_guest(all[0].base(), std::fs::read(V2).unwrap()).await;
    let answered = pushed.elapsed();
    assert_eq!(status, StatusCode::OK, "{body}");
    let v2 = body["active"]["digest"].as_str().unwrap().to_string();
    let whole = all_serving(&refs, &v2, pushed).await;
    eprintln!(
        "fleet: push to {} → all 3 instances serving it in {} ms (the push itself answered in {} ms)",
        all[0].name,
        whole.as_millis(),
        answered.as_millis()
    );

    for (name, call) in calls {
        assert_migrated(&name, &call.await.unwrap().expect("live call completes"));
    }
    for i in &all[1..] {
        let admin = admin_get(i.base()).await;
        assert_eq!(admin["active"]["digest"], v2.as_str());
        assert_eq!(admin["active"]["migrations"], 2, "{}: {admin}", i.name);
        assert_eq!(admin["active"]["cached"], false, "{} compiled it itself: {admin}", i.name);
        assert!(admin["active"]["source"].as_str().unwrap().starts_with("fleet: admin upload on fleet-a"), "{admin}");
        let ready = json(format!("{}/readyz", i.base())).await;
        assert_eq!((&ready["fleet"]["state"], &ready["fleet"]["active"]), (&"in_sync".into(), &v2.as_str().into()));
    }
    rows_say(all[2].base(), &names, "loaded", &v2).await;

    // One database, every instance's calls, each with its instance.
    let calls = eventually("six calls recorded", || async {
        let calls = get_json(all[1].base(), "/api/calls").await["calls"].clone();
        (calls.as_array().unwrap().len() == 6, calls)
    })
    .await;
    for name in names {
        let mine = calls.as_array().unwrap().iter().filter(|c| c["instance"] == name).count();
        assert_eq!(mine, 2, "{name}: {calls}");
        let only = get_json(all[0].base(), &format!("/api/calls?instance={name}")).await;
        assert_eq!(only["calls"].as_array().unwrap().len(), 2, "{name}: {only}");
    }

    // A rollback on another instance rolls back all three.
    let rolled = Instant::now();
    assert_eq!(rollback(all[1].base()).await, StatusCode::OK);
    let whole = all_serving(&refs, &v1, rolled).await;
    eprintln!("fleet: rollback on {} → all 3 instances serving v1 in {} ms", all[1].name, whole.as_millis());
    let fleet = rows_say(all[0].base(), &names, "loaded", &v1).await;
    let newest = &fleet["activations"][0];
    assert_eq!(
        (&newest["action"], &newest["instance"], &newest["digest"]),
        (&"rollback".into(), &"fleet-b".into(), &v1.as_str().into())
    );
    let actions: Vec<_> = fleet["activations"].as_array().unwrap().iter().map(|a| a["action"].clone()).collect();
    assert_eq!(actions, ["rollback", "push", "start"], "{fleet}");
    assert_eq!(admin_get(all[2].base()).await["last_rollback"]["reason"], "admin", "c rolled back as b did");
    // Nothing older than v1 in the fleet's history: refused everywhere.
    assert_eq!(rollback(all[2].base()).await, StatusCode::CONFLICT);
}

/// A call of a few seconds (wall) on `base`.
fn short_call(base: &str, sid: String) -> CallOptions {
    CallOptions {
        server: base.to_string(),
        audio: concat(&[silence(1500), tone(600, 300.0), silence(4000)]),
        speed: 2.0,
        call_sid: sid,
        idle_ms: 500,
        ..CallOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_one_instance_alone_and_a_restart_with_an_empty_cache_runs_the_fleets_version() {
    let pg = Postgres::start();
    let names = ["drain-a", "drain-b", "drain-c"];
    let mut all = fleet(&pg, &names).await;
    let (status, body) = put_guest(all[0].base(), std::fs::read(V2).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v2 = body["active"]["digest"].as_str().unwrap().to_string();
    all_serving(&all.iter().collect::<Vec<_>>(), &v2, Instant::now()).await;

    let calls: Vec<_> = all
        .iter()
        .map(|i| (i.name.clone(), short_call(i.base(), format!("CA{}", i.name))))
        .map(|(name, opts)| (name, tokio::spawn(async move { place_call(&opts).await })))
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let c = &mut all[2];
    let pid = c.child.process.id().expect("running") as i32;
    // SAFETY: kill(2) on the child this test started; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let c_base = c.child.base.clone();
    eventually("c stops being ready", || async {
        let status = reqwest::get(format!("{c_base}/readyz")).await.unwrap().status();
        (status == StatusCode::SERVICE_UNAVAILABLE, Value::from(status.as_u16()))
    })
    .await;
    for i in &all[..2] {
        let ready = reqwest::get(format!("{}/readyz", i.base())).await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK, "{} stays ready while c drains", i.name);
        let ready: Value = ready.json().await.unwrap();
        assert_eq!((ready["draining"].clone(), ready["live_calls"].clone()), (false.into(), 1.into()), "{}", i.name);
    }
    for (name, call) in calls {
        let report = call.await.unwrap().expect("call completes");
        // c's call finished in full during its drain; a's and b's as usual.
        assert_eq!(report.close, Some((1000, "stream stopped".into())), "{name}");
        assert_eq!(hotline::sim::reply_latencies(&report).len(), 1, "{name}: served in full");
        assert_eq!(marks(&report).first().map(|m| m.1.as_str()), Some("v2-greeting"), "{name}");
    }
    let exit = tokio::time::timeout(Duration::from_secs(30), all[2].child.process.wait()).await.expect("c exits");
    assert!(exit.unwrap().success());
    let fleet = admin_get(all[0].base()).await["fleet"].clone();
    let row = |name: &str| fleet["instances"].as_array().unwrap().iter().find(|r| r["instance"] == name).cloned();
    assert_eq!(row("drain-c").unwrap()["state"], "stopped", "{fleet}");
    assert_eq!(row("drain-a").unwrap()["state"], "loaded", "{fleet}");
    // The records of all three calls, c's written at its shutdown.
    let calls = eventually("three calls recorded", || async {
        let calls = get_json(all[0].base(), "/api/calls").await["calls"].clone();
        (calls.as_array().unwrap().len() == 3, calls)
    })
    .await;
    assert!(calls.as_array().unwrap().iter().any(|c| c["instance"] == "drain-c" && c["outcome"] == "caller_hung_up"));

    // c again, with an empty cache: it runs the fleet's version, compiled
    // from the component in the database, not its own built-in.
    all.pop();
    let c = instance(&pg, "drain-c").await;
    assert_eq!(active_digest(c.base()).await, v2);
    let admin = admin_get(c.base()).await;
    assert_eq!(admin["active"]["cached"], false, "{admin}");
    assert!(admin["active"]["source"].as_str().unwrap().starts_with("fleet: "), "{admin}");
    assert_eq!(admin["history"].as_array().unwrap().len(), 1, "nothing loaded before it: {admin}");
    let report = place_call(&short_call(c.base(), "CAafter".into())).await.unwrap();
    assert_eq!(marks(&report).first().map(|m| m.1.as_str()), Some("v2-greeting"));
    rows_say(c.base(), &names, "loaded", &v2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automatic_rollback_on_one_instance_rolls_back_the_fleet() {
    let pg = Postgres::start();
    let names = ["auto-a", "auto-b"];
    let all = fleet(&pg, &names).await;
    let refs: Vec<&Instance> = all.iter().collect();
    let v1 = active_digest(all[0].base()).await;
    let (status, body) = put_guest(all[0].base(), std::fs::read(PROBE_GUEST).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let probe = body["active"]["digest"].as_str().unwrap().to_string();
    all_serving(&refs, &probe, Instant::now()).await;
    // Traps on b only (as in swap.rs: the third rolls back).
    let (x, y) = (trapping_call(all[1].base(), "CAtrapx"), trapping_call(all[1].base(), "CAtrapy"));
    let (x, y) = tokio::join!(place_call(&x), place_call(&y));
    let (_, _) = (x.unwrap(), y.unwrap());
    let version = json(format!("{}/version", all[1].base())).await;
    assert_eq!(version["auto_rollback"]["from"], probe.as_str(), "b rolled back on its own: {version}");
    all_serving(&refs, &v1, Instant::now()).await;
    let fleet = rows_say(all[0].base(), &names, "loaded", &v1).await;
    let newest = &fleet["activations"][0];
    assert_eq!((&newest["action"], &newest["instance"]), (&"auto-rollback".into(), &"auto-b".into()), "{fleet}");
    assert_eq!(admin_get(all[0].base()).await["last_rollback"]["reason"], "traps");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_an_instance_cannot_load_is_reported_and_the_previous_one_serves() {
    let pg = Postgres::start();
    let names = ["bad-a", "bad-b"];
    let all = fleet(&pg, &names).await;
    let v1 = active_digest(all[0].base()).await;
    // A row whose component does not match its digest (a damaged or
    // tampered database): every instance refuses it.
    let bogus = "0".repeat(64);
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    sqlx::query(
        "INSERT INTO guest_versions (digest, component, source, size, created_at) VALUES ($1, $2, 'test', 3, 0)",
    )
    .bind(&bogus)
    .bind(&b"abc"[..])
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO guest_activations (id, digest, action, instance, at) \
         SELECT MAX(id) + 1, $1, 'push', 'test', 0 FROM guest_activations",
    )
    .bind(&bogus)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("SELECT pg_notify('hotline_guest', $1)").bind(&bogus).execute(&pool).await.unwrap();
    rows_say(all[0].base(), &names, "failed", &bogus).await;
    for i in &all {
        let ready = reqwest::get(format!("{}/readyz", i.base())).await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK, "{}: still serving the version it runs", i.name);
        let ready: Value = ready.json().await.unwrap();
        assert_eq!(ready["fleet"]["state"], "failed", "{ready}");
        assert!(ready["fleet"]["error"].as_str().unwrap().contains("refused"), "{ready}");
        assert_eq!(active_digest(i.base()).await, v1);
    }
    // The next push brings the fleet back together.
    let (status, body) = put_guest(all[1].base(), std::fs::read(V2).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v2 = body["active"]["digest"].as_str().unwrap().to_string();
    all_serving(&all.iter().collect::<Vec<_>>(), &v2, Instant::now()).await;
    rows_say(all[0].base(), &names, "loaded", &v2).await;
    assert_eq!(json(format!("{}/readyz", all[0].base())).await["fleet"]["state"], "in_sync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_refuses_pushes_leaves_calls_alone_and_the_fleet_catches_up() {
    let pg = Postgres::start();
    let names = ["gone-a", "gone-b"];
    let all = fleet(&pg, &names).await;
    let refs: Vec<&Instance> = all.iter().collect();
    let v1 = active_digest(all[0].base()).await;
    pg.stop();
    for i in &all {
        let base = i.base().to_string();
        eventually("the instance sees the database gone", || async {
            let ready = json(format!("{base}/readyz")).await;
            (ready["fleet"]["state"] == "db_unreachable", ready)
        })
        .await;
        let status = reqwest::get(format!("{base}/readyz")).await.unwrap().status();
        assert_eq!(status, StatusCode::OK, "{}: still ready on the version it runs", i.name);
    }
    // A push the database cannot take changes nothing, anywhere.
    let (status, body) = put_guest(all[0].base(), std::fs::read(V2).unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["step"], "fleet", "{body}");
    assert_eq!(active_digest(all[0].base()).await, v1);
    // Calls go on meanwhile.
    let report = place_call(&short_call(all[1].base(), "CAdbgone".into())).await.unwrap();
    assert_eq!(report.close, Some((1000, "stream stopped".into())));
    assert_eq!(hotline::sim::reply_latencies(&report).len(), 1);

    // Back: the listeners reconnect (with backoff) and the next push, made
    // as soon as the database answers, reaches both, whether a listener
    // hears its notification or reads it on reconnecting.
    pg.start_again();
    let body = eventually("the push is taken once the database is back", || async {
        let (status, body) = put_guest(all[0].base(), std::fs::read(V2).unwrap()).await;
        (status == StatusCode::OK, body)
    })
    .await;
    let v2 = body["active"]["digest"].as_str().unwrap().to_string();
    all_serving(&refs, &v2, Instant::now()).await;
    for i in &all {
        let base = i.base().to_string();
        eventually("in sync again", || async {
            let ready = json(format!("{base}/readyz")).await;
            (ready["fleet"]["state"] == "in_sync" && ready["fleet"]["active"] == v2.as_str(), ready)
        })
        .await;
    }
    rows_say(all[1].base(), &names, "loaded", &v2).await;
}
