//! Twilio's side of the call: WebSocket frames decoded into guest events.
//! Bad input is logged and skipped; a peer that keeps sending it is not
//! Twilio and is cut off.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{Span, error, info, warn};

use super::record::{Field, Recorder};
use super::{Call, Flow, transfer};
use crate::convert::Convert;
use crate::sandbox::wit::{self, Event};
use crate::twilio::messages::{Frame, Inbound};
use crate::twilio::params;

/// A peer that keeps sending garbage is not Twilio; stop listening to it.
const MAX_BAD_FRAMES: u32 = 100;
/// Bad frames of one call that get a log line each.
const LOGGED_BAD_FRAMES: u32 = 10;

impl<S: AsyncRead + AsyncWrite + Unpin> Call<S> {
    pub(super) async fn on_frame(&mut self, msg: Option<Result<Message, WsError>>) -> Flow {
        match msg {
            None => {
                info!(event = "ws_gone", reason = "connection ended without a close frame");
                Flow::Gone
            }
            Some(Err(WsError::Capacity(e))) => {
                warn!(event = "ws_frame_too_large", error = %e);
                Flow::Close(CloseCode::Size, "message too big")
            }
            Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => {
                info!(event = "ws_gone", reason = "reset without a close frame");
                Flow::Gone
            }
            Some(Err(WsError::Utf8(e))) => {
                warn!(event = "ws_protocol_error", error = %e);
                Flow::Close(CloseCode::Invalid, "text frame is not UTF-8")
            }
            Some(Err(WsError::Protocol(e))) => {
                warn!(event = "ws_protocol_error", error = %e);
                Flow::Close(CloseCode::Protocol, "protocol error")
            }
            Some(Err(e)) => {
                info!(event = "ws_gone", error = %e);
                Flow::Gone
            }
            Some(Ok(Message::Text(text))) => self.on_text(text.as_str()).await,
            Some(Ok(Message::Binary(_))) => self.bad_frame("binary frame (Twilio sends JSON text)"),
            Some(Ok(Message::Close(frame))) => {
                let code = frame.as_ref().map(|f| u16::from(f.code));
                info!(event = "ws_close_received", code);
                if let Some(record) = &mut self.record {
                    record.peer_close_code = code;
                }
                Flow::PeerClosed
            }
            Some(Ok(_)) => Flow::Continue, // ping/pong: tungstenite answers pings itself
        }
    }

    async fn on_media(&mut self, timestamp_ms: u64, payload: &str) -> Flow {
        if !self.guest.is_live() {
            return self.bad_frame("media before start");
        }
        let payload = match base64_simd::STANDARD.decode_to_vec(payload) {
            Ok(p) => p,
            Err(e) => return self.bad_frame(&format!("bad base64 in media: {e}")),
        };
        self.stats.frames_in += 1;
        // The end of this frame (8 samples a millisecond), as the guest counts.
        self.media_ms = timestamp_ms + (payload.len() / 8) as u64;
        self.tape_caller(timestamp_ms, &payload);
        self.work.media(&payload);
        self.dispatch(Event::Media(wit::Media { payload, timestamp_ms })).await
    }

    /// A frame that is malformed, out of place or useless. Logged for the
    /// first few of a call (the close and `ws_closed` give the count), so
    /// a peer cannot turn frames into log volume; past the limit the peer
    /// is cut off.
    pub(super) fn bad_frame(&mut self, reason: &str) -> Flow {
        self.stats.bad_frames += 1;
        self.calls.metrics.bad_frame();
        if self.stats.bad_frames <= LOGGED_BAD_FRAMES {
            warn!(event = "ws_bad_frame", reason, count = self.stats.bad_frames);
        }
        if self.stats.bad_frames >= MAX_BAD_FRAMES {
            warn!(event = "ws_bad_frame", reason, count = self.stats.bad_frames, "too many: closing");
            return Flow::Close(CloseCode::Policy, "too many malformed frames");
        }
        Flow::Continue
    }

    async fn on_text(&mut self, text: &str) -> Flow {
        match Frame::parse(text) {
            // While the apology plays, only its mark or a stop matter.
            Ok(Frame::Media { .. }) if self.ending.is_some() => Flow::Continue,
            Ok(Frame::Media { timestamp, payload }) => self.on_media(timestamp, payload).await,
            // Boxed: the other events come a few times a call, and handling
            // them (`start` above all) needs more future than a media frame;
            // in line, every call's task would be that much bigger.
            Ok(Frame::Other(inbound)) => Box::pin(self.on_event(inbound)).await,
            Err(e) => self.bad_frame(&format!("bad JSON: {e}")),
        }
    }

    async fn on_event(&mut self, inbound: Inbound) -> Flow {
        if self.ending.is_some() {
            return self.while_apologizing(inbound);
        }
        match inbound {
            Inbound::Connected { protocol, version } => {
                if std::mem::replace(&mut self.stats.connected, true) {
                    return self.bad_frame("second connected");
                }
                info!(event = "ws_connected", protocol = protocol.as_deref(), version = version.as_deref());
                Flow::Continue
            }
            Inbound::Start { stream_sid, mut start } => {
                if self.guest.is_live() || self.stopped {
                    return self.bad_frame("second start");
                }
                let span = Span::current();
                span.record("call_sid", start.call_sid.as_str());
                span.record("stream_sid", stream_sid.as_str());
                // The token is the host's business: the guest never sees it.
                let token = start.custom_parameters.remove(params::TOKEN);
                if let Err(reason) =
                    self.calls.stream_tokens.verify(token.as_deref(), &start.call_sid, std::time::SystemTime::now())
                {
                    warn!(event = "stream_rejected", reason = reason.name());
                    return Flow::Close(CloseCode::Policy, "stream not authorized");
                }
                // What the webhook put beside the token: for the guest, and masked for the record.
                let from = start.custom_parameters.remove(params::FROM);
                let to = start.custom_parameters.remove(params::TO);
                let shown = |n: &Option<String>| n.as_deref().map(|n| self.calls.records.shown(n));
                let (shown_from, shown_to) = (shown(&from), shown(&to));
                let direction = start.custom_parameters.remove(params::DIRECTION);
                let direction = params::direction_of(direction.as_deref().unwrap_or(""));
                // A caller back from a transfer nobody answered (`http/control.rs`):
                // the switchboard may hold the call's snapshot and its record so far.
                let returning = start.custom_parameters.remove(params::TRANSFER);
                let mut back = returning.as_ref().and_then(|_| self.calls.switchboard.returning(&start.call_sid));
                let format = start.media_format.as_ref();
                info!(
                    event = "ws_start",
                    tracks = start.tracks.join(","),
                    encoding = format.map(|f| f.encoding.as_str()),
                    sample_rate = format.map(|f| f.sample_rate),
                    channels = format.map(|f| f.channels),
                );
                let started = self.guest.start(&self.calls);
                if self.calls.records.enabled() {
                    let digest = self.guest.digest();
                    let record = match back.as_mut().and_then(|b| b.record.take()) {
                        // One phone call, one record: this stream continues the first's.
                        Some(held) => Recorder::resume(held, digest),
                        None => {
                            let numbers = (shown_from.clone(), shown_to.clone());
                            Recorder::start(&start.call_sid, &stream_sid, direction, numbers, digest)
                        }
                    };
                    self.record = Some(Box::new(record));
                }
                if let Err(e) = started {
                    error!(event = e.event(), error = %e);
                    return Flow::Close(CloseCode::Again, "no capacity for the call");
                }
                self.stream_sid = stream_sid.clone();
                self.call_sid = start.call_sid.clone();
                self.live_start(&start.call_sid, direction, shown_from, shown_to);
                self.tape_start(&start.call_sid);
                self.note("ws_start", &[]);
                // Only calls we placed get answering-machine verdicts.
                if direction == "outbound" {
                    self.signals = Some(Box::new(self.calls.switchboard.register(&start.call_sid)));
                }
                let started = wit::Started {
                    stream_sid,
                    call_sid: start.call_sid,
                    custom_parameters: start.custom_parameters.into_iter().collect(),
                    config: wit::Config::from(&*self.calls.config),
                    direction: direction.convert(),
                    from: from.unwrap_or_default(),
                    to: to.unwrap_or_default(),
                };
                match returning {
                    Some(status) => Box::pin(self.returned(started, &status, back)).await,
                    None => self.dispatch(Event::Started(started)).await,
                }
            }
            Inbound::Media { media, .. } => self.on_media(media.timestamp, &media.payload).await,
            Inbound::Dtmf { dtmf, .. } => {
                let mut chars = dtmf.digit.chars();
                match (chars.next(), chars.next(), self.guest.is_live()) {
                    (Some(digit), None, true) => {
                        info!(event = "dtmf", digit = %digit);
                        self.note("dtmf", &[("digit", Field::Char(digit))]);
                        self.dispatch(Event::Dtmf(digit)).await
                    }
                    (_, _, false) => self.bad_frame("dtmf before start"),
                    _ => self.bad_frame("dtmf digit is not one character"),
                }
            }
            Inbound::Mark { mark, .. } => {
                if !self.guest.is_live() {
                    return self.bad_frame("mark before start");
                }
                // Twilio echoes each mark once: more is not Twilio.
                if self.stats.marks_acked >= self.stats.marks_sent {
                    return self.bad_frame("mark never sent");
                }
                self.stats.marks_acked += 1;
                if self.work.mark_played(&mark.name) {
                    return Flow::Continue;
                }
                info!(event = "mark_ack", name = mark.name);
                self.note("mark_ack", &[("name", Field::Str(&mark.name))]);
                if mark.name == transfer::TRANSFER_MARK && self.transfer.is_some() {
                    return self.hand_over().await;
                }
                self.live_mark_played();
                self.dispatch(Event::MarkPlayed(mark.name)).await
            }
            Inbound::Stop { .. } => {
                info!(event = "ws_stop");
                self.note("ws_stop", &[]);
                match self.dispatch_stopped().await {
                    Flow::Continue => Flow::Close(CloseCode::Normal, "stream stopped"),
                    other => other,
                }
            }
            // An event Twilio added would be skipped harmlessly; a stream of
            // them is not Twilio, and counts toward the bad-frame limit.
            Inbound::Unknown => self.bad_frame("unknown event"),
        }
    }
}
