//! The one integration-test binary. Every test runs real code: real
//! components in the sandbox, a real server on an ephemeral port, real
//! sockets and WebSocket frames. Nothing here touches the internet.

mod audio;
mod cache;
mod calls;
mod config;
mod contract;
mod control;
mod doctor;
mod fetch;
mod fleet;
mod floors;
mod guest;
mod http;
mod limits;
mod live;
mod metrics;
mod mocks;
mod postgres;
mod providers;
mod realtime_agent;
mod robustness;
mod scenarios;
mod security;
mod shutdown;
mod snapshots;
mod store;
mod streaming;
mod streaming_openai;
mod support;
mod swap;
mod tidy;
mod transfer;
mod ui;
