//! The one integration-test binary. Every test runs real code: real
//! components in the sandbox, a real server on an ephemeral port, real
//! sockets and WebSocket frames. Nothing here touches the internet.

mod audio;
mod guest;
mod support;
mod calls;
mod contract;
mod mocks;
mod providers;
mod http;
mod robustness;
mod shutdown;
mod swap;
mod scenarios;
mod snapshots;
mod tidy;
