//! A fake Twilio: the engine behind `hotline call` (`cli/call.rs`), the
//! integration tests and load runs. It posts the voice webhook, follows
//! the TwiML's `<Stream>`, streams a WAV as real-time 20 ms media frames,
//! plays the agent's audio back as a phone would, and reports a timeline.

mod call;
pub mod stream;
pub mod twiml;
pub mod wav;

pub use call::{CallOptions, CallReport, Moment, TimelineEntry, place_call, play};

/// Media-time gap between each caller EoU and the next reply start.
pub fn reply_latencies(report: &CallReport) -> Vec<f64> {
    let starts = report.at(|m| matches!(m, Moment::ReplyStart));
    report
        .at(|m| matches!(m, Moment::CallerEou))
        .into_iter()
        .filter_map(|eou| starts.iter().find(|&&s| s >= eou - 20.0).map(|s| s - eou))
        .collect()
}
