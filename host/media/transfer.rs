//! The guest's `transfer` and the caller's return. A transfer waits for
//! everything played before it to be heard (a mark of the host's own, which
//! Twilio echoes once the audio before it has played), then snapshots the
//! session, leaves the transfer with the switchboard and ends the stream;
//! Twilio asks `/webhook/stream_ended` what next and gets `<Dial>`
//! (`http/control.rs`). When nobody answers and the fallback is the agent,
//! the caller comes back on a new stream whose session continues from that
//! snapshot and hears `transfer-failed`. The call's record goes the same
//! way: the first stream's waits on the switchboard (`media/mod.rs`), and
//! the returning stream continues it (`inbound.rs`).

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tracing::{info, warn};

use super::record::Field;
use super::switchboard::Returning;
use super::{Call, Flow};
use crate::config::{is_phone_target, is_transfer_target};
use crate::sandbox::wit;

/// The host's own mark: the transfer goes ahead when Twilio echoes it. The
/// guest never sees it.
pub(super) const TRANSFER_MARK: &str = "hotline-transfer";
/// The close reason of a stream ended for a transfer (`record::outcome_of_close`).
pub const TRANSFERRED: &str = "call transferred";

impl<S: AsyncRead + AsyncWrite + Unpin> Call<S> {
    /// The `transfer` effect: refused at once if it cannot be dialled,
    /// otherwise under way once what was played has been heard.
    pub(super) async fn begin_transfer(&mut self, transfer: wit::Transfer) -> Flow {
        let refusal = if !is_transfer_target(&transfer.target) {
            Some("target is not an E.164 number or a sip: URI")
        } else if transfer.caller_id.as_deref().is_some_and(|c| !is_phone_target(c)) {
            Some("caller-id is not an E.164 number")
        } else if self.transfer.is_some() {
            Some("a transfer is already under way")
        } else {
            None
        };
        let target = self.calls.records.shown(&transfer.target);
        if let Some(reason) = refusal {
            warn!(event = "transfer_refused", target, reason);
            self.note("transfer_refused", &[("reason", Field::Str(reason))]);
            let failed = wit::TransferFailed { target: transfer.target, status: wit::DialStatus::Failed };
            self.work.report(wit::Event::TransferFailed(failed));
            return Flow::Continue;
        }
        info!(event = "transfer_requested", target);
        self.note("transfer_requested", &[("target", Field::Str(&target))]);
        self.transfer = Some(Box::new(transfer));
        self.send_mark(TRANSFER_MARK.into()).await
    }

    /// Twilio echoed the transfer's mark: the caller heard the agent's last
    /// words. The session's snapshot is kept for a return, and the stream ends.
    pub(super) async fn hand_over(&mut self) -> Flow {
        let Some(transfer) = self.transfer.take() else { return Flow::Continue };
        let snapshot = self.guest.snapshot();
        let control = &self.calls.config.control;
        let keep = control.transfer_timeout;
        let target = transfer.target;
        info!(event = "transfer_started", target = self.calls.records.shown(&target), snapshot = snapshot.is_some());
        self.note("transfer_started", &[("snapshot", Field::Bool(snapshot.is_some()))]);
        self.calls.switchboard.transfer_begins(&self.call_sid, target, transfer.caller_id, snapshot, keep);
        Flow::Close(CloseCode::Normal, TRANSFERRED)
    }

    /// The first events of a stream that brings a caller back after a
    /// transfer nobody answered (`back`, taken from the switchboard at its
    /// start): the session restored from the transfer's snapshot hears
    /// `transfer-failed`; without one (expired, or kept by another
    /// instance) a fresh session hears `started`, then `transfer-failed`.
    pub(super) async fn returned(&mut self, started: wit::Started, status: &str, back: Option<Returning>) -> Flow {
        let status = crate::convert::dial_status(status).unwrap_or(wit::DialStatus::Failed);
        let (target, snapshot) = back.map_or((String::new(), None), |b| (b.target, b.snapshot));
        let failed = wit::Event::TransferFailed(wit::TransferFailed { target, status });
        if let Some(snapshot) = snapshot {
            match self.guest.resume(&self.calls, snapshot) {
                Ok(()) => {
                    self.note_return(true);
                    return self.dispatch(failed).await;
                }
                Err(e) => warn!(event = "transfer_resume_failed", error = %e),
            }
        }
        self.note_return(false);
        match self.dispatch(wit::Event::Started(started)).await {
            Flow::Continue => self.dispatch(failed).await,
            other => other,
        }
    }

    /// The caller is back; `resumed` says whether the session was restored.
    /// The record keeps the first stream's SID: this stream's is here.
    fn note_return(&mut self, resumed: bool) {
        info!(event = "transfer_returned", resumed);
        let stream_sid = self.stream_sid.clone();
        self.note("transfer_returned", &[("stream_sid", Field::Str(&stream_sid)), ("resumed", Field::Bool(resumed))]);
    }
}
