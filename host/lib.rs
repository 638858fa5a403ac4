//! hotline's server: the composition root (`app`) and what only a running
//! server has (its settings, the HTTP listener and routes, the calls, guest
//! versions and the fleet, the live list, metrics).
//!
//! The native host owns every socket, timer and outbound call; the call
//! logic runs in sandboxed WebAssembly components (see `wit/`) that only
//! ever turn events into effects. The floors below it are crates of their
//! own, re-exported here under the module names the server has always used
//! for them; the command line and its tools (`hotline call`, `doctor`,
//! `bench`) are the `hotline` crate above it. ARCHITECTURE.md has the map.

pub mod admission;
pub mod app;
pub mod config;
pub mod convert;
pub mod fetch;
pub mod fleet;
pub mod http;
pub mod live;
pub mod media;
pub mod metrics;
pub mod scenario;
pub mod versions;

pub use hotline_providers as providers;
pub use hotline_sandbox as sandbox;
pub use hotline_sim as sim;
pub use hotline_store as store;
pub use hotline_twilio as twilio;
