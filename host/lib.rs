//! hotline: a host for phone-call AI agents.
//!
//! The native host owns every socket, timer and outbound call; the call
//! logic runs in sandboxed WebAssembly components (see `wit/`) that only
//! ever turn events into effects. ARCHITECTURE.md has the map.

pub mod app;
pub mod bench;
pub mod cli;
pub mod config;
pub mod convert;
pub mod doctor;
pub mod fetch;
pub mod fleet;
pub mod http;
pub mod live;
pub mod media;
pub mod metrics;
pub mod scenario;
pub mod switchboard;
pub mod versions;

pub use hotline_providers as providers;
pub use hotline_sandbox as sandbox;
pub use hotline_sim as sim;
pub use hotline_store as store;
pub use hotline_twilio as twilio;
