//! Engine policy, in one place: a bound on live instances, a memory cap
//! per instance, and a deadline on every guest call. Guest calls are plain
//! function calls on the calling thread (no fiber: `wasi/mod.rs` says why):
//! the epoch ticks every millisecond while a guest call is running, and a
//! guest call that has run through the deadline's worth of ticks traps. A
//! looping guest holds its worker thread for that long, once: the default
//! deadline is 20 ms. Between guest calls (most of the time: a call is
//! microseconds, fifty a second) the ticker wakes every few milliseconds
//! instead, and not at all while no instance is alive.

use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, Weak};
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, ProfilingStrategy, Store, StoreLimits, StoreLimitsBuilder,
    UpdateDeadline,
};

use super::cache::Cache;
use super::guest::{Guest, GuestError};

/// How often the epoch ticks while a guest call is running; deadlines are
/// whole ticks. Fine, because a tick the thread spent descheduled counts
/// once however long it was: with coarser ticks, a few preemptions on a
/// busy machine would use up a call's budget.
const TICK: Duration = Duration::from_millis(1);
/// The ticker's pace while no guest call is running, at most: a call that
/// starts just after a wake-up sees its first tick this late, so a looping
/// guest is stopped up to this long after its deadline. A quarter of the
/// deadline when that is shorter.
const IDLE_TICK: Duration = Duration::from_millis(5);
/// Guest stderr kept per instance (panic messages land here).
const STDERR_BYTES: usize = 16 * 1024;

/// The sandbox's settings; `Config::default().sandbox` has the defaults
/// (defined once, in `config/defs.rs`).
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
    /// Why there is no `cache_dir` when none was asked for (no safe default
    /// place): logged once, when the sandbox starts.
    pub cache_off: Option<&'static str>,
    /// The cache's size bound: least recently used entries go first.
    pub cache_max_bytes: u64,
    /// Tell `perf` where the guest's compiled functions are.
    pub perfmap: bool,
}

/// Per-store host state: the guest's captured stderr (`wasi/mod.rs`) and
/// the memory limiter.
pub(super) struct CallState {
    limits: StoreLimits,
    /// What the guest wrote to stderr (panic messages land here), up to
    /// `stderr_limit` bytes.
    pub(super) stderr: Vec<u8>,
    pub(super) stderr_limit: usize,
    /// Epoch ticks the guest call in progress has run through.
    ticks_used: u64,
    /// Ticks a guest call may run through before it traps.
    tick_budget: u64,
    pub(super) deadline: Duration,
    /// This store's place among the live instances.
    _slot: Slot,
}

/// The instances alive now, and the thread that ticks for them. Dropped
/// with the sandbox and its last instance: the ticker then ends.
struct Live {
    instances: Arc<Instances>,
    ticker: std::thread::Thread,
}

/// What the ticker reads.
struct Instances {
    count: AtomicU32,
    /// False once the `Live` is gone.
    open: AtomicBool,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.instances.open.store(false, Ordering::Release);
        self.ticker.unpark();
    }
}

/// One of the `max_instances` places; freed when the store is dropped.
struct Slot(Arc<Live>);

impl Slot {
    fn take(live: &Arc<Live>, max: u32) -> Option<Slot> {
        let before = live
            .instances
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .ok()?;
        if before == 0 {
            // The ticker may be asleep: no guest call may run untimed.
            live.ticker.unpark();
        }
        Some(Slot(live.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.instances.count.fetch_sub(1, Ordering::AcqRel);
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
    cache: Option<Cache>,
    config: SandboxConfig,
    /// Instances alive now (stores not yet dropped).
    live: Arc<Live>,
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> anyhow::Result<Self> {
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            // Not the pooling allocator: each of its table slots is at
            // least a page, written at every instantiation (a component
            // has two tables: 8 KiB a call), where a table of this
            // allocator is a few hundred bytes of heap. Its faster
            // instantiation is worth little at one instance per call.
            .allocation_strategy(InstanceAllocationStrategy::OnDemand)
            // Small reservations keep a thousand instances cheap in
            // address space.
            .memory_reservation(config.memory_bytes as u64)
            .memory_guard_size(64 << 10)
            .memory_reservation_for_growth(0);
        if config.perfmap {
            wasm.profiler(ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&wasm)?;
        let mut linker = Linker::new(&engine);
        super::wasi::add_to_linker(&mut linker)?;
        let instances = Arc::new(Instances { count: AtomicU32::new(0), open: AtomicBool::new(true) });
        let ticker = spawn_epoch_ticker(&engine, instances.clone(), config.deadline);
        let live = Arc::new(Live { instances, ticker });
        let cache = Cache::open(&config, &engine);
        Ok(Self { inner: Arc::new(SandboxInner { engine, linker, cache, config, live }) })
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// Where compiled components are kept: `None` when there is no cache,
    /// or its directory was refused (logged).
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.inner.cache.as_ref().map(Cache::dir)
    }

    /// Compiles (or loads from the cache) and links a component. CPU-heavy:
    /// call it off the async workers (`spawn_blocking`).
    pub fn load(&self, bytes: &[u8]) -> Result<Guest, GuestError> {
        let digest = super::digest_of(bytes);
        let engine = &self.inner.engine;
        let cached = self.inner.cache.as_ref().and_then(|cache| cache.get(engine, &digest));
        let from_cache = cached.is_some();
        let component = match cached {
            Some(component) => component,
            None => {
                let component = Component::new(engine, bytes).map_err(GuestError::Compile)?;
                if let Some(cache) = &self.inner.cache {
                    cache.put(&digest, &component);
                }
                component
            }
        };
        check_imports(&component, engine)?;
        let pre = self.inner.linker.instantiate_pre(&component).map_err(GuestError::Link)?;
        Guest::new(self.clone(), pre, digest, from_cache)
    }

    /// A store for one instance, if fewer than `max_instances` are alive.
    pub(super) fn store(&self) -> Result<Store<CallState>, GuestError> {
        let max = self.inner.config.max_instances.max(1);
        let slot = Slot::take(&self.inner.live, max).ok_or(GuestError::NoCapacity(max))?;
        let limits =
            StoreLimitsBuilder::new().memory_size(self.inner.config.memory_bytes).trap_on_grow_failure(true).build();
        let state = CallState {
            limits,
            stderr: Vec::new(),
            stderr_limit: STDERR_BYTES,
            ticks_used: 0,
            tick_budget: ticks(self.inner.config.deadline),
            deadline: self.inner.config.deadline,
            _slot: slot,
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limits);
        // Runs when a guest call is still running at a tick: count the
        // tick, and trap once the budget is spent. A tick is counted once
        // however late it is noticed, so time the thread spends descheduled
        // (a busy machine) is not charged to the guest as running time.
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            state.ticks_used += 1;
            if state.ticks_used >= state.tick_budget {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Continue(1))
            }
        });
        Ok(store)
    }
}

/// Starts the budget for one guest call, which runs until the returned
/// guard is dropped.
pub(super) fn arm(store: &mut Store<CallState>) -> InGuest {
    store.data_mut().ticks_used = 0;
    store.set_epoch_deadline(1);
    InGuest::enter()
}

/// This thread is in a guest call while one of these lives: the ticker
/// then keeps its 1 ms pace. One flag per thread, written only by its
/// thread (no cache line shared between workers on every call), read by
/// the ticker at each wake-up.
#[must_use = "the guest call runs while the guard lives"]
pub(super) struct InGuest(PhantomData<*const ()>); // not Send: cleared on the thread that set it

/// The flags of every thread that has made a guest call.
static THREAD_FLAGS: Mutex<Vec<Weak<AtomicBool>>> = Mutex::new(Vec::new());

thread_local! {
    static IN_GUEST: Arc<AtomicBool> = {
        let flag = Arc::new(AtomicBool::new(false));
        THREAD_FLAGS.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::downgrade(&flag));
        flag
    };
}

impl InGuest {
    fn enter() -> InGuest {
        IN_GUEST.with(|flag| flag.store(true, Ordering::Relaxed));
        InGuest(PhantomData)
    }

    /// Some thread is in a guest call now. Relaxed is enough: a flag read
    /// late costs at most one slower tick.
    fn anywhere() -> bool {
        let mut flags = THREAD_FLAGS.lock().unwrap_or_else(|e| e.into_inner());
        flags.retain(|flag| flag.strong_count() > 0); // threads that ended
        flags.iter().filter_map(Weak::upgrade).any(|flag| flag.load(Ordering::Relaxed))
    }
}

impl Drop for InGuest {
    fn drop(&mut self) {
        // `try_with`: a guard dropped while its thread's locals are torn
        // down has nobody left to tell.
        let _ = IN_GUEST.try_with(|flag| flag.store(false, Ordering::Relaxed));
    }
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

/// The ticks a guest call may run through.
fn ticks(deadline: Duration) -> u64 {
    (deadline.as_micros() / TICK.as_micros()).max(1) as u64
}

/// The ticker's pace between guest calls.
fn idle_tick(deadline: Duration) -> Duration {
    (deadline / 4).clamp(TICK, IDLE_TICK)
}

/// Ticks the engine's epoch every [`TICK`] while a guest call is running,
/// every [`IDLE_TICK`] (or a quarter of the deadline) between calls, and
/// not at all (parked) while no instance is alive; ends with the sandbox.
fn spawn_epoch_ticker(engine: &Engine, instances: Arc<Instances>, deadline: Duration) -> std::thread::Thread {
    let engine = engine.weak();
    let idle_tick = idle_tick(deadline);
    let ticker = std::thread::Builder::new()
        .name("hotline-epoch".into())
        .spawn(move || {
            while instances.open.load(Ordering::Acquire) {
                if instances.count.load(Ordering::Acquire) == 0 {
                    // Woken by the first instance (`Slot::take`) or the
                    // sandbox's end (`Live::drop`).
                    std::thread::park();
                    continue;
                }
                let Some(engine) = engine.upgrade() else { return };
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(if InGuest::anywhere() { TICK } else { idle_tick });
            }
        })
        .expect("spawn epoch ticker thread");
    ticker.thread().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn here() -> bool {
        IN_GUEST.with(|flag| flag.load(Ordering::Relaxed))
    }

    #[test]
    fn a_guest_call_in_progress_is_seen_from_the_ticker_until_it_ends() {
        let call = InGuest::enter();
        assert!(here());
        assert!(InGuest::anywhere(), "the ticker must keep its 1 ms pace");
        drop(call);
        assert!(!here(), "a guard that ended leaves its thread's flag down");
        // Threads that made guest calls and ended are forgotten.
        std::thread::spawn(|| drop(InGuest::enter())).join().unwrap();
        InGuest::anywhere();
        let flags = THREAD_FLAGS.lock().unwrap();
        assert!(flags.iter().all(|flag| flag.strong_count() > 0), "a dead thread's flag is kept");
    }

    #[test]
    fn between_guest_calls_the_ticker_slows_to_a_quarter_of_the_deadline_up_to_5_ms() {
        assert_eq!(idle_tick(Duration::from_millis(20)), Duration::from_millis(5));
        assert_eq!(idle_tick(Duration::from_secs(10)), IDLE_TICK);
        assert_eq!(idle_tick(Duration::from_millis(5)), Duration::from_micros(1250));
        assert_eq!(idle_tick(Duration::from_millis(2)), TICK, "never faster than the tick");
    }
}
