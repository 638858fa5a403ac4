//! What the default agent does about the phone call itself: the verdict of
//! answering-machine detection on a call it placed, and a transfer nobody
//! answered.

use super::tools::Ending;
use super::{Machine, State, log};
use crate::bindings::hotline::call::types::{AnsweredBy, DialStatus, Effect, TransferFailed};

/// Said to a caller back from a transfer nobody took.
pub const NOBODY_ANSWERED: &str =
    "I'm sorry, nobody could take your call right now. Is there anything else I can help you with?";

impl Machine {
    /// A machine's greeting: talking over it is talking to no one, so the
    /// agent stops and waits. After the beep: the voicemail message (with a
    /// voice and a message configured), then the hang-up; a fax: hang up.
    pub(super) fn on_answered_by(&mut self, verdict: AnsweredBy, fx: &mut Vec<Effect>) {
        fx.push(log("answered_by", &[("verdict", answered_by_name(verdict).into())]));
        if self.state == State::Ended || self.ending() {
            return;
        }
        match verdict {
            AnsweredBy::Human | AnsweredBy::Unknown => {}
            AnsweredBy::MachineStart => self.stop_talking(fx),
            AnsweredBy::MachineEndBeep | AnsweredBy::MachineEndSilence | AnsweredBy::MachineEndOther => {
                self.stop_talking(fx);
                let message = self.settings.voicemail_message.clone().filter(|_| self.settings.ai);
                fx.push(log("voicemail", &[("message", message.is_some().to_string())]));
                self.finish_with(message, Ending::Hangup, fx);
            }
            AnsweredBy::Fax => {
                self.stop_talking(fx);
                self.finish_with(None, Ending::Hangup, fx);
            }
        }
    }

    /// The session restored after a transfer nobody answered: say so and
    /// listen again; the conversation goes on where it was.
    pub(super) fn on_transfer_failed(&mut self, failed: TransferFailed, fx: &mut Vec<Effect>) {
        fx.push(log("transfer_failed", &[("status", dial_status_name(failed.status).into())]));
        if !self.settings.ai || self.state == State::Ended || self.ending() {
            return;
        }
        self.say_next(NOBODY_ANSWERED.into(), fx);
    }

    fn stop_talking(&mut self, fx: &mut Vec<Effect>) {
        if self.state != State::Listening {
            self.silence(fx);
        }
    }
}

fn answered_by_name(verdict: AnsweredBy) -> &'static str {
    match verdict {
        AnsweredBy::Human => "human",
        AnsweredBy::MachineStart => "machine_start",
        AnsweredBy::MachineEndBeep => "machine_end_beep",
        AnsweredBy::MachineEndSilence => "machine_end_silence",
        AnsweredBy::MachineEndOther => "machine_end_other",
        AnsweredBy::Fax => "fax",
        AnsweredBy::Unknown => "unknown",
    }
}

fn dial_status_name(status: DialStatus) -> &'static str {
    match status {
        DialStatus::Completed => "completed",
        DialStatus::Answered => "answered",
        DialStatus::Busy => "busy",
        DialStatus::NoAnswer => "no-answer",
        DialStatus::Failed => "failed",
        DialStatus::Canceled => "canceled",
    }
}
