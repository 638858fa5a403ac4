//! The sandbox that runs call logic: the only module that names wasmtime
//! types. Everything outside sees [`Guest`] (a loaded, validated component)
//! and [`Session`] (one call's instance), and the plain data types of the
//! contract in `wit/call.wit`.
//!
//! Engine policy lives here, in one place: pooling allocator, a memory cap
//! per instance, and a deadline on every guest call. Guest calls are async:
//! on every epoch tick (1 ms) a running guest yields to the tokio scheduler,
//! and once its call has run through the deadline's worth of ticks it
//! traps. So a looping guest never holds a worker thread for more than a
//! tick, and never for long.

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "agent",
        additional_derives: [PartialEq],
        imports: { default: async },
        exports: { default: async },
    });
}

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceAny};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits, StoreLimitsBuilder,
    UpdateDeadline,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

pub use bindings::hotline::call::types::{
    CallMode, Config as CallConfig, Effect, Event, LogEntry, Media, ProviderError, ProviderKind, Providers,
    ReplyText, Role, SpeechAudio, Started, Timer, Transcript, Turn, TwimlError, Utterance, Webhook,
};

/// The built-in guest, compiled from `guest/default` by build.rs.
pub static DEFAULT_GUEST: &[u8] = include_bytes!(env!("HOTLINE_GUEST_DEFAULT_WASM"));

/// How often the epoch ticks; deadlines are whole ticks.
const TICK: Duration = Duration::from_millis(1);
/// Guest stderr kept per instance (panic messages land here).
const STDERR_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Linear memory cap per instance.
    pub memory_bytes: usize,
    /// Wall-clock budget of one guest call.
    pub deadline: Duration,
    /// Instances that may exist at once (live calls plus webhooks in flight).
    pub max_instances: u32,
    /// Where compiled components are kept between runs; `None` disables it.
    pub cache_dir: Option<PathBuf>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self { memory_bytes: 16 << 20, deadline: Duration::from_millis(20), max_instances: 1000, cache_dir: None }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("not a WebAssembly component wasmtime can compile: {0:#}")]
    Compile(wasmtime::Error),
    #[error("component does not fit the hotline:call world: {0:#}")]
    Link(wasmtime::Error),
    #[error("guest instance could not start: {0:#}")]
    Instantiate(wasmtime::Error),
    #[error("guest call ran past its {0:?} deadline")]
    Deadline(Duration),
    #[error("guest trapped: {message}{}", stderr_suffix(.stderr))]
    Trap { message: String, stderr: String },
    #[error("guest session refused restore: {0}")]
    Refused(String),
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() { String::new() } else { format!(" (guest stderr: {})", stderr.trim()) }
}

/// Per-store host state: the WASI context the guest's std links against
/// (empty: no args, env, preopens or network), its captured stderr, and the
/// memory limiter.
struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    stderr: MemoryOutputPipe,
    /// Epoch ticks the guest call in progress has run through.
    ticks_used: u64,
    /// Ticks a guest call may run through before it traps.
    tick_budget: u64,
    deadline: Duration,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The compiler and policy shared by every guest version.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<SandboxInner>,
}

struct SandboxInner {
    engine: Engine,
    linker: Linker<CallState>,
    config: SandboxConfig,
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> anyhow::Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        let n = config.max_instances.max(1);
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
            .total_memories(n * 2)
            .total_tables(n * 4)
            .total_stacks(n)
            .max_memory_size(config.memory_bytes);
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            // Small reservations keep a thousand slots cheap in address space.
            .memory_reservation(config.memory_bytes as u64)
            .memory_guard_size(64 << 10)
            .memory_reservation_for_growth(0);
        let engine = Engine::new(&wasm)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        spawn_epoch_ticker(&engine);
        Ok(Self { inner: Arc::new(SandboxInner { engine, linker, config }) })
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// Compiles (or loads from the cache) and links a component. CPU-heavy:
    /// call it off the async workers (`spawn_blocking`).
    pub fn load(&self, bytes: &[u8]) -> Result<Guest, GuestError> {
        let digest = digest_of(bytes);
        let cache = self.cache_path(&digest);
        let cached = cache.as_deref().and_then(|path| self.from_cache(path));
        let from_cache = cached.is_some();
        let component = match cached {
            Some(component) => component,
            None => {
                let component = Component::new(&self.inner.engine, bytes).map_err(GuestError::Compile)?;
                if let Some(path) = &cache {
                    store_in_cache(&component, path);
                }
                component
            }
        };
        check_imports(&component, &self.inner.engine)?;
        let pre = self.inner.linker.instantiate_pre(&component).map_err(GuestError::Link)?;
        let pre = bindings::AgentPre::new(pre).map_err(GuestError::Link)?;
        Ok(Guest { inner: Arc::new(GuestInner { sandbox: self.clone(), pre, digest, from_cache }) })
    }

    /// `<dir>/<component sha256>-<engine settings hash>.cwasm`: a cache hit
    /// needs the same bytes and the same compiler, target and settings.
    fn cache_path(&self, digest: &str) -> Option<PathBuf> {
        let dir = self.inner.config.cache_dir.as_ref()?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.inner.engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        Some(dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish())))
    }

    fn from_cache(&self, path: &Path) -> Option<Component> {
        // Read into memory rather than `deserialize_file`: a mapped file that
        // someone truncates under a running server is a SIGBUS, a copy is not.
        let bytes = std::fs::read(path).ok()?;
        // SAFETY: the bytes come from hotline's own cache directory, written
        // by `Component::serialize` (atomically) under a name made of the
        // source digest and the engine's settings; wasmtime also checks the
        // header for compatibility and refuses a mismatch.
        match unsafe { Component::deserialize(&self.inner.engine, &bytes) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(event = "guest_cache_unusable", path = %path.display(), error = %e);
                None
            }
        }
    }

    fn store(&self) -> Store<CallState> {
        let stderr = MemoryOutputPipe::new(STDERR_BYTES);
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.inner.config.memory_bytes)
            .trap_on_grow_failure(true)
            .build();
        let state = CallState {
            wasi,
            table: ResourceTable::new(),
            limits,
            stderr,
            ticks_used: 0,
            tick_budget: (self.inner.config.deadline.as_micros() / TICK.as_micros()).max(1) as u64,
            deadline: self.inner.config.deadline,
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limits);
        // Runs when a guest call is still running at a tick: count the tick
        // and yield to tokio, or trap once the budget is spent. Ticks spent
        // waiting for a worker (after a yield, or on a busy machine) do not
        // run guest code and are not counted: the budget is the guest's own
        // running time, so load does not turn into spurious traps.
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            state.ticks_used += 1;
            if state.ticks_used >= state.tick_budget {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }
}

/// Starts the budget for one guest call.
fn arm(store: &mut Store<CallState>) {
    store.data_mut().ticks_used = 0;
    store.set_epoch_deadline(1);
}

/// The WASI a guest may import: what Rust's std needs to start and to print
/// a panic (environment and stdio, backed by nothing). No filesystem,
/// sockets, clocks or random: a guest asking for them is refused.
const ALLOWED_IMPORTS: &[&str] = &[
    // Types only: the contract's shared records and variants.
    "hotline:call/types@",
    "wasi:cli/environment@",
    "wasi:cli/exit@",
    "wasi:cli/stdin@",
    "wasi:cli/stdout@",
    "wasi:cli/stderr@",
    "wasi:cli/terminal-",
    "wasi:io/error@",
    "wasi:io/poll@",
    "wasi:io/streams@",
];

fn check_imports(component: &Component, engine: &Engine) -> Result<(), GuestError> {
    let ty = component.component_type();
    let refused: Vec<&str> = ty
        .imports(engine)
        .map(|(name, _)| name)
        .filter(|name| !ALLOWED_IMPORTS.iter().any(|allowed| name.starts_with(allowed)))
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(GuestError::Link(wasmtime::Error::msg(format!(
        "the component imports {}, which hotline does not provide to guests (no filesystem, network, clocks or random)",
        refused.join(", ")
    ))))
}

/// Writes atomically (temp file, then rename) so a crash never leaves a
/// torn entry; a cache that cannot be written only costs a compile later.
fn store_in_cache(component: &Component, path: &Path) {
    let result = component.serialize().map_err(|e| e.to_string()).and_then(|bytes| {
        let dir = path.parent().expect("cache paths have a directory");
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, path).map_err(|e| e.to_string())
    });
    if let Err(error) = result {
        tracing::warn!(event = "guest_cache_write_failed", path = %path.display(), error);
    }
}

/// Ticks the engine's epoch until the engine is gone.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("hotline-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .expect("spawn epoch ticker thread");
}

/// A compiled, linked guest version. Cheap to clone.
#[derive(Clone)]
pub struct Guest {
    inner: Arc<GuestInner>,
}

struct GuestInner {
    sandbox: Sandbox,
    pre: bindings::AgentPre<CallState>,
    digest: String,
    from_cache: bool,
}

impl Guest {
    /// sha256 of the component bytes: the version id.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// Loaded precompiled from the cache rather than compiled.
    pub fn from_cache(&self) -> bool {
        self.inner.from_cache
    }

    async fn instantiate(&self) -> Result<(Store<CallState>, bindings::Agent), GuestError> {
        let mut store = self.inner.sandbox.store();
        arm(&mut store);
        let agent = self.inner.pre.instantiate_async(&mut store).await.map_err(GuestError::Instantiate)?;
        Ok((store, agent))
    }

    /// Answers a voice webhook in a throwaway instance.
    pub async fn incoming_call(&self, webhook: &Webhook) -> Result<Result<String, TwimlError>, GuestError> {
        let (mut store, agent) = self.instantiate().await?;
        arm(&mut store);
        let result = agent.hotline_call_incoming().call_incoming_call(&mut store, webhook).await;
        result.map_err(|e| classify(e, &store))
    }

    /// A fresh per-call instance and session.
    pub async fn session(&self) -> Result<Session, GuestError> {
        let (mut store, agent) = self.instantiate().await?;
        arm(&mut store);
        let handle = agent.hotline_call_calls().session().call_constructor(&mut store).await;
        let handle = handle.map_err(|e| classify(e, &store))?;
        Ok(Session { store, agent, handle })
    }

    /// A per-call instance continuing from `snapshot` (possibly taken from
    /// another version).
    pub async fn restore(&self, snapshot: &[u8]) -> Result<Session, GuestError> {
        let (mut store, agent) = self.instantiate().await?;
        arm(&mut store);
        let handle = agent.hotline_call_calls().session().call_restore(&mut store, snapshot).await;
        let handle = handle.map_err(|e| classify(e, &store))?.map_err(GuestError::Refused)?;
        Ok(Session { store, agent, handle })
    }
}

/// One live call's instance. Dropping it frees the instance's pool slot.
pub struct Session {
    store: Store<CallState>,
    agent: bindings::Agent,
    handle: ResourceAny,
}

impl Session {
    /// One event in, its effects out, within the deadline.
    pub async fn handle(&mut self, event: &Event) -> Result<Vec<Effect>, GuestError> {
        arm(&mut self.store);
        let calls = self.agent.hotline_call_calls();
        let result = calls.session().call_handle(&mut self.store, self.handle, event).await;
        result.map_err(|e| classify(e, &self.store))
    }

    pub async fn snapshot(&mut self) -> Result<Vec<u8>, GuestError> {
        arm(&mut self.store);
        let calls = self.agent.hotline_call_calls();
        let result = calls.session().call_snapshot(&mut self.store, self.handle).await;
        result.map_err(|e| classify(e, &self.store))
    }
}

fn classify(err: wasmtime::Error, store: &Store<CallState>) -> GuestError {
    if let Some(wasmtime::Trap::Interrupt) = err.downcast_ref::<wasmtime::Trap>() {
        return GuestError::Deadline(store.data().deadline);
    }
    let stderr = String::from_utf8_lossy(&store.data().stderr.contents()).into_owned();
    GuestError::Trap { message: format!("{err:#}"), stderr }
}

/// The version id of a component: the sha256 of its bytes, in hex.
pub fn digest_of(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
