//! The sandbox that runs call logic: the only module that names wasmtime
//! types. Everything outside sees [`Guest`] (a loaded, validated component),
//! [`Session`] (one call's instance) and the contract's plain data types,
//! always through [`wit`] (`sandbox::wit::Event`, `wit::Effect`...).
//!
//! - `engine.rs`: engine policy in one place (a bound on instances, a memory
//!   cap per instance, a deadline on every guest call, the import allowlist).
//! - `cache.rs`: compiled components kept on disk between runs.
//! - `guest.rs`: a loaded component and its per-call sessions.
//! - `wasi/`: the WASI a guest's std links against (empty environment,
//!   stderr kept for trap messages), synchronous, so guest calls need no fiber.
//! - `wit.rs`: the contract's bindings; `convert.rs`: every conversion
//!   between host types and the contract's.

mod cache;
mod convert;
mod engine;
mod guest;
mod wasi;
pub mod wit;

pub use convert::{answered_by, answered_by_name, dial_status};
pub use engine::{Sandbox, SandboxConfig};
pub use guest::{Guest, GuestError, Session, digest_of};

/// The built-in guest, compiled from `guest/default` by build.rs.
pub static DEFAULT_GUEST: &[u8] = include_bytes!(env!("HOTLINE_GUEST_DEFAULT_WASM"));
