//! The load pipeline: digest, compile off the async workers, type-check
//! against the world, run the smoke scenario. Only a version that passes
//! every step can be activated; a failure names the step and the reason.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tracing::{error, info};

use super::{Registry, Stats, Version};
use crate::sandbox::{GuestError, Sandbox};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Read,
    Compile,
    Link,
    Smoke,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Read => "read",
            Step::Compile => "compile",
            Step::Link => "type-check",
            Step::Smoke => "smoke test",
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("guest rejected at {step}: {reason}")]
pub struct LoadError {
    pub step: Step,
    pub reason: String,
}

impl LoadError {
    pub fn new(step: Step, reason: impl Into<String>) -> Self {
        LoadError { step, reason: reason.into() }
    }
}

/// The scenario every version must pass before it takes calls.
const SMOKE: &str = include_str!("smoke.jsonl");

/// Turns component bytes into a validated version, ready to activate.
pub async fn admit(sandbox: &Sandbox, bytes: Vec<u8>, source: String) -> Result<Arc<Version>, LoadError> {
    let started = Instant::now();
    let compiler = sandbox.clone();
    let guest = tokio::task::spawn_blocking(move || compiler.load(&bytes))
        .await
        .map_err(|e| LoadError::new(Step::Compile, format!("compiler task failed: {e}")))?
        .map_err(|e| match e {
            GuestError::Link(_) => LoadError::new(Step::Link, format!("{e}")),
            other => LoadError::new(Step::Compile, format!("{other}")),
        })?;
    let smoke = crate::scenario::run(&guest, "smoke", SMOKE, Default::default()).await;
    if !smoke.passed() {
        return Err(LoadError::new(Step::Smoke, smoke.failures.join("; ")));
    }
    Ok(Arc::new(Version {
        guest,
        source,
        loaded_at: SystemTime::now(),
        load_ms: started.elapsed().as_millis() as u64,
        stats: Stats::default(),
    }))
}

/// Admits `bytes` and, if they pass, makes them the active version. Every
/// way a guest arrives (start-up, the watched file, the admin API, the
/// fleet) goes through [`validate`] and [`activate`], so each logs the same
/// `guest_loaded` (first version), `guest_swapped` or `guest_rejected` event.
pub async fn install(
    sandbox: &Sandbox,
    registry: &Registry,
    bytes: Vec<u8>,
    source: String,
) -> Result<Arc<Version>, LoadError> {
    let version = validate(sandbox, bytes, source).await?;
    activate(registry, version.clone());
    Ok(version)
}

/// [`admit`], logging `guest_rejected` when the version does not pass.
pub async fn validate(sandbox: &Sandbox, bytes: Vec<u8>, source: String) -> Result<Arc<Version>, LoadError> {
    admit(sandbox, bytes, source.clone()).await.inspect_err(|e| {
        error!(event = "guest_rejected", source, step = %e.step, reason = e.reason);
    })
}

/// Makes an admitted version the active one, logging `guest_loaded` (the
/// first) or `guest_swapped`.
pub fn activate(registry: &Registry, version: Arc<Version>) {
    let (to, ms, cached) = (version.digest(), version.load_ms, version.guest.from_cache());
    let (contract, source) = (version.guest.contract(), version.source.as_str());
    match registry.activate(version.clone()) {
        None => info!(event = "guest_loaded", source, digest = to, contract, ms, cached),
        Some(previous) => info!(event = "guest_swapped", from = previous.digest(), to, contract, ms, cached, source),
    }
}
