//! `/healthz`, `/version` and `/readyz`.

use super::*;

pub(super) async fn healthz(p: &Probe, report: &mut Report) {
    const CHECK: &str = "healthz";
    match p.get("/healthz").await {
        Err(e) => report.push(Check::fail(
            CHECK,
            e,
            "the server or its proxy hangs: check that hotline runs and is not overloaded",
        )),
        Ok((status, shown, body, took)) => {
            let ms = took.as_millis();
            if status == StatusCode::OK && body.trim() == "ok" {
                if took > SLOW_HEALTHZ {
                    report.push(Check::warn(
                        CHECK,
                        format!("200 ok in {ms} ms (slow: over {} ms)", SLOW_HEALTHZ.as_millis()),
                        "hotline answers /healthz in about a millisecond: a slow answer is the network or proxy in \
                         between, or a starved machine; a platform health check with a short timeout will restart it",
                    ));
                } else {
                    report.push(Check::pass(CHECK, format!("200 ok in {ms} ms")));
                }
            } else {
                let seen = format!("{status} {} in {ms} ms: {}", shown.unwrap_or_default(), excerpt(&body));
                report.push(Check::fail(CHECK, seen, not_hotline_fix(status)));
            }
        }
    }
}

async fn get_json(
    p: &Probe,
    path: &str,
    check: &'static str,
    report: &mut Report,
) -> Option<(StatusCode, serde_json::Value)> {
    match p.get(path).await {
        Err(e) => {
            report.push(Check::fail(check, e, "the server or its proxy hangs: check that hotline runs"));
            None
        }
        Ok((status, shown, body, _)) => match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(json) if json.is_object() => Some((status, json)),
            _ => {
                let seen = format!("{status} {}: {}", shown.unwrap_or_default(), excerpt(&body));
                report.push(Check::fail(check, seen, not_hotline_fix(status)));
                None
            }
        },
    }
}

pub(super) async fn version(p: &Probe, report: &mut Report) {
    let Some((_, v)) = get_json(p, "/version", "version", report).await else { return };
    if v["name"] != "hotline" {
        report.push(Check::fail("version", format!("not hotline's /version: {v}"), not_hotline_fix(StatusCode::OK)));
        return;
    }
    let commit = v["git_commit"].as_str().map(|c| format!(", commit {}", &c[..c.len().min(12)])).unwrap_or_default();
    let guest = v["guest_digest"].as_str().map(short_digest).unwrap_or("none");
    let head = format!("hotline {}{commit}, guest {guest}", v["version"].as_str().unwrap_or("?"));
    match v["deploy_id"].as_str() {
        Some(id) => report.push(Check::pass("version", format!("{head}, DEPLOY_ID={id}"))),
        None => report.push(Check::warn(
            "version",
            format!("{head}, no DEPLOY_ID"),
            "set DEPLOY_ID (the release or commit) so /version names the build that answers",
        )),
    }
}

fn short_digest(d: &str) -> &str {
    &d[..d.len().min(19)]
}

/// `/readyz` and what it says: readiness, the providers, the database,
/// the signatures. Returns whether the agent is an AI one (all three
/// providers configured).
pub(super) async fn readyz(p: &Probe, report: &mut Report) -> bool {
    let Some((status, r)) = get_json(p, "/readyz", "readyz", report).await else {
        for check in ["providers", "database", "signatures"] {
            report.push(Check::skip(check, "no /readyz to read"));
        }
        return false;
    };
    let live = format!("{}/{} calls", r["live_calls"], r["max_calls"]);
    if r["ready"] == true {
        let digest = r["guest"]["digest"].as_str().map(short_digest).unwrap_or("?");
        report.push(Check::pass("readyz", format!("{status}: ready, guest {digest} loaded, {live}")));
    } else {
        let (why, fix) = if r["guest"]["loaded"] != true {
            ("no guest loaded", "the guest is compiling or was refused: see `guest_rejected` in the server's log")
        } else if r["draining"] == true {
            ("draining (the server got SIGTERM)", "a stopping instance: the platform should route to its successor")
        } else {
            ("at the call limit", "more instances, or a higher HOTLINE_MAX_CALLS")
        };
        report.push(Check::fail("readyz", format!("{status}: not ready: {why}, {live}"), fix));
    }

    let kinds = ["stt", "llm", "tts"];
    let entry = |k: &str| {
        (r["providers"][k]["provider"].as_str().unwrap_or("?"), r["providers"][k]["status"].as_str().unwrap_or("?"))
    };
    let configured = kinds.iter().filter(|k| entry(k).1 != "unconfigured").count();
    let shown: Vec<String> = kinds.iter().map(|k| format!("{k} {} {}", entry(k).0, entry(k).1)).collect();
    let degraded: Vec<String> = kinds
        .iter()
        .filter(|k| entry(k).1 == "degraded")
        .map(|k| format!("{k}: {}", r["providers"][*k]["last_error"]["message"].as_str().unwrap_or("?")))
        .collect();
    if !degraded.is_empty() {
        report.push(Check::warn(
            "providers",
            format!("{}; last errors: {}", shown.join(", "), degraded.join("; ")),
            "the newest request of these providers failed (calls get the apology): check keys, quotas and the \
             provider's status",
        ));
    } else if configured == 0 {
        report.push(Check::pass("providers", "none configured: the echo agent"));
    } else {
        report.push(Check::pass("providers", shown.join(", ")));
    }

    let dropped = r["records"]["dropped"].as_u64().unwrap_or(0);
    match r["db"].as_str().unwrap_or("?") {
        "degraded" => report.push(Check::warn(
            "database",
            format!("degraded, {dropped} records dropped"),
            "the records' database is slow or unreachable (records queue, then drop; calls go on): check DATABASE_URL \
             and the database server",
        )),
        "ok" if dropped > 0 => report.push(Check::warn(
            "database",
            format!("ok, but {dropped} records dropped"),
            "the record queue overflowed: a slow database, or raise HOTLINE_RECORD_QUEUE",
        )),
        "ok" => report.push(Check::pass("database", format!("ok, {} records written", r["records"]["written"]))),
        "off" => report.push(Check::pass("database", "off: no call records kept")),
        other => report.push(Check::warn("database", format!("db {other:?}"), "a hotline this doctor does not know")),
    }

    match r["twilio_signature"].as_str() {
        Some("on") => report.push(Check::pass("signatures", "on: only Twilio (with the auth token) can start calls")),
        Some(_) if p.plain_loopback => report.push(Check::pass("signatures", "off (a local server)")),
        _ => report.push(Check::warn(
            "signatures",
            "off: anyone who finds the URL can start calls",
            "set TWILIO_AUTH_TOKEN and HOTLINE_REQUIRE_SIGNATURE=true on the server",
        )),
    }
    configured == kinds.len()
}
