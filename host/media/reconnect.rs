//! A call's provider socket, opened again when it drops: a pause before each
//! attempt (`RECONNECT_DELAYS`), the attempts in a row and, when they all
//! fail, a while (`DOWN_FOR`) without any. The streaming speech-to-text
//! (`listen.rs`) and the realtime agent (`realtime.rs`) both reconnect
//! through it, and read their sockets through it; what each sends again on
//! a new socket, and what its log lines say, stays with it.

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use crate::providers::ProviderError;
use crate::providers::streaming::Socket;

/// Reconnect attempts in a row, and the pause before each.
const RECONNECT_DELAYS: [Duration; 3] = [Duration::ZERO, Duration::from_millis(250), Duration::from_secs(1)];
/// After a run of failed attempts, no new one before this.
const DOWN_FOR: Duration = Duration::from_secs(5);

/// One call's socket's reconnects.
#[derive(Default)]
pub struct Reconnect {
    /// No attempt before this (after a run of failed ones).
    down_until: Option<Instant>,
}

/// What [`Reconnect::open`] came to.
pub enum Opened<T> {
    /// Connected, at this attempt (0: the first).
    Open { socket: T, attempt: usize },
    /// Every attempt failed: none again for `DOWN_FOR`.
    GaveUp,
    /// Still down after a run that failed: nothing was tried.
    Down,
}

impl Reconnect {
    /// Opens a socket with `connect`, up to the attempts, `failed` told of
    /// each one that fails (its number, the error: the caller's log line).
    pub async fn open<T, F>(
        &mut self,
        mut connect: impl FnMut() -> F,
        failed: impl Fn(usize, &ProviderError),
    ) -> Opened<T>
    where
        F: Future<Output = Result<T, ProviderError>>,
    {
        if self.down_until.is_some_and(|until| Instant::now() < until) {
            return Opened::Down;
        }
        for (attempt, delay) in RECONNECT_DELAYS.iter().enumerate() {
            tokio::time::sleep(*delay).await;
            match connect().await {
                Ok(socket) => {
                    self.down_until = None;
                    return Opened::Open { socket, attempt };
                }
                Err(e) => failed(attempt, &e),
            }
        }
        self.down_until = Some(Instant::now() + DOWN_FOR);
        Opened::GaveUp
    }
}

/// What one read of a provider's socket says to a call.
pub enum Read {
    Text(Utf8Bytes),
    /// Nothing for the call (a ping, a pong, binary).
    Nothing,
    /// The socket is gone, and why: reconnect.
    Lost(String),
}

/// The next message of `socket`; with no socket, never.
pub async fn next(socket: Option<&mut Socket>) -> Read {
    let Some(socket) = socket else { return std::future::pending().await };
    read(socket.next().await)
}

fn read(message: Option<Result<Message, WsError>>) -> Read {
    match message {
        Some(Ok(Message::Text(text))) => Read::Text(text),
        Some(Ok(Message::Close(frame))) => Read::Lost(format!("closed by the provider: {frame:?}")),
        Some(Ok(_)) => Read::Nothing,
        Some(Err(e)) => Read::Lost(e.to_string()),
        None => Read::Lost("connection ended".into()),
    }
}
