//! `hotline doctor <URL>`: a deployment checked from the outside, layer by
//! layer as Twilio meets it: the name, the TCP port, TLS, the health and
//! readiness routes, the webhooks (signed like Twilio's when given the
//! token), the WebSocket upgrade and its subprotocol, then a short
//! simulated call (`call.rs`). A failure of the name, the port or TLS ends
//! the run: everything after it would fail the same way.
//!
//! `network.rs` the name, the port and TLS; `routes.rs` `/healthz`,
//! `/version` and `/readyz`; `webhooks.rs` the voice webhook's TwiML and
//! the callbacks it names; `upgrade.rs` the WebSocket upgrade, with and
//! without the subprotocol.

mod network;
mod routes;
mod upgrade;
mod webhooks;

pub(in crate::doctor) use upgrade::stream_urls;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use hotline_common::Secret;
use reqwest::{StatusCode, Url};
use tokio::net::TcpStream;

use super::{Check, Report, Status, excerpt};
use crate::providers::ProviderSettings;
use crate::sim::stream::{self, Dial};
use crate::sim::twiml::{StreamTarget, stream_target};

/// Any single request: an answer slower than this is a failure.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The voice webhook may take longer (Twilio waits 15 s for it).
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// `/healthz` slower than this: a platform's health check may give up.
const SLOW_HEALTHZ: Duration = Duration::from_secs(1);
/// A certificate closer than this to its expiry is a warning.
const CERT_WARN_DAYS: i64 = 14;
/// Where the built-in agent opens its stream, when no TwiML said.
const STREAM_PATH: &str = "/ws/twilio-media";

/// What `hotline doctor <URL>` was given.
#[derive(Debug)]
pub struct Target {
    /// The deployment's base URL, e.g. `https://agent.example`.
    pub url: String,
    /// The server's `TWILIO_AUTH_TOKEN`: sign like Twilio.
    pub auth_token: Option<Secret>,
    /// The public base URL the server's signatures cover, when `url` is
    /// another way in.
    pub public_url: Option<String>,
    /// Extra roots to trust (`HOTLINE_PROVIDER_CA_FILE`, as the providers do).
    pub ca_file: Option<PathBuf>,
}

/// What every check shares: the parsed target and its clients.
pub(super) struct Probe {
    /// `scheme://authority`, no trailing slash.
    pub base: String,
    pub host: String,
    pub port: u16,
    pub https: bool,
    /// Plain http to this machine: a local test, not a deployment.
    pub plain_loopback: bool,
    pub client: reqwest::Client,
    pub tls: Arc<rustls::ClientConfig>,
    pub auth_token: Option<Secret>,
    /// The base URL Twilio would request (signatures cover it).
    pub public: String,
    /// This run's CallSid: every webhook and the call use it.
    pub call_sid: String,
    /// The webhook was refused for want of a signature and no token was
    /// given: the checks that need one cannot run.
    unsigned_refused: AtomicBool,
}

impl Probe {
    fn new(target: &Target) -> Result<Probe, String> {
        let url = Url::parse(target.url.trim_end_matches('/')).map_err(|e| format!("{:?}: {e}", target.url))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => return Err(format!("{:?}: {other}:// is not http(s)://", target.url)),
        };
        let host = url.host_str().ok_or_else(|| format!("{:?} has no host", target.url))?.to_string();
        let port = url.port_or_known_default().unwrap_or(if https { 443 } else { 80 });
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let loopback =
            bare.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        let settings =
            ProviderSettings { ca_file: target.ca_file.clone(), ..crate::config::Config::default().providers };
        let client = crate::providers::probe_client(&settings).map_err(|e| format!("{e:#}"))?;
        let tls = crate::providers::streaming::tls_config(&settings).map_err(|e| e.to_string())?;
        let base = format!("{}://{host}{}", url.scheme(), url.port().map(|p| format!(":{p}")).unwrap_or_default());
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
        Ok(Probe {
            public: target.public_url.as_deref().unwrap_or(&base).trim_end_matches('/').to_string(),
            base,
            host,
            port,
            https,
            plain_loopback: !https && loopback,
            client,
            tls,
            auth_token: target.auth_token.clone(),
            call_sid: format!("CAd0c{:029}", nanos % 10u128.pow(29)),
            unsigned_refused: AtomicBool::new(false),
        })
    }

    /// `path` on the target, whatever host a TwiML URL named: the doctor
    /// checks the deployment it was pointed at.
    /// The host without an IPv6 address's brackets.
    pub fn bare_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    pub fn url_of(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The WebSocket URL for a stream at `path`: `wss://` on a deployment,
    /// `ws://` on a plain-http server (as `hotline call` does).
    pub fn ws_url(&self, path: &str) -> String {
        let authority = self.base.split_once("://").map_or(self.base.as_str(), |(_, a)| a);
        format!("{}://{authority}{path}", if self.https { "wss" } else { "ws" })
    }

    async fn get(&self, path: &str) -> Result<(StatusCode, Option<String>, String, Duration), String> {
        let began = Instant::now();
        let answer = async {
            let response = self.client.get(self.url_of(path)).send().await?;
            let status = response.status();
            let shown =
                header_of(response.headers(), "content-type").or_else(|| header_of(response.headers(), "location"));
            Ok::<_, reqwest::Error>((status, shown, response.text().await?))
        };
        match tokio::time::timeout(TIMEOUT, answer).await {
            Err(_) => Err(format!("no answer in {} s", TIMEOUT.as_secs())),
            Ok(Err(e)) => Err(chain(&e)),
            Ok(Ok((status, shown, body))) => Ok((status, shown, body, began.elapsed())),
        }
    }

    /// A form POST to `url` (as a TwiML named it), sent to the target,
    /// signed over the named URL as Twilio signs it.
    async fn post(&self, named: &str, form: Vec<(String, String)>) -> Result<(StatusCode, String, String), String> {
        let path = Url::parse(named).map(|u| u.path().to_string()).unwrap_or_else(|_| named.to_string());
        let request = stream::signed_post(&self.client, &self.url_of(&path), named, form, self.auth_token.as_ref());
        let answer = async {
            let response = request.send().await?;
            let status = response.status();
            let content_type = header_of(response.headers(), "content-type").unwrap_or_default();
            Ok::<_, reqwest::Error>((status, content_type, response.text().await?))
        };
        match tokio::time::timeout(TIMEOUT, answer).await {
            Err(_) => Err(format!("no answer in {} s", TIMEOUT.as_secs())),
            Ok(Err(e)) => Err(chain(&e)),
            Ok(Ok(answer)) => Ok(answer),
        }
    }

    /// The server refused unsigned webhooks and no token was given: the
    /// checks that need a signature cannot run.
    pub fn unsigned_refused(&self) -> bool {
        self.unsigned_refused.load(Ordering::Relaxed)
    }
}

fn header_of(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// An error with its causes, on one line.
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Runs every remote check against `target`.
pub async fn run(target: Target) -> Report {
    let mut report = Report::default();
    let probe = match Probe::new(&target) {
        Ok(p) => p,
        Err(e) => {
            report.push(Check::fail("url", e, "give the server's base URL, e.g. https://agent.example"));
            return report;
        }
    };
    let Some(addrs) = network::dns(&probe, &mut report).await else { return report };
    let Some(tcp) = network::connect(&probe, &addrs, &mut report).await else { return report };
    if !network::tls(&probe, tcp, &mut report).await {
        return report;
    }
    routes::healthz(&probe, &mut report).await;
    routes::version(&probe, &mut report).await;
    let ai = routes::readyz(&probe, &mut report).await;
    let target = webhooks::webhook(&probe, &mut report).await;
    webhooks::callbacks(&probe, target.as_ref(), &mut report).await;
    let offered = upgrade::upgrades(&probe, target.as_ref(), &mut report).await;
    super::call::run(&probe, target, offered, ai, &mut report).await;
    report
}

/// The usual reason a route answers with something that is not hotline's.
pub(super) fn not_hotline_fix(status: StatusCode) -> String {
    match status.as_u16() {
        300..=399 => "the URL redirects: use the URL it redirects to (Twilio's POSTs do not survive redirects)".into(),
        404 => "not hotline's answer: another app answers this URL, or the proxy adds a path prefix".into(),
        502..=504 => "the platform's proxy reaches no healthy server: is hotline running and listening on $PORT \
                      (`hotline doctor --local` on the box)?"
            .into(),
        _ => "not hotline's answer: another app or the platform's placeholder page answers this URL; route it to the \
              server"
            .into(),
    }
}
