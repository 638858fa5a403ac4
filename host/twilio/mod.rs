//! Twilio's side of the wire: Media Streams messages and webhook forms.

pub mod form;
pub mod messages;
