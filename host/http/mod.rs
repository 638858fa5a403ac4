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
//! - `table.rs`: a router's routes as a table (each router has one; 405
//!   is derived from it); `endpoints()` lists them all.
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
mod table;
mod ws;

pub use server::{Server, serve};

/// Every route of every router's table, as `(method, path)`: what
/// `docs/endpoints.md` lists (a tidy test holds the two together). The
/// dashboard's `/app/...` serves any path under it and has no table.
pub fn endpoints() -> Vec<(&'static str, &'static str)> {
    fn rows<R>(table: &'static [table::Entry<R>]) -> impl Iterator<Item = (&'static str, &'static str)> {
        table.iter().map(|e| (e.method.as_str(), e.path))
    }
    rows(routes::ROUTES).chain(rows(admin::ROUTES)).chain(rows(api::ROUTES)).chain(rows(session::ROUTES)).collect()
}
