//! A loaded guest version and its per-call sessions.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::Store;
use wasmtime::component::{InstancePre, ResourceAny};

use super::engine::{CallState, Sandbox, arm};
use super::wit::{self, bindings, v0_1, v0_2};

#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("not a WebAssembly component wasmtime can compile: {0:#}")]
    Compile(wasmtime::Error),
    #[error("component does not fit the hotline:call world: {0:#}")]
    Link(wasmtime::Error),
    /// Every instance slot is taken (`HOTLINE_MAX_CALLS`).
    #[error("no free instance slot for call logic: all {0} are in use")]
    NoCapacity(u32),
    #[error("guest instance could not start: {0:#}")]
    Instantiate(wasmtime::Error),
    #[error("guest call ran past its {0:?} deadline")]
    Deadline(Duration),
    #[error("guest trapped: {message}{}", stderr_suffix(.stderr))]
    Trap { message: String, stderr: String },
    #[error("guest session refused restore: {0}")]
    Refused(String),
}

impl GuestError {
    /// The log event naming this failure, the same wherever it happens.
    pub fn event(&self) -> &'static str {
        match self {
            GuestError::Compile(_) | GuestError::Link(_) => "guest_rejected",
            GuestError::NoCapacity(_) => "no_capacity",
            GuestError::Instantiate(_) | GuestError::Deadline(_) | GuestError::Trap { .. } => "guest_trap",
            GuestError::Refused(_) => "guest_refused_snapshot",
        }
    }
}

impl GuestError {
    /// One short line saying what failed (a trap's message without its
    /// backtrace), for the guest's `restarted` event.
    pub fn summary(&self) -> String {
        let text = match self {
            GuestError::Trap { message, .. } => match message.rsplit_once("wasm trap: ") {
                Some((_, trap)) => format!("wasm trap: {}", trap.trim()),
                None => message.lines().next().unwrap_or_default().to_string(),
            },
            other => other.to_string(),
        };
        text.chars().take(200).collect()
    }
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() { String::new() } else { format!(" (guest stderr: {})", stderr.trim()) }
}

/// A compiled, linked guest version. Cheap to clone.
#[derive(Clone)]
pub struct Guest {
    inner: Arc<GuestInner>,
}

struct GuestInner {
    sandbox: Sandbox,
    pre: Pre,
    digest: String,
    from_cache: bool,
}

/// A component linked against the contract version it was built for.
enum Pre {
    V0_3(bindings::AgentPre<CallState>),
    V0_2(v0_2::bindings::AgentPre<CallState>),
    V0_1(v0_1::bindings::AgentPre<CallState>),
}

/// An instance's exports, in its contract version.
enum Agent {
    V0_3(bindings::Agent),
    V0_2(v0_2::bindings::Agent),
    V0_1(v0_1::bindings::Agent),
}

impl Guest {
    pub(super) fn new(
        sandbox: Sandbox,
        pre: InstancePre<CallState>,
        digest: String,
        from_cache: bool,
    ) -> Result<Guest, GuestError> {
        // Newest first: a component fits exactly one version's exports.
        let pre = match bindings::AgentPre::new(pre.clone()) {
            Ok(newest) => Pre::V0_3(newest),
            Err(newest_error) => match (v0_2::bindings::AgentPre::new(pre.clone()), v0_1::bindings::AgentPre::new(pre))
            {
                (Ok(old), _) => Pre::V0_2(old),
                (_, Ok(old)) => Pre::V0_1(old),
                _ => return Err(GuestError::Link(newest_error)),
            },
        };
        Ok(Guest { inner: Arc::new(GuestInner { sandbox, pre, digest, from_cache }) })
    }

    /// sha256 of the component bytes: the version id.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// The `hotline:call` version the component was built against.
    pub fn contract(&self) -> &'static str {
        match self.inner.pre {
            Pre::V0_3(_) => wit::NEWEST,
            Pre::V0_2(_) => "0.2.0",
            Pre::V0_1(_) => "0.1.0",
        }
    }

    /// Loaded precompiled from the cache rather than compiled.
    pub fn from_cache(&self) -> bool {
        self.inner.from_cache
    }

    fn instantiate(&self) -> Result<(Store<CallState>, Agent), GuestError> {
        let mut store = self.inner.sandbox.store()?;
        let _in_guest = arm(&mut store);
        let agent = match &self.inner.pre {
            Pre::V0_3(pre) => pre.instantiate(&mut store).map(Agent::V0_3),
            Pre::V0_2(pre) => pre.instantiate(&mut store).map(Agent::V0_2),
            Pre::V0_1(pre) => pre.instantiate(&mut store).map(Agent::V0_1),
        };
        let agent = agent.map_err(GuestError::Instantiate)?;
        Ok((store, agent))
    }

    /// Answers a voice webhook in a throwaway instance.
    pub fn incoming_call(&self, webhook: &wit::Webhook) -> Result<Result<String, wit::TwimlError>, GuestError> {
        let (mut store, agent) = self.instantiate()?;
        let _in_guest = arm(&mut store);
        let result = match agent {
            Agent::V0_3(a) => a.hotline_call_incoming().call_incoming_call(&mut store, webhook),
            Agent::V0_2(a) => {
                let webhook = v0_2::webhook(webhook);
                let result = a.hotline_call_incoming().call_incoming_call(&mut store, &webhook);
                result.map(|twiml| twiml.map_err(wit::TwimlError::from))
            }
            Agent::V0_1(a) => {
                let webhook = v0_1::webhook(&v0_2::webhook(webhook));
                let result = a.hotline_call_incoming().call_incoming_call(&mut store, &webhook);
                result.map(|twiml| twiml.map_err(|e| wit::TwimlError::from(v0_2::TwimlError::from(e))))
            }
        };
        result.map_err(|e| classify(e, &store))
    }

    /// A fresh per-call instance and session.
    pub fn session(&self) -> Result<Session, GuestError> {
        let (mut store, agent) = self.instantiate()?;
        let _in_guest = arm(&mut store);
        let handle = match &agent {
            Agent::V0_3(a) => a.hotline_call_calls().session().call_constructor(&mut store),
            Agent::V0_2(a) => a.hotline_call_calls().session().call_constructor(&mut store),
            Agent::V0_1(a) => a.hotline_call_calls().session().call_constructor(&mut store),
        };
        let handle = handle.map_err(|e| classify(e, &store))?;
        Ok(Session { store, agent, handle })
    }

    /// A per-call instance continuing from `snapshot` (possibly taken from
    /// another version).
    pub fn restore(&self, snapshot: &[u8]) -> Result<Session, GuestError> {
        let (mut store, agent) = self.instantiate()?;
        let _in_guest = arm(&mut store);
        let handle = match &agent {
            Agent::V0_3(a) => a.hotline_call_calls().session().call_restore(&mut store, snapshot),
            Agent::V0_2(a) => a.hotline_call_calls().session().call_restore(&mut store, snapshot),
            Agent::V0_1(a) => a.hotline_call_calls().session().call_restore(&mut store, snapshot),
        };
        let handle = handle.map_err(|e| classify(e, &store))?.map_err(GuestError::Refused)?;
        Ok(Session { store, agent, handle })
    }
}

/// One live call's instance. Dropping it frees the instance's slot.
pub struct Session {
    store: Store<CallState>,
    agent: Agent,
    handle: ResourceAny,
}

impl Session {
    /// One event in, its effects out, within the deadline.
    pub fn handle(&mut self, event: &wit::Event) -> Result<Vec<wit::Effect>, GuestError> {
        let _in_guest = arm(&mut self.store);
        let result = match (&self.agent, event) {
            // A frame takes the contract's cheap call: arguments in
            // registers (no area to allocate for them), and a flag back
            // (no list to read, nothing for the guest to free) unless the
            // frame caused effects. Two entries into the guest, not four.
            (Agent::V0_3(a), wit::Event::Media(media)) => {
                let session = a.hotline_call_calls().session();
                match session.call_handle_media(&mut self.store, self.handle, &media.payload, media.timestamp_ms) {
                    Ok(true) => session.call_take_effects(&mut self.store, self.handle),
                    Ok(false) => Ok(Vec::new()),
                    Err(e) => Err(e),
                }
            }
            (Agent::V0_3(a), event) => {
                a.hotline_call_calls().session().call_handle(&mut self.store, self.handle, event)
            }
            (Agent::V0_2(a), event) => match v0_2::event(event) {
                Some(event) => {
                    let calls = a.hotline_call_calls();
                    let effects = calls.session().call_handle(&mut self.store, self.handle, &event);
                    effects.map(|fx| fx.into_iter().map(wit::Effect::from).collect())
                }
                None => Ok(Vec::new()),
            },
            (Agent::V0_1(a), event) => match v0_2::event(event).as_ref().and_then(v0_1::event) {
                Some(event) => {
                    let calls = a.hotline_call_calls();
                    let effects = calls.session().call_handle(&mut self.store, self.handle, &event);
                    effects.map(|fx| fx.into_iter().map(|e| wit::Effect::from(v0_2::Effect::from(e))).collect())
                }
                None => Ok(Vec::new()),
            },
        };
        result.map_err(|e| classify(e, &self.store))
    }

    pub fn snapshot(&mut self) -> Result<Vec<u8>, GuestError> {
        let _in_guest = arm(&mut self.store);
        let result = match &self.agent {
            Agent::V0_3(a) => a.hotline_call_calls().session().call_snapshot(&mut self.store, self.handle),
            Agent::V0_2(a) => a.hotline_call_calls().session().call_snapshot(&mut self.store, self.handle),
            Agent::V0_1(a) => a.hotline_call_calls().session().call_snapshot(&mut self.store, self.handle),
        };
        result.map_err(|e| classify(e, &self.store))
    }
}

fn classify(err: wasmtime::Error, store: &Store<CallState>) -> GuestError {
    if let Some(wasmtime::Trap::Interrupt) = err.downcast_ref::<wasmtime::Trap>() {
        return GuestError::Deadline(store.data().deadline);
    }
    let stderr = String::from_utf8_lossy(&store.data().stderr).into_owned();
    GuestError::Trap { message: format!("{err:#}"), stderr }
}

/// The version id of a component: the sha256 of its bytes, in hex.
pub fn digest_of(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
