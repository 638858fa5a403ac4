//! The HTTP side: one hyper listener on `$PORT` serving health, readiness,
//! version, Twilio webhooks and the Media Streams WebSocket upgrade.

mod admin;
mod base_url;
mod routes;
mod server;
mod ws;

pub use server::{Server, serve};
