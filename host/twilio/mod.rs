//! Twilio's side of the wire: Media Streams messages and webhook forms.

pub mod form;
pub mod messages;
pub mod signature;
pub mod stream_token;

/// The WebSocket subprotocol Media Streams offers and expects echoed (a
/// missing echo is Twilio error 31920).
pub const SUBPROTOCOL: &str = "audio.twilio.com";
