//! Call control: what happens to the phone call when its stream ends.
//! Closing the WebSocket ends only the stream; Twilio then asks
//! `/webhook/stream_ended` what to do (`<Hangup/>`, `routes.rs`). When the
//! agent hung up and the REST API is configured, the call is also
//! completed by REST at once, so it ends even if the TwiML in use has no
//! `action` (a custom guest's) and the caller never hears silence.

use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{Instrument, info, warn};

use super::Call;
use crate::twilio::rest::CallUpdate;

impl<S: AsyncRead + AsyncWrite + Unpin> Call<S> {
    /// The agent hung up: end the phone call too (a task of its own, which
    /// a drain waits for).
    pub(super) fn complete_call(&self) {
        if self.calls.twilio.is_none() || self.call_sid.is_empty() {
            return;
        }
        let (calls, call_sid) = (self.calls.clone(), self.call_sid.clone());
        let completing = async move {
            let Some(rest) = &calls.twilio else { return };
            match rest.update_call(&call_sid, &CallUpdate::Complete).await {
                Ok(call) => info!(event = "call_completed", status = call.status),
                // Over already (the caller hung up first, or `stream_ended`'s
                // `<Hangup/>` won the race): nothing left to do.
                Err(e) if e.is_not_found() => info!(event = "call_completed", status = "gone"),
                Err(e) => warn!(event = "call_complete_failed", error = %e, class = e.class()),
            }
        };
        self.calls.tasks.spawn(completing.in_current_span());
    }
}
