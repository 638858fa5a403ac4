//! Media Streams WebSocket messages as closed enums.
//!
//! Twilio sends numbers inside strings (`sequenceNumber`, `timestamp`,
//! `chunk`); the parsers accept either form.

use serde::{Deserialize, Deserializer, Serialize};

/// A JSON text frame from Twilio.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Inbound {
    Connected {
        #[serde(default)]
        protocol: Option<String>,
        #[serde(default)]
        version: Option<String>,
    },
    Start {
        #[serde(rename = "streamSid")]
        stream_sid: String,
        start: Start,
    },
    Media {
        #[serde(rename = "streamSid", default)]
        stream_sid: Option<String>,
        media: Media,
    },
    Dtmf {
        #[serde(rename = "streamSid", default)]
        stream_sid: Option<String>,
        dtmf: Dtmf,
    },
    Mark {
        #[serde(rename = "streamSid", default)]
        stream_sid: Option<String>,
        mark: Mark,
    },
    Stop {
        #[serde(rename = "streamSid", default)]
        stream_sid: Option<String>,
        #[serde(default)]
        stop: Option<Stop>,
    },
    /// Anything Twilio may add later. Logged and ignored.
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Start {
    pub stream_sid: String,
    #[serde(default)]
    pub account_sid: String,
    pub call_sid: String,
    #[serde(default)]
    pub tracks: Vec<String>,
    #[serde(default)]
    pub custom_parameters: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub media_format: Option<MediaFormat>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaFormat {
    pub encoding: String,
    pub sample_rate: u32,
    pub channels: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Media {
    #[serde(default)]
    pub track: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub chunk: u64,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub timestamp: u64,
    /// Base64 μ-law.
    pub payload: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Dtmf {
    #[serde(default)]
    pub track: Option<String>,
    pub digit: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Mark {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stop {
    #[serde(default)]
    pub account_sid: String,
    #[serde(default)]
    pub call_sid: String,
}

/// An inbound frame, with the common case (media, fifty times a second
/// per call) read without copying: its base64 payload borrowed from the
/// frame's text.
#[derive(Debug, PartialEq)]
pub enum Frame<'a> {
    Media { timestamp: u64, payload: &'a str },
    Other(Inbound),
}

impl<'a> Frame<'a> {
    /// Parses a text frame. A media frame in Twilio's shape is scanned in
    /// one pass (`scan.rs`); any other, into borrowed fields by `serde_json`
    /// when it can (no escapes), and anything else as an [`Inbound`].
    pub fn parse(text: &'a str) -> serde_json::Result<Frame<'a>> {
        match super::scan::media(text) {
            Some((timestamp, payload)) => Ok(Frame::Media { timestamp, payload }),
            None => Frame::parse_with_serde(text),
        }
    }

    /// [`Frame::parse`] without the scan: what the scan must agree with.
    pub(super) fn parse_with_serde(text: &'a str) -> serde_json::Result<Frame<'a>> {
        #[derive(Deserialize)]
        struct Peek<'a> {
            #[serde(borrow)]
            event: &'a str,
            #[serde(borrow, default)]
            media: Option<MediaRef<'a>>,
        }
        #[derive(Deserialize)]
        struct MediaRef<'a> {
            #[serde(default, deserialize_with = "lenient_u64")]
            timestamp: u64,
            #[serde(borrow)]
            payload: &'a str,
        }
        if let Ok(Peek { event: "media", media: Some(media) }) = serde_json::from_str::<Peek>(text) {
            return Ok(Frame::Media { timestamp: media.timestamp, payload: media.payload });
        }
        serde_json::from_str(text).map(Frame::Other)
    }
}

/// A JSON text frame to Twilio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Outbound {
    Media {
        #[serde(rename = "streamSid")]
        stream_sid: String,
        media: OutMedia,
    },
    Mark {
        #[serde(rename = "streamSid")]
        stream_sid: String,
        mark: Mark,
    },
    Clear {
        #[serde(rename = "streamSid")]
        stream_sid: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutMedia {
    pub payload: String,
}

/// Outbound media frames of one stream, written without a serializer: the
/// stream's part is escaped once, and base64 needs no escaping. The same
/// text `serde_json` writes for [`Outbound::Media`], without scanning each
/// payload for characters to escape (a tenth of the frame's cost).
pub struct MediaFrames {
    /// `{"event":"media","streamSid":…,"media":{"payload":"`
    prefix: String,
}

impl MediaFrames {
    const SUFFIX: &'static str = "\"}}";

    pub fn new(stream_sid: &str) -> MediaFrames {
        let sid = serde_json::to_string(stream_sid).expect("a string always serializes");
        MediaFrames { prefix: format!(r#"{{"event":"media","streamSid":{sid},"media":{{"payload":""#) }
    }

    /// One frame's message, `audio` as its payload.
    pub fn frame(&self, audio: &[u8]) -> String {
        let mut out = String::with_capacity(self.prefix.len() + audio.len().div_ceil(3) * 4 + Self::SUFFIX.len());
        out.push_str(&self.prefix);
        base64_simd::STANDARD.encode_append(audio, &mut out);
        out.push_str(Self::SUFFIX);
        out
    }
}

/// A number Twilio may send as a JSON number or inside a string. A visitor,
/// not an untagged enum: that would buffer every value (an allocation per
/// media frame) to try each form in turn.
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct Lenient;
    impl serde::de::Visitor<'_> for Lenient {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a non-negative integer, or one in a string")
        }
        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<u64, E> {
            Ok(n)
        }
        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<u64, E> {
            u64::try_from(n).map_err(E::custom)
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<u64, E> {
            s.trim().parse().map_err(E::custom)
        }
    }
    d.deserialize_any(Lenient)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;

    use super::*;

    #[test]
    fn parses_twilio_shapes_with_string_numbers() {
        let m: Inbound = serde_json::from_str(
            r#"{"event":"media","sequenceNumber":"3","streamSid":"MZ1","media":{"track":"inbound","chunk":"2","timestamp":"40","payload":"//8="}}"#,
        )
        .unwrap();
        let Inbound::Media { media, .. } = m else { panic!("not media: {m:?}") };
        assert_eq!((media.chunk, media.timestamp, media.payload.as_str()), (2, 40, "//8="));

        let s: Inbound = serde_json::from_str(
            r#"{"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{"streamSid":"MZ1","accountSid":"AC1","callSid":"CA1","tracks":["inbound"],"customParameters":{"call_sid":"CA1"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#,
        )
        .unwrap();
        let Inbound::Start { start, .. } = s else { panic!() };
        assert_eq!(start.custom_parameters["call_sid"], "CA1");
        assert_eq!(serde_json::from_str::<Inbound>(r#"{"event":"somethingnew","x":1}"#).unwrap(), Inbound::Unknown);
        assert!(serde_json::from_str::<Inbound>(r#"{"event":"media"}"#).is_err());
        let padded = r#"{"event":"media","media":{"timestamp":" 60 ","payload":""}}"#;
        let Inbound::Media { media, .. } = serde_json::from_str(padded).unwrap() else { panic!() };
        assert_eq!(media.timestamp, 60);
        for bad in [r#""-1""#, "-1", r#""x""#, "1.5", "true"] {
            let text = format!(r#"{{"event":"media","media":{{"timestamp":{bad},"payload":""}}}}"#);
            assert!(serde_json::from_str::<Inbound>(&text).is_err(), "timestamp {bad} accepted");
        }
    }

    #[test]
    fn media_frames_are_written_as_serde_writes_them() {
        for sid in ["MZ1", r#"MZ"quoted"\back\slash"#, "MZ\u{1}é"] {
            for audio in [&[][..], &[0xff; 160][..], &[1, 2][..]] {
                let by_serde = serde_json::to_string(&Outbound::Media {
                    stream_sid: sid.into(),
                    media: OutMedia { payload: BASE64.encode(audio) },
                })
                .unwrap();
                assert_eq!(MediaFrames::new(sid).frame(audio), by_serde);
            }
        }
    }

    #[test]
    fn media_frames_are_read_in_place_and_everything_else_as_before() {
        let media = r#"{"event":"media","sequenceNumber":"3","streamSid":"MZ1","media":{"track":"inbound","chunk":"2","timestamp":"40","payload":"//8="}}"#;
        assert_eq!(Frame::parse(media).unwrap(), Frame::Media { timestamp: 40, payload: "//8=" });
        let numeric = r#"{"event":"media","media":{"timestamp":60,"payload":"AAA="}}"#;
        assert_eq!(Frame::parse(numeric).unwrap(), Frame::Media { timestamp: 60, payload: "AAA=" });
        // An escaped payload cannot be borrowed: parsed the long way, same meaning.
        let escaped = r#"{"event":"media","media":{"timestamp":"0","payload":"\/\/8="}}"#;
        let Frame::Other(Inbound::Media { media, .. }) = Frame::parse(escaped).unwrap() else { panic!() };
        assert_eq!(media.payload, "//8=");
        assert!(Frame::parse(r#"{"event":"media"}"#).is_err(), "media without media is still refused");
        assert!(Frame::parse("not json").is_err());
        let stop = r#"{"event":"stop","streamSid":"MZ1"}"#;
        assert!(matches!(Frame::parse(stop).unwrap(), Frame::Other(Inbound::Stop { .. })));
    }
}
