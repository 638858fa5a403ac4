//! The floor under every other crate of the host: small types the
//! settings of each floor are built from ([`Secret`], [`clamped`]) and the
//! one way a lock is taken ([`Lock`]). It depends on nothing of hotline.

mod lock;
mod secret;
mod settings;

pub use lock::Lock;
pub use secret::Secret;
pub use settings::clamped;
