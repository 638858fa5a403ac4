//! Binds a media stream to the webhook that started it. The TwiML answering
//! `incoming_call` carries, as a `<Parameter>` of its `<Stream>`, a token:
//! an HMAC over the call's SID and an expiry, keyed with a server secret.
//! Twilio hands the parameters back in the stream's `start` message, and a
//! `start` without a valid token for its own CallSid is refused before the
//! guest sees anything. So a stream proves that this server (or one sharing
//! its secret) answered a webhook for that call, with or without Twilio
//! signatures configured.
//!
//! Token: `<expiry, unix seconds>.<base64url HMAC-SHA256(secret, "<CallSid>\n<expiry>")>`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use hotline_common::Secret;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use super::params;
use super::twiml::escape;

/// How long after the webhook its stream may start: TwiML may say or play
/// something before `<Connect>`.
pub const LIFETIME: Duration = Duration::from_secs(300);

/// Why a stream's `start` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("no stream token")]
    Missing,
    #[error("malformed stream token")]
    Malformed,
    #[error("stream token expired")]
    Expired,
    /// Forged, or issued for another call.
    #[error("stream token not valid for this call")]
    Invalid,
}

impl TokenRejection {
    pub fn name(self) -> &'static str {
        match self {
            TokenRejection::Missing => "missing",
            TokenRejection::Malformed => "malformed",
            TokenRejection::Expired => "expired",
            TokenRejection::Invalid => "invalid",
        }
    }
}

/// Issues and checks tokens. The first key signs; every key verifies (a
/// secret derived from each auth token of a rotation).
#[derive(Clone)]
pub struct StreamTokens {
    keys: Vec<hmac::Key>,
}

impl std::fmt::Debug for StreamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StreamTokens({} keys)", self.keys.len())
    }
}

/// Where the secret came from, for the start-up log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// `HOTLINE_STREAM_SECRET`.
    Configured,
    /// Derived from `TWILIO_AUTH_TOKEN` (and its secondary).
    AuthToken,
    /// Random, for this process only: streams must reach the process that
    /// answered their webhook.
    Random,
}

impl SecretSource {
    pub fn name(self) -> &'static str {
        match self {
            SecretSource::Configured => "configured",
            SecretSource::AuthToken => "auth_token",
            SecretSource::Random => "random",
        }
    }
}

impl StreamTokens {
    /// The configured secret; else one derived from each auth token (a
    /// fleet sharing its Twilio account shares it); else a random one.
    pub fn new(configured: Option<&Secret>, auth_tokens: &[&Secret]) -> (StreamTokens, SecretSource) {
        let key = |secret: &[u8]| hmac::Key::new(hmac::HMAC_SHA256, secret);
        if let Some(secret) = configured {
            return (StreamTokens { keys: vec![key(secret.expose().as_bytes())] }, SecretSource::Configured);
        }
        if !auth_tokens.is_empty() {
            let derive = |token: &Secret| {
                let label = hmac::Key::new(hmac::HMAC_SHA256, token.expose().as_bytes());
                key(hmac::sign(&label, b"hotline stream token v1").as_ref())
            };
            return (StreamTokens { keys: auth_tokens.iter().map(|t| derive(t)).collect() }, SecretSource::AuthToken);
        }
        let mut secret = [0u8; 32];
        SystemRandom::new().fill(&mut secret).expect("the system's random source works");
        (StreamTokens { keys: vec![key(&secret)] }, SecretSource::Random)
    }

    pub fn issue(&self, call_sid: &str, now: SystemTime) -> String {
        let expiry = unix_secs(now) + LIFETIME.as_secs();
        let tag = hmac::sign(&self.keys[0], &message(call_sid, expiry));
        format!("{expiry}.{}", BASE64URL.encode(tag.as_ref()))
    }

    pub fn verify(&self, token: Option<&str>, call_sid: &str, now: SystemTime) -> Result<(), TokenRejection> {
        let token = token.filter(|t| !t.is_empty()).ok_or(TokenRejection::Missing)?;
        let (expiry, tag) = token.split_once('.').ok_or(TokenRejection::Malformed)?;
        let expiry: u64 = expiry.parse().map_err(|_| TokenRejection::Malformed)?;
        let tag = BASE64URL.decode(tag).map_err(|_| TokenRejection::Malformed)?;
        let message = message(call_sid, expiry);
        if !self.keys.iter().any(|key| hmac::verify(key, &message, &tag).is_ok()) {
            return Err(TokenRejection::Invalid);
        }
        if unix_secs(now) > expiry {
            return Err(TokenRejection::Expired);
        }
        Ok(())
    }
}

fn message(call_sid: &str, expiry: u64) -> Vec<u8> {
    format!("{call_sid}\n{expiry}").into_bytes()
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Adds the token to every `<Stream>` of the TwiML as a `<Parameter>`; the
/// rest of the document is kept byte for byte. TwiML without a stream (a
/// refusal, the record mode) comes back unchanged.
pub fn add_to_twiml(twiml: &str, token: &str) -> Result<String, String> {
    add_parameters(twiml, &[(params::TOKEN, token)])
}

/// Adds `<Parameter>`s (names and values XML-escaped) to every `<Stream>`
/// of the TwiML, as [`add_to_twiml`] does the token.
pub fn add_parameters(twiml: &str, parameters: &[(&str, &str)]) -> Result<String, String> {
    let doc = roxmltree::Document::parse(twiml).map_err(|e| format!("the call logic's TwiML is not XML: {e}"))?;
    let parameter: String = parameters
        .iter()
        .map(|(name, value)| format!(r#"<Parameter name="{}" value="{}"/>"#, escape(name), escape(value)))
        .collect();
    let mut out = twiml.to_string();
    // From the last stream to the first, so earlier offsets stay valid.
    let mut streams: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("Stream")).collect();
    streams.sort_by_key(|n| std::cmp::Reverse(n.range().start));
    for stream in streams {
        let range = stream.range();
        let element = &twiml[range.clone()];
        if element.ends_with("/>") {
            let at = range.end - 2;
            out.replace_range(at..range.end, &format!(">{parameter}</Stream>"));
        } else {
            let close = element.rfind("</").ok_or("a <Stream> element without its end tag")?;
            out.insert_str(range.start + close, &parameter);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> StreamTokens {
        StreamTokens::new(Some(&Secret::new("s3cret")), &[]).0
    }

    #[test]
    fn a_token_is_valid_for_its_call_until_it_expires() {
        let t = tokens();
        let now = SystemTime::now();
        let token = t.issue("CA1", now);
        assert_eq!(t.verify(Some(&token), "CA1", now), Ok(()));
        assert_eq!(t.verify(Some(&token), "CA2", now), Err(TokenRejection::Invalid));
        assert_eq!(
            t.verify(Some(&token), "CA1", now + LIFETIME + Duration::from_secs(1)),
            Err(TokenRejection::Expired)
        );
        assert_eq!(t.verify(None, "CA1", now), Err(TokenRejection::Missing));
        assert_eq!(t.verify(Some("123"), "CA1", now), Err(TokenRejection::Malformed));
        // A later expiry with the old tag: the expiry is signed too.
        let (_, tag) = token.split_once('.').unwrap();
        let stretched = format!("{}.{tag}", unix_secs(now) + 10 * LIFETIME.as_secs());
        assert_eq!(t.verify(Some(&stretched), "CA1", now), Err(TokenRejection::Invalid));
        // Another server's secret.
        let other = StreamTokens::new(Some(&Secret::new("other")), &[]).0;
        assert_eq!(other.verify(Some(&token), "CA1", now), Err(TokenRejection::Invalid));
    }

    #[test]
    fn secrets_derive_from_either_auth_token() {
        let (a, b) = (Secret::new("token-a"), Secret::new("token-b"));
        let (both, source) = StreamTokens::new(None, &[&a, &b]);
        assert_eq!(source, SecretSource::AuthToken);
        let now = SystemTime::now();
        let by_b = StreamTokens::new(None, &[&b]).0.issue("CA1", now);
        assert_eq!(both.verify(Some(&by_b), "CA1", now), Ok(()));
        let (random, source) = StreamTokens::new(None, &[]);
        assert_eq!(source, SecretSource::Random);
        assert_eq!(random.verify(Some(&by_b), "CA1", now), Err(TokenRejection::Invalid));
    }

    #[test]
    fn the_token_joins_each_stream_and_nothing_else_changes() {
        let twiml = r#"<?xml version="1.0"?><Response><Connect action="https://h/a"><Stream url="wss://h/ws"/></Connect></Response>"#;
        assert_eq!(
            add_to_twiml(twiml, "T").unwrap(),
            r#"<?xml version="1.0"?><Response><Connect action="https://h/a"><Stream url="wss://h/ws"><Parameter name="hotline_token" value="T"/></Stream></Connect></Response>"#
        );
        let with_params = r#"<Response><Connect><Stream url="wss://h/ws"><Parameter name="a" value="1"/></Stream></Connect></Response>"#;
        assert_eq!(
            add_to_twiml(with_params, "T").unwrap(),
            r#"<Response><Connect><Stream url="wss://h/ws"><Parameter name="a" value="1"/><Parameter name="hotline_token" value="T"/></Stream></Connect></Response>"#
        );
        let from = add_parameters(twiml, &[("hotline_from", "+1<2>\"&\u{1}")]).unwrap();
        assert!(from.contains(r#"<Parameter name="hotline_from" value="+1&lt;2&gt;&quot;&amp;"/>"#), "{from}");
        let none = "<Response><Say>Hi</Say></Response>";
        assert_eq!(add_to_twiml(none, "T").unwrap(), none);
        assert!(add_to_twiml("<Response>", "T").is_err());
    }
}
