//! Twilio's side of the wire: Media Streams messages, webhook forms and
//! signatures, the stream token, and the REST API for call control.

pub mod form;
pub mod messages;
pub mod rest;
pub mod signature;
pub mod stream_token;

/// The WebSocket subprotocol Media Streams offers and expects echoed (a
/// missing echo is Twilio error 31920).
pub const SUBPROTOCOL: &str = "audio.twilio.com";
