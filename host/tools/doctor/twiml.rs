//! What the doctor checks in the webhook's TwiML: where Twilio will open
//! the stream, and the URLs it requests later. Pure functions of the
//! TwiML's URLs, so each rule is tested here.

use reqwest::Url;

use super::Check;

/// The `<Stream url>`: `wss://` (Twilio opens nothing else), on the host
/// the doctor was pointed at, with no `//` in its path. `plain_loopback`:
/// the target is plain http on this machine, where `ws://` is only a warning.
pub fn stream_url(url: &str, expected_host: &str, plain_loopback: bool) -> Check {
    const CHECK: &str = "stream_url";
    let parsed = match Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            return Check::fail(
                CHECK,
                format!("<Stream url={url:?}> is not an absolute URL ({e})"),
                "the call logic's TwiML must name an absolute wss:// URL",
            );
        }
    };
    match parsed.scheme() {
        "wss" => {}
        "ws" if plain_loopback => {
            return Check::warn(
                CHECK,
                format!("{url}: ws:// (works for this local test only)"),
                "Twilio opens only wss:// streams: behind TLS, set PUBLIC_BASE_URL=https://… (the built-in agent then writes wss://)",
            );
        }
        other => {
            return Check::fail(
                CHECK,
                format!("{url}: {other}://, Twilio opens only wss:// streams"),
                "serve the stream over TLS and name it wss:// in the TwiML (the built-in agent always does)",
            );
        }
    }
    let host = parsed.host_str().unwrap_or_default();
    if !host.eq_ignore_ascii_case(expected_host) {
        return Check::fail(
            CHECK,
            format!("{url}: names host {host}, not {expected_host}"),
            format!(
                "Twilio opens the stream on {host}: set PUBLIC_BASE_URL to this deployment's https:// URL \
                 (behind a proxy that sets X-Forwarded-Host, HOTLINE_TRUST_PROXY=true); if {expected_host} is an \
                 internal address, run doctor against the public URL"
            ),
        );
    }
    if parsed.path().contains("//") {
        return Check::fail(
            CHECK,
            format!("{url}: `//` in the path {}", parsed.path()),
            "a base URL joined with a path twice: PUBLIC_BASE_URL without a path, or the proxy's rewrite rule",
        );
    }
    Check::pass(CHECK, format!("{url} (wss://, same host)"))
}

/// `<Connect action>` and `<Stream statusCallback>`: absolute http(s)
/// URLs with no `//` in their paths. A missing `action` is a warning: when
/// the stream ends Twilio goes on with the next verb instead of asking.
pub fn callbacks(action: Option<&str>, status_callback: Option<&str>) -> Check {
    const CHECK: &str = "callbacks";
    let mut seen = Vec::new();
    for (name, url) in [("action", action), ("statusCallback", status_callback)] {
        let Some(url) = url else { continue };
        let Ok(parsed) = Url::parse(url).map_err(|_| ()).and_then(|u| match u.scheme() {
            "http" | "https" => Ok(u),
            _ => Err(()),
        }) else {
            return Check::fail(
                CHECK,
                format!("{name}={url:?} is not an absolute http(s) URL"),
                "write callback URLs absolute, from the webhook's base URL (the built-in agent does)",
            );
        };
        if parsed.path().contains("//") {
            return Check::fail(
                CHECK,
                format!("{name}={url}: `//` in the path"),
                "a base URL joined with a path twice: PUBLIC_BASE_URL without a path, or the proxy's rewrite rule",
            );
        }
        seen.push(format!("{name}={url}"));
    }
    if action.is_none() {
        return Check::warn(
            CHECK,
            format!("no <Connect action>{}", seen.first().map(|s| format!("; {s}")).unwrap_or_default()),
            "give <Connect> an action (…/webhook/stream_ended) so hotline decides what the call does after the stream",
        );
    }
    Check::pass(CHECK, seen.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn the_stream_is_wss_on_the_same_host_without_a_double_slash() {
        let ok = stream_url("wss://a.example/ws/twilio-media", "a.example", false);
        assert_eq!(ok.status, Status::Pass, "{ok:?}");
        assert_eq!(stream_url("ws://127.0.0.1:8080/ws/twilio-media", "127.0.0.1", true).status, Status::Warn);
        assert_eq!(stream_url("ws://a.example/ws/twilio-media", "a.example", false).status, Status::Fail);
        let other = stream_url("wss://localhost:8080/ws/twilio-media", "a.example", false);
        assert_eq!(other.status, Status::Fail);
        assert!(other.evidence.contains("localhost"), "{other:?}");
        assert_eq!(stream_url("wss://a.example//ws/twilio-media", "a.example", false).status, Status::Fail);
        assert_eq!(stream_url("/ws/twilio-media", "a.example", false).status, Status::Fail);
    }

    #[test]
    fn callbacks_are_absolute() {
        let a = Some("https://a.example/webhook/stream_ended");
        let s = Some("https://a.example/webhook/stream_status");
        assert_eq!(callbacks(a, s).status, Status::Pass);
        assert_eq!(callbacks(Some("/webhook/stream_ended"), s).status, Status::Fail);
        assert_eq!(callbacks(a, Some("https://a.example//webhook/stream_status")).status, Status::Fail);
        assert_eq!(callbacks(None, s).status, Status::Warn);
    }
}
