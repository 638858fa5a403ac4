//! The call's side of the guest's `fetch`: the per-call cap on requests in
//! flight (`HOTLINE_GUEST_FETCH_MAX_IN_FLIGHT`), the policy's check, and the
//! request run as a lasting task of the call's work (`work.rs`): a `cancel`
//! (barge-in) does not abort it, since the fetch is the call logic's own,
//! not the turn's; the end of the call does. Every fetch is answered with
//! one `fetched`, through the work channel, never from inside the guest's
//! own dispatch.

use tokio::io::{AsyncRead, AsyncWrite};
use tracing::warn;

use super::Call;
use crate::fetch::Outcome;
use crate::sandbox::wit::{Event, FetchError, Fetched, HttpRequest};

impl<S: AsyncRead + AsyncWrite + Unpin> Call<S> {
    pub(super) fn fetch(&mut self, request: HttpRequest) {
        let id = request.id;
        let max = self.calls.fetch.policy().max_in_flight;
        let checked = if self.work.lasting_in_flight() >= max {
            let reason = format!("{max} requests in flight already (HOTLINE_GUEST_FETCH_MAX_IN_FLIGHT)");
            warn!(event = "guest_fetch_refused", id, reason);
            Err(FetchError::Refused(reason))
        } else {
            self.calls.fetch.check(request)
        };
        match checked {
            Err(error) => {
                self.calls.metrics.guest_fetch(Outcome::Refused);
                self.work.report(Event::Fetched(Fetched { id, response: Err(error) }));
            }
            Ok(checked) => {
                let calls = self.calls.clone();
                self.work.spawn_lasting(async move {
                    let response = calls.fetch.perform(checked).await;
                    calls.metrics.guest_fetch(Outcome::of(&response));
                    Event::Fetched(Fetched { id, response })
                });
            }
        }
    }
}
