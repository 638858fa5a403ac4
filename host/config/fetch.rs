//! The guest-fetch section of `hotline serve`'s settings: which origins call
//! logic may reach through its `fetch` effect, how long and how large a
//! request may be, the secrets the host adds to requests by name, and the
//! plain variables handed to the guest in `started`. Defined once here, as
//! the rest in `defs.rs`; docs/fetch.md explains each.

use std::collections::BTreeMap;
use std::time::Duration;

use hotline_common::Secret;
use reqwest::Url;
use reqwest::header::HeaderValue;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Guest fetch")]
pub struct FetchArgs {
    /// Origins call logic may fetch from, comma-separated: https://api.example.com, https://*.example.com,
    /// https://api.example.com:8443 (http:// only for loopback hosts). Empty: every fetch is refused.
    #[arg(long, env = "HOTLINE_GUEST_ALLOWED_HOSTS")]
    pub guest_allowed_hosts: Option<String>,
    /// Time one fetch may take, body included, in ms (100-60000); past it the guest gets `timeout`.
    #[arg(long, env = "HOTLINE_GUEST_FETCH_TIMEOUT_MS", default_value_t = 5000)]
    #[arg(value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub guest_fetch_timeout_ms: u64,
    /// Largest response body a fetch may return, in bytes (1024-67108864); past it: `too-large`.
    #[arg(long, env = "HOTLINE_GUEST_FETCH_MAX_BYTES", default_value_t = 1 << 20)]
    #[arg(value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1024..=64 << 20))]
    pub guest_fetch_max_bytes: usize,
    /// Fetches one call may have in flight (1-64); the next one is refused.
    #[arg(long, env = "HOTLINE_GUEST_FETCH_MAX_IN_FLIGHT", default_value_t = 4)]
    #[arg(value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub guest_fetch_max_in_flight: usize,
    /// Secrets for fetches, as a JSON object of name to value ({"orders_token":"Bearer abc"}); a request names
    /// them in its secret-headers and the host adds the value. Never logged.
    #[arg(long, env = "HOTLINE_GUEST_SECRETS", hide_env_values = true)]
    pub guest_secrets: Option<String>,
    /// Plain values for call logic, as a JSON object of name to value ({"orders_api":"https://…"}); the guest
    /// reads them from `started` (config.variables). Not secret.
    #[arg(long, env = "HOTLINE_GUEST_VARIABLES")]
    pub guest_variables: Option<String>,
}

/// Largest request body a guest may send: call logic sends small JSON,
/// and a bigger one is more likely a mistake than a need.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// The guest-fetch policy as the host uses it.
#[derive(Debug, Clone)]
pub struct GuestFetch {
    pub allowed: Vec<Origin>,
    pub timeout: Duration,
    pub max_bytes: usize,
    pub max_in_flight: usize,
    pub secrets: BTreeMap<String, Secret>,
    pub variables: Vec<(String, String)>,
}

impl FetchArgs {
    pub fn settings(&self) -> anyhow::Result<GuestFetch> {
        let allowed = self
            .guest_allowed_hosts
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| Origin::parse(o).map_err(|e| anyhow::anyhow!("HOTLINE_GUEST_ALLOWED_HOSTS: {o:?}: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let secrets = json_object("HOTLINE_GUEST_SECRETS", self.guest_secrets.as_deref())?;
        for (name, value) in &secrets {
            // The value itself is never quoted: it is a secret.
            if HeaderValue::from_str(value).is_err() {
                anyhow::bail!("HOTLINE_GUEST_SECRETS: the value of {name:?} is not a valid HTTP header value");
            }
        }
        Ok(GuestFetch {
            allowed,
            timeout: Duration::from_millis(self.guest_fetch_timeout_ms),
            max_bytes: self.guest_fetch_max_bytes,
            max_in_flight: self.guest_fetch_max_in_flight,
            secrets: secrets.into_iter().map(|(k, v)| (k, Secret::new(v))).collect(),
            variables: json_object("HOTLINE_GUEST_VARIABLES", self.guest_variables.as_deref())?.into_iter().collect(),
        })
    }
}

/// A JSON object of strings; the error names the variable, never a value.
fn json_object(variable: &str, text: Option<&str>) -> anyhow::Result<BTreeMap<String, String>> {
    let Some(text) = text else { return Ok(BTreeMap::new()) };
    serde_json::from_str(text).map_err(|e| {
        anyhow::anyhow!(
            "{variable} must be a JSON object of names to string values, e.g. {{\"name\":\"value\"}} \
             (line {}, column {})",
            e.line(),
            e.column()
        )
    })
}

/// One allowed origin: scheme, host (or `*.` and a domain: any name under
/// it, not the domain itself) and port, all three matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    https: bool,
    host: String,
    wildcard: bool,
    port: u16,
}

impl Origin {
    pub fn parse(text: &str) -> Result<Origin, String> {
        let (scheme, rest) = text.split_once("://").ok_or("must start with https:// or http://")?;
        let (wildcard, rest) = match rest.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let url = Url::parse(&format!("{scheme}://{rest}")).map_err(|e| e.to_string())?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err("must start with https:// or http://".into()),
        };
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() || rest.ends_with('/') {
            return Err("an origin has no path: scheme://host[:port]".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("an origin has no user or password".into());
        }
        if !https && (wildcard || !is_loopback(&url)) {
            return Err("http:// is only for loopback hosts (127.0.0.1, ::1, localhost); use https://".into());
        }
        let host = url.host_str().ok_or("no host")?.to_string();
        let port = url.port_or_known_default().ok_or("no port")?;
        Ok(Origin { https, host, wildcard, port })
    }

    /// Whether `url` is in this origin.
    pub fn allows(&self, url: &Url) -> bool {
        let scheme = if self.https { "https" } else { "http" };
        let Some(host) = url.host_str() else { return false };
        let host_matches = if self.wildcard {
            host.strip_suffix(self.host.as_str()).is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
        } else {
            host == self.host
        };
        url.scheme() == scheme && host_matches && url.port_or_known_default() == Some(self.port)
    }
}

fn is_loopback(url: &Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || ip.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(origin: &str, url: &str) -> bool {
        Origin::parse(origin).unwrap().allows(&Url::parse(url).unwrap())
    }

    #[test]
    fn origins_match_scheme_host_and_port() {
        assert!(allows("https://api.example.com", "https://api.example.com/orders?id=1"));
        assert!(allows("https://API.example.com", "https://api.example.com:443/"));
        assert!(!allows("https://api.example.com", "http://api.example.com/"));
        assert!(!allows("https://api.example.com", "https://api.example.com:8443/"));
        assert!(allows("https://api.example.com:8443", "https://api.example.com:8443/x"));
        assert!(!allows("https://api.example.com", "https://api.example.com.evil.net/"));
        assert!(allows("https://*.example.com", "https://a.b.example.com/"));
        assert!(!allows("https://*.example.com", "https://example.com/"));
        assert!(!allows("https://*.example.com", "https://badexample.com/"));
        assert!(allows("http://127.0.0.1:8080", "http://127.0.0.1:8080/"));
        assert!(allows("http://[::1]:8080", "http://[::1]:8080/"));
    }

    #[test]
    fn origins_refused_at_start() {
        for bad in [
            "api.example.com",
            "ftp://api.example.com",
            "https://api.example.com/orders",
            "https://api.example.com/",
            "http://api.example.com",
            "http://*.localhost",
            "https://user:pw@api.example.com",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
