//! `hotline doctor`: the checks people run by hand against a deployment
//! (`curl`, `wscat`, `ss`), as one command that names the failing layer
//! and its usual fix. `remote.rs` checks a URL from the outside (DNS, TLS,
//! routes, webhooks, the WebSocket, a short simulated call in `call.rs`);
//! `local.rs` checks the box the server runs on. Both produce a [`Report`]:
//! one [`Check`] per line, printed as text or JSON.

mod call;
mod local;
mod remote;
mod twiml;

pub use local::run as run_local;
pub use remote::{Target, run as run_remote};

use serde::Serialize;

/// How a check went. `Skip`: not run, because a check it needs failed or
/// could not run (the line says which); it never fails the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// One line of the report: what was checked, how it went, what was seen,
/// and for a warning or a failure the usual fix.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub status: Status,
    pub evidence: String,
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(check: &'static str, evidence: impl Into<String>) -> Check {
        Check { check, status: Status::Pass, evidence: evidence.into(), fix: None }
    }

    pub fn warn(check: &'static str, evidence: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { check, status: Status::Warn, evidence: evidence.into(), fix: Some(fix.into()) }
    }

    pub fn fail(check: &'static str, evidence: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { check, status: Status::Fail, evidence: evidence.into(), fix: Some(fix.into()) }
    }

    pub fn skip(check: &'static str, why: impl Into<String>) -> Check {
        Check { check, status: Status::Skip, evidence: why.into(), fix: None }
    }
}

/// The checks in the order they ran.
#[derive(Debug, Default)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn push(&mut self, check: Check) {
        self.checks.push(check);
    }

    /// The named check's status, if it ran (later checks depend on it).
    pub fn status(&self, name: &str) -> Option<Status> {
        self.checks.iter().find(|c| c.check == name).map(|c| c.status)
    }

    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    /// One line per check; a fix, when there is one, indented below it.
    pub fn text(&self) -> String {
        let width = self.checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            out.push_str(&format!("{}  {:width$}  {}\n", c.status.label(), c.check, c.evidence));
            if let Some(fix) = &c.fix {
                out.push_str(&format!("      {:width$}  fix: {fix}\n", ""));
            }
        }
        let count = |s: Status| self.checks.iter().filter(|c| c.status == s).count();
        out.push_str(&format!(
            "{} passed, {} warned, {} failed, {} skipped\n",
            count(Status::Pass),
            count(Status::Warn),
            count(Status::Fail),
            count(Status::Skip)
        ));
        out
    }

    /// `[{"check", "status", "evidence", "fix"}, ...]`.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(&self.checks).expect("checks serialize")
    }
}

/// The start of a body, on one line: enough to recognise whose page it is.
fn excerpt(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &flat[..at]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_fails_the_report_and_a_skip_does_not() {
        let mut report = Report::default();
        report.push(Check::pass("dns", "a.example → 192.0.2.1"));
        report.push(Check::skip("tls", "plain http"));
        assert!(!report.failed());
        report.push(Check::fail("healthz", "404", "route it"));
        assert!(report.failed());
        let text = report.text();
        assert!(text.contains("FAIL  healthz  404\n"), "{text}");
        assert!(text.contains("fix: route it"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(json[2]["status"], "FAIL");
        assert_eq!(json[0]["fix"], serde_json::Value::Null);
    }

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt("<html>\n  <body>hi</body>\n</html>"), "<html> <body>hi</body> </html>");
        assert_eq!(excerpt(&"x".repeat(200)).chars().count(), 81);
    }
}
