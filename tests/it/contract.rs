//! Contract versions: components built against the released
//! `hotline:call@0.1.0` and `@0.2.0` are accepted, serve calls, and live
//! calls migrate between them and the newest version both ways. They are
//! the default guest as those releases built it, kept as built in
//! `tests/data/guests/` (its README says from which commit).

use hotline::config::SwapPolicy;
use hotline::sandbox::wit::{Effect, Event, Restart, SpeechAudio};
use hotline::sim::place_call;
use reqwest::StatusCode;

use crate::support::*;
use crate::swap::{marks, two_turn_call};

fn built_for(contract: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/guests/default-contract-{contract}.wasm", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn contract_0_1() -> Vec<u8> {
    built_for("0.1.0")
}

#[test]
fn each_component_runs_under_the_contract_it_was_built_for() {
    for contract in ["0.1.0", "0.2.0"] {
        let old = sandbox().load(&built_for(contract)).expect("an older component loads");
        assert_eq!(old.contract(), contract);
    }
    assert_eq!(default_guest().contract(), "0.3.0");
}

#[tokio::test]
async fn what_0_3_added_is_not_delivered_to_older_components() {
    use hotline::sandbox::wit::{AnsweredBy, FetchError, Fetched, ToolCall};
    let old = sandbox().load(&built_for("0.2.0")).unwrap();
    let mut d = thinking(&old).await;
    for event in [
        Event::AnsweredBy(AnsweredBy::MachineEndBeep),
        Event::ToolCalls(vec![ToolCall { id: "c1".into(), name: "end_call".into(), arguments: "{}".into() }]),
        Event::Fetched(Fetched { id: 1, response: Err(FetchError::Timeout) }),
    ] {
        assert!(d.send(event).await.is_empty(), "a 0.2.0 session hears nothing of it");
    }
    // ...and the session still works: its turn goes on.
    d.send(restarted(true)).await;
    assert!(apologized(&d), "{:?}", d.effects);
}

/// An AI call of `guest` waiting for its transcript (no transcript ever
/// comes: the instance that asked was lost).
async fn thinking(guest: &hotline::sandbox::Guest) -> Driver {
    let mut d = Driver::start(guest, call_config(500, 80, true)).await;
    // The greeting's speech arrives and is heard.
    d.send(Event::SpeechAudio(SpeechAudio { samples: tone(500, 300.0), sample_rate: 8000, done: true })).await;
    d.ack_marks().await;
    d.audio(&silence(300)).await;
    d.audio(&tone(500, 300.0)).await;
    d.audio(&silence(600)).await;
    assert!(d.effects.iter().any(|(_, e)| matches!(e, Effect::Transcribe(_))), "setup: transcribing");
    d.clear_effects();
    d
}

fn restarted(work_dropped: bool) -> Event {
    Event::Restarted(Restart { reason: "wasm trap: unreachable".into(), work_dropped })
}

fn apologized(d: &Driver) -> bool {
    d.marks().iter().any(|m| m.ends_with("-apology"))
}

#[tokio::test]
async fn restarted_reaches_each_contract_as_it_can_say_it() {
    // Since 0.2.0: the event itself; with work dropped, the waiting turn gives up.
    for guest in [default_guest().clone(), sandbox().load(&built_for("0.2.0")).unwrap()] {
        let mut d = thinking(&guest).await;
        d.send(restarted(false)).await;
        assert_eq!(d.logs("restarted").len(), 1, "{:?}", d.effects);
        assert!(!apologized(&d), "nothing was lost: {:?}", d.effects);
        d.send(restarted(true)).await;
        assert!(apologized(&d), "the lost turn is given up with an apology: {:?}", d.effects);
    }

    // 0.1.0 has no `restarted`: the provider error 0.1.0 hosts sent when a
    // restart dropped provider work, and nothing otherwise.
    let old = sandbox().load(&contract_0_1()).unwrap();
    let mut d = thinking(&old).await;
    assert!(d.send(restarted(false)).await.is_empty(), "not delivered to 0.1.0");
    d.send(restarted(true)).await;
    let errors = d.logs("provider_error");
    assert_eq!(errors.len(), 1, "{:?}", d.effects);
    assert_eq!(field(&errors[0].1, "kind"), "llm");
    assert!(apologized(&d), "{:?}", d.effects);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_component_serves_calls_and_live_calls_migrate_both_ways() {
    let s = admin_server(SwapPolicy::Migrate).await;
    let (status, body) = put_guest(&s.base, contract_0_1()).await;
    assert_eq!(status, StatusCode::OK, "accepted, smoke scenario passed through the conversions: {body}");
    assert_eq!(body["active"]["contract"], "0.1.0", "{body}");

    // Live calls on 0.1.0, then the newest version pushed under them; then
    // live calls on it, and a rollback to 0.1.0 under them.
    for (round, swap_to_contract) in [(0, "0.3.0"), (1, "0.1.0")] {
        let calls: Vec<_> = (0..4)
            .map(|i| {
                let opts = two_turn_call(&s.base, round * 10 + i);
                tokio::spawn(async move { place_call(&opts).await })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(900)).await;
        if round == 0 {
            let (status, body) = put_guest(&s.base, hotline::versions::DEFAULT_GUEST.to_vec()).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        } else {
            assert_eq!(rollback(&s.base).await, StatusCode::OK);
        }
        for (i, call) in calls.into_iter().enumerate() {
            let report = call.await.unwrap().expect("live call completes");
            assert_eq!(report.close, Some((1000, "stream stopped".into())), "round {round} call {i}");
            assert_eq!(marks(&report).first().map(|m| m.1.as_str()), Some("greeting"));
            assert_eq!(hotline::sim::reply_latencies(&report).len(), 2, "round {round} call {i}: two replies");
            echo_is_contiguous(&report, EouPick::Last).unwrap_or_else(|e| panic!("round {round} call {i}: {e}"));
        }
        let admin = admin_get(&s.base).await;
        assert_eq!(admin["active"]["contract"], swap_to_contract, "{admin}");
        assert_eq!(admin["active"]["migrations"], 4, "round {round}: every live call moved: {admin}");
    }
}
