//! What a call does once its guest is beyond help (it failed again after
//! its one recovery, or could not be recovered): a short apology from the
//! host, then a clean close.

use std::time::Duration;

use futures_util::SinkExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tracing::info;

use super::{Call, Flow};
use crate::twilio::messages::Inbound;

/// "Sorry, something went wrong. Please call again." (μ-law, 8 kHz).
pub static APOLOGY: &[u8] = include_bytes!("../assets/apology.ulaw");
const APOLOGY_MARK: &str = "hotline-apology";
/// Time the apology's mark gets to come back after the audio's length.
const APOLOGY_GRACE: Duration = Duration::from_secs(2);

impl<S: AsyncRead + AsyncWrite + Unpin> Call<S> {
    /// Drops whatever the guest had queued, plays the host's apology, and
    /// closes once it has been heard (or a little after it should have been).
    pub(super) async fn apologize(&mut self) -> Flow {
        info!(event = "apology");
        self.note("apology", &[]);
        if let Flow::Gone = self.send_clear().await {
            return Flow::Gone;
        }
        if let Flow::Gone = self.send_audio(APOLOGY).await {
            return Flow::Gone;
        }
        if let Flow::Gone = self.send_mark(APOLOGY_MARK.into()).await {
            return Flow::Gone;
        }
        if let Flow::Gone = super::effects::written(self.ws.flush()).await {
            return Flow::Gone;
        }
        let playing = Duration::from_millis(APOLOGY.len() as u64 / 8);
        self.ending = Some(tokio::time::Instant::now() + playing + APOLOGY_GRACE);
        Flow::Continue
    }

    /// While the apology plays, only its mark (or the caller leaving) matters.
    pub(super) fn while_apologizing(&mut self, inbound: Inbound) -> Flow {
        match inbound {
            Inbound::Mark { mark, .. } if mark.name == APOLOGY_MARK => {
                Flow::Close(CloseCode::Error, "call logic failed")
            }
            Inbound::Stop { .. } => Flow::Close(CloseCode::Normal, "stream stopped"),
            _ => Flow::Continue,
        }
    }
}
