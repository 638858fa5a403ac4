//! hotline's command line and its tools: `hotline serve` (the default),
//! `call`, `dial`, `doctor`, `bench`, `guest push|test|compile`. The server
//! is `hotline-server`; its modules and the floors' crates are re-exported
//! here under the names the tests and the tools use.

pub mod bench;
pub mod cli;
pub mod doctor;

pub use hotline_server::{
    app, config, convert, fetch, fleet, http, live, media, metrics, providers, sandbox, scenario, sim, store, twilio,
    versions,
};
