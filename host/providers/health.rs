//! How each provider kind is doing, for `/readyz`: recorded by the calls
//! as their requests finish, read without any network call.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::Choice;
use super::error::ErrorClass;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Stt,
    Llm,
    Tts,
}

impl ProviderKind {
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::Stt => "stt",
            ProviderKind::Llm => "llm",
            ProviderKind::Tts => "tts",
        }
    }
}

#[derive(Default)]
struct Status {
    /// Unix ms and message of the newest failure.
    last_error: Option<(u64, String)>,
    /// The newest result was a failure.
    failing: bool,
    last_ok: Option<Instant>,
}

pub struct Health {
    choices: [Choice; 3],
    status: [Mutex<Status>; 3],
    /// Failures per kind and class, for `/metrics`.
    errors: [[AtomicU64; ErrorClass::ALL.len()]; 3],
}

const KINDS: [ProviderKind; 3] = [ProviderKind::Stt, ProviderKind::Llm, ProviderKind::Tts];

impl Health {
    pub fn new(choices: [Choice; 3]) -> Health {
        Health { choices, status: Default::default(), errors: Default::default() }
    }

    pub fn ok(&self, kind: ProviderKind) {
        let mut s = self.status[kind as usize].lock().unwrap_or_else(|e| e.into_inner());
        s.failing = false;
        s.last_ok = Some(Instant::now());
    }

    pub fn failed(&self, kind: ProviderKind, class: ErrorClass, message: &str) {
        self.errors[kind as usize][class as usize].fetch_add(1, Ordering::Relaxed);
        let at = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let mut s = self.status[kind as usize].lock().unwrap_or_else(|e| e.into_inner());
        s.failing = true;
        s.last_error = Some((at, message.to_string()));
    }

    /// `(kind, class, failures)` of every configured kind, zeros included.
    pub fn error_counts(&self) -> Vec<(&'static str, &'static str, u64)> {
        let configured = KINDS.into_iter().filter(|k| self.choices[*k as usize] != Choice::None);
        configured
            .flat_map(|kind| {
                ErrorClass::ALL.into_iter().map(move |class| {
                    (kind.name(), class.name(), self.errors[kind as usize][class as usize].load(Ordering::Relaxed))
                })
            })
            .collect()
    }

    /// `{"stt": {"provider": "openai", "status": "ok"}, ...}`; a kind whose
    /// newest request failed is `degraded`, with that error and its time.
    pub fn report(&self) -> Value {
        let mut out = serde_json::Map::new();
        for kind in KINDS {
            let choice = self.choices[kind as usize];
            let s = self.status[kind as usize].lock().unwrap_or_else(|e| e.into_inner());
            let status = match (choice, s.failing) {
                (Choice::None, _) => "unconfigured",
                (_, true) => "degraded",
                (_, false) => "ok",
            };
            let mut entry = json!({ "provider": choice.name(), "status": status });
            if let Some((at, message)) = &s.last_error {
                entry["last_error"] = json!({ "message": message, "at_unix_ms": at });
            }
            out.insert(kind.name().to_string(), entry);
        }
        Value::Object(out)
    }
}
