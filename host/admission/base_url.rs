//! The public base URL Twilio reaches us at: `PUBLIC_BASE_URL` when set;
//! otherwise rebuilt from the request: from the proxy headers
//! (`X-Forwarded-Proto`, `X-Forwarded-Host`) only when they are trusted
//! (`HOTLINE_TRUST_PROXY`), since any client can send them, else from
//! `Host` over plain http.

use http::HeaderMap;

/// An error when no usable host can be found.
pub fn derive(configured: Option<&str>, trust_proxy: bool, headers: &HeaderMap) -> Result<String, String> {
    if let Some(base) = configured {
        return Ok(base.trim_end_matches('/').to_string());
    }
    let first = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let forwarded = |name: &str| if trust_proxy { first(name) } else { None };
    let proto = forwarded("x-forwarded-proto").unwrap_or_else(|| "http".into()).to_ascii_lowercase();
    if proto != "http" && proto != "https" {
        return Err(format!("X-Forwarded-Proto {proto:?} is not http or https"));
    }
    let host = forwarded("x-forwarded-host").or_else(|| first("host")).ok_or("no Host header; set PUBLIC_BASE_URL")?;
    let valid = host.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]_".contains(c));
    if !valid {
        return Err(format!("host {host:?} is not a valid host name"));
    }
    Ok(format!("{proto}://{host}"))
}

/// The base of the stream URL Twilio opens, and signs: always `wss://`
/// (Twilio opens no other; a plain-http base is behind a TLS terminator),
/// on the base URL's host.
pub fn stream_base(base: &str) -> String {
    let host = base.split_once("://").map_or(base, |(_, rest)| rest);
    format!("wss://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    #[test]
    fn configured_base_wins_and_loses_its_slash() {
        let h = headers(&[("host", "internal:8080")]);
        assert_eq!(derive(Some("https://a.example/"), false, &h).unwrap(), "https://a.example");
    }

    #[test]
    fn trusted_proxy_headers_rebuild_the_public_url() {
        let h = headers(&[
            ("host", "10.0.0.5:8080"),
            ("x-forwarded-proto", "https, http"),
            ("x-forwarded-host", "agent.example.com"),
        ]);
        assert_eq!(derive(None, true, &h).unwrap(), "https://agent.example.com");
        assert_eq!(derive(None, true, &headers(&[("host", "localhost:8080")])).unwrap(), "http://localhost:8080");
        assert!(derive(None, true, &HeaderMap::new()).is_err());
        assert!(derive(None, true, &headers(&[("host", "a\"b")])).is_err());
    }

    #[test]
    fn untrusted_proxy_headers_are_ignored() {
        let h =
            headers(&[("host", "10.0.0.5:8080"), ("x-forwarded-proto", "https"), ("x-forwarded-host", "evil.example")]);
        assert_eq!(derive(None, false, &h).unwrap(), "http://10.0.0.5:8080");
    }

    #[test]
    fn streams_are_always_wss() {
        assert_eq!(stream_base("https://a.example"), "wss://a.example");
        assert_eq!(stream_base("http://127.0.0.1:8080"), "wss://127.0.0.1:8080");
    }
}
