//! A call socket's writes, gathered until a flush and then let go.
//!
//! A reply is dozens of small WebSocket frames, written together and then
//! flushed: they should reach the socket in a few `write`s, not one each.
//! tungstenite can gather them, but in a buffer it keeps for the life of
//! the connection at the size of its biggest burst (~5 KiB in every live
//! call, most of which are silent at any moment). Here the codec writes
//! through at once, and this layer holds the bytes only from the first
//! write to the flush: an idle call holds no write buffer at all.
//!
//! Bounded: past [`HIGH_WATER`] unsent bytes, writes wait for the socket
//! (so the codec's own limit on unsent bytes still applies to a peer that
//! stops reading).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Unsent bytes held before a write has to go to the socket first: a
/// dozen media frames (~330 bytes each) per `write`.
const HIGH_WATER: usize = 4 * 1024;

pub struct GatherWrites<S> {
    inner: S,
    /// Bytes written and not yet sent; empty (unallocated) between flushes.
    held: Vec<u8>,
    /// How much of `held` has already been sent.
    sent: usize,
}

impl<S> GatherWrites<S> {
    pub fn new(inner: S) -> Self {
        Self { inner, held: Vec::new(), sent: 0 }
    }
}

impl<S: AsyncWrite + Unpin> GatherWrites<S> {
    /// Sends what is held; ready once all of it is with the socket. The
    /// buffer is kept for the rest of the burst.
    fn poll_send_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.held.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.held[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.held.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Sends what is held, then lets the buffer go: the burst is over, and
    /// the next may be minutes away.
    fn poll_end_burst(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send_held(cx))?;
        self.held = Vec::new();
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GatherWrites<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GatherWrites<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.held.len() >= HIGH_WATER {
            ready!(self.poll_send_held(cx))?;
        }
        let room = HIGH_WATER - self.held.len();
        let n = buf.len().min(room);
        self.held.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_end_burst(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_end_burst(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Counts the `write`s that reach it.
    struct Counting<S> {
        inner: S,
        writes: usize,
    }

    impl<S: AsyncWrite + Unpin> AsyncWrite for Counting<S> {
        fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
            self.writes += 1;
            Poll::Ready(Ok(n))
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }
        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    #[tokio::test]
    async fn small_writes_go_out_together_at_the_flush_in_order_and_the_buffer_is_let_go() {
        let (near, mut far) = tokio::io::duplex(1 << 16);
        let mut w = GatherWrites::new(Counting { inner: near, writes: 0 });
        let frames: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 300]).collect();
        for frame in &frames {
            w.write_all(frame).await.unwrap();
        }
        assert_eq!(w.inner.writes, 0, "nothing sent before the flush");
        w.flush().await.unwrap();
        assert_eq!(w.inner.writes, 1, "ten frames, one write");
        assert_eq!(w.held.capacity(), 0, "nothing held between bursts");
        let mut got = vec![0; 3000];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(got, frames.concat());
    }

    #[tokio::test]
    async fn a_long_burst_goes_out_at_the_high_water_mark_and_a_stalled_peer_blocks_the_writer() {
        // Room for 10 KiB in the pipe, then the peer reads nothing.
        let (near, mut far) = tokio::io::duplex(10 * 1024);
        let mut w = GatherWrites::new(Counting { inner: near, writes: 0 });
        let burst = vec![7u8; 9 * 1024];
        w.write_all(&burst).await.unwrap();
        assert!(w.inner.writes >= 2, "past the high-water mark, bytes go out before the flush");
        assert!(w.held.len() <= HIGH_WATER);
        assert!(w.held.capacity() >= HIGH_WATER, "within a burst the buffer is reused, not made again");
        // The pipe and the held bytes are full: a write must wait.
        let more = tokio::time::timeout(std::time::Duration::from_millis(100), w.write_all(&[1u8; 8 * 1024])).await;
        assert!(more.is_err(), "the writer waits for a stalled peer instead of holding more");
        assert!(w.held.len() <= HIGH_WATER, "held bytes stay bounded: {}", w.held.len());
        let mut got = vec![0; 9 * 1024];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(got, burst);
    }
}
