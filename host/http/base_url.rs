//! The public base URL Twilio reaches us at: `PUBLIC_BASE_URL` when set,
//! otherwise rebuilt from the proxy headers of the request.

use http::HeaderMap;

/// `None` when no usable host can be found.
pub fn derive(configured: Option<&str>, headers: &HeaderMap) -> Result<String, String> {
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
    let proto = first("x-forwarded-proto").unwrap_or_else(|| "http".into()).to_ascii_lowercase();
    if proto != "http" && proto != "https" {
        return Err(format!("X-Forwarded-Proto {proto:?} is not http or https"));
    }
    let host = first("x-forwarded-host").or_else(|| first("host")).ok_or("no Host header; set PUBLIC_BASE_URL")?;
    let valid = host.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]_".contains(c));
    if !valid {
        return Err(format!("host {host:?} is not a valid host name"));
    }
    Ok(format!("{proto}://{host}"))
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
        assert_eq!(derive(Some("https://a.example/"), &h).unwrap(), "https://a.example");
    }

    #[test]
    fn proxy_headers_rebuild_the_public_url() {
        let h = headers(&[
            ("host", "10.0.0.5:8080"),
            ("x-forwarded-proto", "https, http"),
            ("x-forwarded-host", "agent.example.com"),
        ]);
        assert_eq!(derive(None, &h).unwrap(), "https://agent.example.com");
        assert_eq!(derive(None, &headers(&[("host", "localhost:8080")])).unwrap(), "http://localhost:8080");
        assert!(derive(None, &HeaderMap::new()).is_err());
        assert!(derive(None, &headers(&[("host", "a\"b")])).is_err());
    }
}
