//! The call's entry in the dashboard's live list (`crate::live`): created
//! at a valid `start`, changed on the guest's effects, a mark's return, a
//! turn or another guest version, and removed when the call ends. Every
//! change is published only when it changes something, so a call costs
//! the registry a few updates per turn and none per media frame.

use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncWrite};

use super::Call;
use crate::live::{LiveCall, State};
use crate::store::record::{Outcome, unix_ms};

impl<S: AsyncRead + AsyncWrite + Unpin> Call<S> {
    /// The call started: it appears in the list, listening.
    pub(super) fn live_start(
        &mut self,
        call_sid: &str,
        direction: &'static str,
        from: Option<String>,
        to: Option<String>,
    ) {
        let call = LiveCall {
            call_sid: call_sid.to_string(),
            stream_sid: self.stream_sid.clone(),
            direction,
            from,
            to,
            started_at: unix_ms(SystemTime::now()),
            state: State::Listening,
            guest: self.guest.digest().to_string(),
            turns: 0,
        };
        self.calls.live.publish(&call);
        self.live = Some(Box::new(call));
    }

    /// What the agent now does.
    pub(super) fn live_state(&mut self, state: State) {
        self.live_change(|call| std::mem::replace(&mut call.state, state) != state);
    }

    /// A mark came back: once every mark sent has, the audio before them
    /// has played out. (A guest that plays audio without marks stays
    /// "speaking" until its next clear: marks are how a host learns what
    /// was heard.)
    pub(super) fn live_mark_played(&mut self) {
        if self.stats.marks_acked >= self.stats.marks_sent {
            self.live_state(State::Listening);
        }
    }

    pub(super) fn live_turn(&mut self) {
        self.live_change(|call| {
            call.turns += 1;
            true
        });
    }

    /// The call may run on another guest version now (a migration, a recovery).
    pub(super) fn live_guest(&mut self) {
        let Some(call) = self.live.as_deref_mut() else { return };
        let digest = self.guest.digest();
        if call.guest != digest {
            call.guest = digest.to_string();
            self.calls.live.publish(call);
        }
    }

    /// The call is over: it leaves the list.
    pub(super) fn live_end(&mut self, outcome: Outcome) {
        if let Some(call) = self.live.take() {
            let duration_ms = (unix_ms(SystemTime::now()) - call.started_at).max(0);
            self.calls.live.ended(&call.call_sid, outcome, duration_ms);
        }
    }

    /// Applies a change; publishes it if it says something changed.
    fn live_change(&mut self, change: impl FnOnce(&mut LiveCall) -> bool) {
        if let Some(call) = self.live.as_deref_mut()
            && change(call)
        {
            self.calls.live.publish(call);
        }
    }
}
