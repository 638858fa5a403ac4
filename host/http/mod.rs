//! The HTTP side: one hyper listener on `$PORT` serving health, readiness,
//! version, Twilio webhooks and the Media Streams WebSocket upgrade.
//!
//! - `server.rs`: bind, first guest load, accept loop, drain.
//! - `routes.rs`: one function per route; `admin.rs`: the admin API;
//!   `api.rs`: the call records' read API (same token), live calls and
//!   stats; `recording.rs`: a call's WAV by byte range; `dial.rs`:
//!   outbound calls through Twilio's REST API; `session.rs`: who
//!   may use them (bearer token or sign-in cookie); `dashboard.rs`: the
//!   web app at `/app/` (built from `ui/`, embedded); `observe.rs`:
//!   `/metrics`' scrape and `/api/live`'s events, read from `App`.
//! - `error.rs`: `AppError`, every failure's status, body and log event.
//! - `respond.rs`: response builders and size-limited body readers.
//! - `ws.rs`: the WebSocket handshake; `gather.rs`: a call socket's
//!   writes, gathered until each flush.
//!
//! Who may connect and start calls (signatures, stream tokens, the public
//! URL, connection limits) is `admission/`, below `App`.

mod admin;
mod api;
mod control;
mod dashboard;
mod dial;
mod error;
mod gather;
mod observe;
mod recording;
mod respond;
mod routes;
mod server;
pub mod session;
mod ws;

pub use server::{Server, serve};
