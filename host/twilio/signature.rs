//! Twilio's request signature (`X-Twilio-Signature`): base64 of
//! HMAC-SHA1, keyed with the account's auth token, over the full public
//! URL Twilio requested followed by each form parameter, sorted by name,
//! as name then value. A WebSocket upgrade is signed the same way over its
//! `wss://` URL, with no parameters.
//!
//! Twilio's own libraries accept the URL with and without the scheme's
//! default port (`https://host/x` and `https://host:443/x` are the same
//! request), so this does too. Comparison is constant-time (`ring`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hotline_common::Secret;
use ring::hmac;

/// The request header Twilio puts its signature in.
pub const HEADER: &str = "x-twilio-signature";

/// Why a request's signature was refused (logged, never the token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("missing")]
    Missing,
    #[error("mismatch")]
    Mismatch,
}

impl Rejection {
    pub fn name(self) -> &'static str {
        match self {
            Rejection::Missing => "missing",
            Rejection::Mismatch => "mismatch",
        }
    }
}

/// The auth tokens a request may be signed with: the account's, and during
/// a rotation the other one as well.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<hmac::Key>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Verifier({} tokens)", self.keys.len())
    }
}

impl Verifier {
    pub fn new<'a>(tokens: impl IntoIterator<Item = &'a Secret>) -> Verifier {
        let keys = tokens
            .into_iter()
            .map(|t| hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, t.expose().as_bytes()))
            .collect();
        Verifier { keys }
    }

    /// Checks `signature` (the header's value, if any) against `url` (as
    /// Twilio requested it, query included) and the form parameters.
    pub fn verify(&self, url: &str, params: &[(String, String)], signature: Option<&[u8]>) -> Result<(), Rejection> {
        let signature = signature.filter(|s| !s.is_empty()).ok_or(Rejection::Missing)?;
        let Ok(tag) = BASE64.decode(signature) else { return Err(Rejection::Mismatch) };
        let sorted = sorted(params);
        let matches = url_variants(url).iter().any(|url| {
            let message = signed_message(url, &sorted);
            self.keys.iter().any(|key| hmac::verify(key, &message, &tag).is_ok())
        });
        if matches { Ok(()) } else { Err(Rejection::Mismatch) }
    }

    /// The signature Twilio would send (the simulator signs with it).
    pub fn sign(token: &Secret, url: &str, params: &[(String, String)]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, token.expose().as_bytes());
        BASE64.encode(hmac::sign(&key, &signed_message(url, &sorted(params))))
    }
}

fn sorted(params: &[(String, String)]) -> Vec<&(String, String)> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted
}

fn signed_message(url: &str, sorted: &[&(String, String)]) -> Vec<u8> {
    let mut message = url.as_bytes().to_vec();
    for (name, value) in sorted {
        message.extend_from_slice(name.as_bytes());
        message.extend_from_slice(value.as_bytes());
    }
    message
}

/// `url` as given, and with its scheme's default port added or removed.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else { return variants };
    let default_port = match scheme {
        "https" | "wss" => "443",
        "http" | "ws" => "80",
        _ => return variants,
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // A port is what follows the last colon, unless that colon is inside
    // an IPv6 literal's brackets.
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    match port {
        Some(p) if p == default_port => variants.push(format!("{scheme}://{host}{tail}")),
        Some(_) => {}
        None => variants.push(format!("{scheme}://{host}:{default_port}{tail}")),
    }
    variants
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    // The example from Twilio's security documentation.
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const TOKEN: &str = "12345";
    const EXPECTED: &str = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";

    fn example() -> Vec<(String, String)> {
        params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ])
    }

    #[test]
    fn twilio_documented_example() {
        let token = Secret::new(TOKEN);
        assert_eq!(Verifier::sign(&token, URL, &example()), EXPECTED);
        let v = Verifier::new([&token]);
        assert_eq!(v.verify(URL, &example(), Some(EXPECTED.as_bytes())), Ok(()));
    }

    #[test]
    fn order_of_parameters_does_not_matter_but_their_values_do() {
        let v = Verifier::new([&Secret::new(TOKEN)]);
        let mut reversed = example();
        reversed.reverse();
        assert_eq!(v.verify(URL, &reversed, Some(EXPECTED.as_bytes())), Ok(()));
        let mut tampered = example();
        tampered[2].1 = "9999".into();
        assert_eq!(v.verify(URL, &tampered, Some(EXPECTED.as_bytes())), Err(Rejection::Mismatch));
        assert_eq!(v.verify(URL, &example(), None), Err(Rejection::Missing));
        assert_eq!(v.verify(URL, &example(), Some(b"not base64!")), Err(Rejection::Mismatch));
    }

    #[test]
    fn default_ports_are_optional_other_ports_are_not() {
        let token = Secret::new(TOKEN);
        let v = Verifier::new([&token]);
        let with_port = Verifier::sign(&token, "wss://a.example:443/ws/twilio-media", &[]);
        assert_eq!(v.verify("wss://a.example/ws/twilio-media", &[], Some(with_port.as_bytes())), Ok(()));
        let without = Verifier::sign(&token, "https://a.example/x?y=1", &[]);
        assert_eq!(v.verify("https://a.example:443/x?y=1", &[], Some(without.as_bytes())), Ok(()));
        let other = Verifier::sign(&token, "https://a.example:8443/x", &[]);
        assert!(v.verify("https://a.example/x", &[], Some(other.as_bytes())).is_err());
        assert_eq!(url_variants("http://[::1]/x"), ["http://[::1]/x", "http://[::1]:80/x"]);
    }

    #[test]
    fn either_token_of_a_rotation_is_accepted() {
        let (old, new) = (Secret::new("old-token"), Secret::new("new-token"));
        let v = Verifier::new([&new, &old]);
        for token in [&old, &new] {
            let sig = Verifier::sign(token, URL, &example());
            assert_eq!(v.verify(URL, &example(), Some(sig.as_bytes())), Ok(()));
        }
        let stranger = Verifier::sign(&Secret::new("another"), URL, &example());
        assert_eq!(v.verify(URL, &example(), Some(stranger.as_bytes())), Err(Rejection::Mismatch));
    }
}
