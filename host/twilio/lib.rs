//! Twilio's side of the wire: Media Streams messages, webhook forms and
//! signatures, the stream token and the stream's other parameters, the
//! REST API for call control (with its settings), and the TwiML the host
//! writes itself. It knows nothing of calls, guests or the server.

pub mod form;
pub mod messages;
pub mod params;
pub mod rest;
mod scan;
pub mod settings;
pub mod signature;
pub mod stream_token;
pub mod twiml;

/// The WebSocket subprotocol Media Streams offers and expects echoed (a
/// missing echo is Twilio error 31920).
pub const SUBPROTOCOL: &str = "audio.twilio.com";
