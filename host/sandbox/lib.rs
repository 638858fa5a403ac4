//! The sandbox that runs call logic: the only crate that names wasmtime
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
//! - `wit/`: the contract's bindings, one module per version with its
//!   adapter. It knows no host configuration and no providers: the
//!   conversions between those and the contract's types are the host's
//!   (`host/convert.rs`).

mod cache;
mod engine;
mod guest;
mod wasi;
pub mod wit;

pub use engine::{Sandbox, SandboxConfig};
pub use guest::{Guest, GuestError, Session, digest_of};
