//! The `<Parameter>`s hotline adds to a `<Stream>` in the webhook's TwiML
//! and takes out of the `start` message again: one place for their names,
//! for the webhook that writes them and the call that reads them. None of
//! them reaches the guest as a custom parameter.

/// The per-call stream token (`stream_token.rs`).
pub const TOKEN: &str = "hotline_token";
/// The numbers and the direction, handed to the guest as `started`'s
/// fields (and to the record, masked unless `HOTLINE_MASK_NUMBERS=false`).
pub const FROM: &str = "hotline_from";
pub const TO: &str = "hotline_to";
pub const DIRECTION: &str = "hotline_direction";
/// On the stream that brings a caller back after a transfer nobody
/// answered: the dial's status.
pub const TRANSFER: &str = "hotline_transfer";

/// `inbound` or `outbound`, from the webhook's `Direction` (`inbound`,
/// `outbound-api`, `outbound-dial`).
pub fn direction_of(twilio_direction: &str) -> &'static str {
    if twilio_direction.starts_with("outbound") { "outbound" } else { "inbound" }
}
