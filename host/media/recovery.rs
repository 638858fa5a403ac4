//! What a call does when its guest fails: one recovery from the last good
//! snapshot, then a short apology from the host and a clean close.
//!
//! Snapshots are taken every `SNAPSHOT_EVERY` events (about half a second of
//! audio), so a recovered call loses at most that much of its guest's
//! state; the event that trapped is skipped, since replaying it would most
//! likely trap again.

use futures_util::SinkExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tracing::{error, info, warn};

use super::{Call, Flow};
use crate::guest::GuestError;
use crate::twilio::messages::{Inbound, Mark, Outbound};

/// Events between two recovery snapshots (25 media frames = 0.5 s).
const SNAPSHOT_EVERY: u32 = 25;
/// "Sorry, something went wrong. Please call again." (μ-law, 8 kHz).
static APOLOGY: &[u8] = include_bytes!("../assets/apology.ulaw");
const APOLOGY_MARK: &str = "hotline-apology";

impl<S: AsyncRead + AsyncWrite + Unpin> Call<S> {
    /// Refreshes the recovery snapshot when it is due.
    pub(super) async fn keep_snapshot(&mut self) {
        self.events_since_snapshot += 1;
        if self.last_snapshot.is_some() && self.events_since_snapshot < SNAPSHOT_EVERY {
            return;
        }
        let Some(session) = self.session.as_mut() else { return };
        match session.snapshot().await {
            Ok(snapshot) => {
                self.last_snapshot = Some(snapshot);
                self.events_since_snapshot = 0;
            }
            Err(e) => warn!(event = "snapshot_failed", error = %e),
        }
    }

    /// Logs and counts the trap, then tries the call's one recovery.
    pub(super) async fn recover(&mut self, error: GuestError) -> bool {
        error!(event = "guest_trap", guest = self.version.digest(), error = %error);
        if let Some(rollback) = self.app.versions.report_trap(&self.version) {
            warn!(
                event = "guest_auto_rollback",
                from = rollback.from,
                to = rollback.to,
                traps = rollback.traps,
                window_secs = rollback.window_secs
            );
        }
        if self.recovered {
            return false;
        }
        self.recovered = true;
        let Some(snapshot) = self.last_snapshot.as_ref() else {
            warn!(event = "guest_recovery_failed", reason = "no snapshot yet");
            return false;
        };
        match self.version.guest.restore(snapshot).await {
            Ok(session) => {
                self.session = Some(session);
                info!(event = "guest_recovered", snapshot_bytes = snapshot.len());
                true
            }
            Err(e) => {
                warn!(event = "guest_recovery_failed", error = %e);
                false
            }
        }
    }

    /// Drops whatever the guest had queued, plays the host's apology, and
    /// closes once it has been heard (or a little after it should have been).
    pub(super) async fn apologize(&mut self) -> Flow {
        info!(event = "apology");
        let clear = Outbound::Clear { stream_sid: self.stream_sid.clone() };
        if let Flow::Gone = self.send(&clear).await {
            return Flow::Gone;
        }
        if let Flow::Gone = self.send_audio(APOLOGY).await {
            return Flow::Gone;
        }
        let mark = Outbound::Mark { stream_sid: self.stream_sid.clone(), mark: Mark { name: APOLOGY_MARK.into() } };
        if let Flow::Gone = self.send(&mark).await {
            return Flow::Gone;
        }
        if self.ws.flush().await.is_err() {
            return Flow::Gone;
        }
        let playing = std::time::Duration::from_millis(APOLOGY.len() as u64 / 8);
        self.ending = Some(tokio::time::Instant::now() + playing + std::time::Duration::from_secs(2));
        Flow::Continue
    }

    /// While the apology plays, only its mark (or the caller leaving) matters.
    pub(super) fn while_apologizing(&mut self, inbound: Inbound) -> Flow {
        match inbound {
            Inbound::Mark { mark, .. } if mark.name == APOLOGY_MARK => Flow::Close(CloseCode::Error, "call logic failed"),
            Inbound::Stop { .. } => Flow::Close(CloseCode::Normal, "stream stopped"),
            _ => Flow::Continue,
        }
    }
}
