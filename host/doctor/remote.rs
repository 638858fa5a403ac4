//! `hotline doctor <URL>`: a deployment checked from the outside, layer by
//! layer as Twilio meets it: the name, the TCP port, TLS, the health and
//! readiness routes, the webhooks (signed like Twilio's when given the
//! token), the WebSocket upgrade and its subprotocol, then a short
//! simulated call (`call.rs`). A failure of the name, the port or TLS ends
//! the run: everything after it would fail the same way.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use reqwest::{StatusCode, Url};
use tokio::net::TcpStream;

use super::{Check, Report, Status, excerpt};
use crate::providers::{ProviderSettings, Secret};
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
    let Some(addrs) = dns(&probe, &mut report).await else { return report };
    let Some(tcp) = connect(&probe, &addrs, &mut report).await else { return report };
    if !tls(&probe, tcp, &mut report).await {
        return report;
    }
    healthz(&probe, &mut report).await;
    version(&probe, &mut report).await;
    let ai = readyz(&probe, &mut report).await;
    let target = webhook(&probe, &mut report).await;
    callbacks(&probe, target.as_ref(), &mut report).await;
    let offered = upgrades(&probe, target.as_ref(), &mut report).await;
    super::call::run(&probe, target, offered, ai, &mut report).await;
    report
}

async fn dns(p: &Probe, report: &mut Report) -> Option<Vec<SocketAddr>> {
    let bare = p.bare_host();
    if let Ok(ip) = bare.parse::<IpAddr>() {
        report.push(Check::pass("dns", format!("{ip} is an address: nothing to resolve")));
        return Some(vec![SocketAddr::new(ip, p.port)]);
    }
    let began = Instant::now();
    let fix =
        "check the DNS record (usually a CNAME to the platform's host name) and that the domain is attached to the app";
    match tokio::time::timeout(TIMEOUT, tokio::net::lookup_host((bare, p.port))).await {
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            let shown: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            report.push(Check::pass(
                "dns",
                format!("{bare} → {} ({} ms)", shown.join(", "), began.elapsed().as_millis()),
            ));
            Some(addrs)
        }
        Ok(Err(e)) => {
            report.push(Check::fail("dns", format!("{bare} does not resolve: {e}"), fix));
            None
        }
        Err(_) => {
            report.push(Check::fail("dns", format!("no answer for {bare} in {} s", TIMEOUT.as_secs()), fix));
            None
        }
    }
}

async fn connect(p: &Probe, addrs: &[SocketAddr], report: &mut Report) -> Option<TcpStream> {
    let began = Instant::now();
    let mut errors = Vec::new();
    for addr in addrs {
        match tokio::time::timeout(TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => {
                report.push(Check::pass("tcp", format!("connected to {addr} in {} ms", began.elapsed().as_millis())));
                return Some(tcp);
            }
            Ok(Err(e)) => errors.push((addr, e.kind(), e.to_string())),
            Err(_) => {
                errors.push((addr, std::io::ErrorKind::TimedOut, format!("no answer in {} s", TIMEOUT.as_secs())))
            }
        }
    }
    let refused = errors.iter().any(|(_, kind, _)| *kind == std::io::ErrorKind::ConnectionRefused);
    let evidence: Vec<String> = errors.iter().map(|(addr, _, e)| format!("{addr}: {e}")).collect();
    let fix = if refused {
        format!(
            "nothing listens on port {}: the server runs on another port, or not at all. hotline listens on $PORT \
             (HOTLINE_BIND 0.0.0.0); check the platform's internal port and `hotline doctor --local` on the box",
            p.port
        )
    } else {
        "a firewall or security group drops the port, or the address is not this service's".to_string()
    };
    report.push(Check::fail("tcp", evidence.join("; "), fix));
    None
}

/// The TLS handshake on the connected socket, with the same roots the
/// providers' clients trust; the certificate's remaining days.
async fn tls(p: &Probe, tcp: TcpStream, report: &mut Report) -> bool {
    if !p.https {
        if p.plain_loopback {
            report.push(Check::skip("tls", "plain http on this machine: no TLS to check (a deployment is https://)"));
        } else {
            report.push(Check::warn(
                "tls",
                "plain http: Twilio's streams are wss:// and its console asks for https:// webhooks",
                "serve https (the platform's TLS, or a terminating proxy) and run doctor against the https:// URL",
            ));
        }
        return true;
    }
    let bare = p.bare_host().to_string();
    let Ok(name) = rustls_pki_types::ServerName::try_from(bare.clone()) else {
        report.push(Check::fail(
            "tls",
            format!("{bare} is not a TLS server name"),
            "use the host name the certificate names",
        ));
        return false;
    };
    let connector = tokio_rustls::TlsConnector::from(p.tls.clone());
    let conn = match tokio::time::timeout(TIMEOUT, connector.connect(name, tcp)).await {
        Err(_) => {
            report.push(Check::fail(
                "tls",
                format!("no TLS handshake in {} s", TIMEOUT.as_secs()),
                "the port does not speak TLS (plain http? use http://) or the proxy hangs",
            ));
            return false;
        }
        Ok(Err(e)) => {
            let rustls = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
            report.push(Check::fail("tls", format!("handshake failed: {e}"), tls_fix(rustls, &bare)));
            return false;
        }
        Ok(Ok(conn)) => conn,
    };
    let (_, session) = conn.get_ref();
    let protocol = session.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default();
    let leaf = session.peer_certificates().and_then(|c| c.first()).map(|c| c.as_ref().to_vec());
    let parsed = leaf.as_deref().and_then(|der| x509_parser::parse_x509_certificate(der).ok());
    let Some((_, cert)) = parsed else {
        report.push(Check::pass("tls", format!("{protocol}, certificate verified (its dates could not be read)")));
        return true;
    };
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let days = (cert.validity().not_after.timestamp() - now) / 86_400;
    let evidence = format!(
        "{protocol}, certificate for {bare} verified, {days} days left (until {}), issuer {}",
        cert.validity().not_after,
        cert.issuer()
    );
    if days < CERT_WARN_DAYS {
        report.push(Check::warn(
            "tls",
            evidence,
            "renew the certificate soon (is the platform's automatic renewal failing?)",
        ));
    } else {
        report.push(Check::pass("tls", evidence));
    }
    true
}

fn tls_fix(error: Option<&rustls::Error>, host: &str) -> String {
    use rustls::CertificateError as C;
    match error {
        Some(rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. })) => {
            "the certificate has expired: renew it (is the platform's automatic renewal failing?)".into()
        }
        Some(rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. })) => {
            format!("the certificate does not name {host}: attach the domain to the platform, or issue one for it")
        }
        Some(rustls::Error::InvalidCertificate(C::UnknownIssuer)) => {
            "an issuer nobody trusts: a self-signed certificate or a missing intermediate; serve the full chain \
             (for a private CA, HOTLINE_PROVIDER_CA_FILE)"
                .into()
        }
        Some(rustls::Error::InvalidMessage(_)) => {
            "the port does not speak TLS: plain http? use http:// or the TLS port".into()
        }
        _ => "check the TLS termination in front of the server (certificate, chain, protocol versions)".into(),
    }
}

async fn healthz(p: &Probe, report: &mut Report) {
    const CHECK: &str = "healthz";
    match p.get("/healthz").await {
        Err(e) => report.push(Check::fail(
            CHECK,
            e,
            "the server or its proxy hangs: check that hotline runs and is not overloaded",
        )),
        Ok((status, shown, body, took)) => {
            let ms = took.as_millis();
            if status == StatusCode::OK && body.trim() == "ok" {
                if took > SLOW_HEALTHZ {
                    report.push(Check::warn(
                        CHECK,
                        format!("200 ok in {ms} ms (slow: over {} ms)", SLOW_HEALTHZ.as_millis()),
                        "hotline answers /healthz in about a millisecond: a slow answer is the network or proxy in \
                         between, or a starved machine; a platform health check with a short timeout will restart it",
                    ));
                } else {
                    report.push(Check::pass(CHECK, format!("200 ok in {ms} ms")));
                }
            } else {
                let seen = format!("{status} {} in {ms} ms: {}", shown.unwrap_or_default(), excerpt(&body));
                report.push(Check::fail(CHECK, seen, not_hotline_fix(status)));
            }
        }
    }
}

/// The usual reason a route answers with something that is not hotline's.
fn not_hotline_fix(status: StatusCode) -> String {
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

async fn get_json(
    p: &Probe,
    path: &str,
    check: &'static str,
    report: &mut Report,
) -> Option<(StatusCode, serde_json::Value)> {
    match p.get(path).await {
        Err(e) => {
            report.push(Check::fail(check, e, "the server or its proxy hangs: check that hotline runs"));
            None
        }
        Ok((status, shown, body, _)) => match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(json) if json.is_object() => Some((status, json)),
            _ => {
                let seen = format!("{status} {}: {}", shown.unwrap_or_default(), excerpt(&body));
                report.push(Check::fail(check, seen, not_hotline_fix(status)));
                None
            }
        },
    }
}

async fn version(p: &Probe, report: &mut Report) {
    let Some((_, v)) = get_json(p, "/version", "version", report).await else { return };
    if v["name"] != "hotline" {
        report.push(Check::fail("version", format!("not hotline's /version: {v}"), not_hotline_fix(StatusCode::OK)));
        return;
    }
    let commit = v["git_commit"].as_str().map(|c| format!(", commit {}", &c[..c.len().min(12)])).unwrap_or_default();
    let guest = v["guest_digest"].as_str().map(short_digest).unwrap_or("none");
    let head = format!("hotline {}{commit}, guest {guest}", v["version"].as_str().unwrap_or("?"));
    match v["deploy_id"].as_str() {
        Some(id) => report.push(Check::pass("version", format!("{head}, DEPLOY_ID={id}"))),
        None => report.push(Check::warn(
            "version",
            format!("{head}, no DEPLOY_ID"),
            "set DEPLOY_ID (the release or commit) so /version names the build that answers",
        )),
    }
}

fn short_digest(d: &str) -> &str {
    &d[..d.len().min(19)]
}

/// `/readyz` and what it says: readiness, the providers, the database,
/// the signatures. Returns whether the agent is an AI one (all three
/// providers configured).
async fn readyz(p: &Probe, report: &mut Report) -> bool {
    let Some((status, r)) = get_json(p, "/readyz", "readyz", report).await else {
        for check in ["providers", "database", "signatures"] {
            report.push(Check::skip(check, "no /readyz to read"));
        }
        return false;
    };
    let live = format!("{}/{} calls", r["live_calls"], r["max_calls"]);
    if r["ready"] == true {
        let digest = r["guest"]["digest"].as_str().map(short_digest).unwrap_or("?");
        report.push(Check::pass("readyz", format!("{status}: ready, guest {digest} loaded, {live}")));
    } else {
        let (why, fix) = if r["guest"]["loaded"] != true {
            ("no guest loaded", "the guest is compiling or was refused: see `guest_rejected` in the server's log")
        } else if r["draining"] == true {
            ("draining (the server got SIGTERM)", "a stopping instance: the platform should route to its successor")
        } else {
            ("at the call limit", "more instances, or a higher HOTLINE_MAX_CALLS")
        };
        report.push(Check::fail("readyz", format!("{status}: not ready: {why}, {live}"), fix));
    }

    let kinds = ["stt", "llm", "tts"];
    let entry = |k: &str| {
        (r["providers"][k]["provider"].as_str().unwrap_or("?"), r["providers"][k]["status"].as_str().unwrap_or("?"))
    };
    let configured = kinds.iter().filter(|k| entry(k).1 != "unconfigured").count();
    let shown: Vec<String> = kinds.iter().map(|k| format!("{k} {} {}", entry(k).0, entry(k).1)).collect();
    let degraded: Vec<String> = kinds
        .iter()
        .filter(|k| entry(k).1 == "degraded")
        .map(|k| format!("{k}: {}", r["providers"][*k]["last_error"]["message"].as_str().unwrap_or("?")))
        .collect();
    if !degraded.is_empty() {
        report.push(Check::warn(
            "providers",
            format!("{}; last errors: {}", shown.join(", "), degraded.join("; ")),
            "the newest request of these providers failed (calls get the apology): check keys, quotas and the \
             provider's status",
        ));
    } else if configured == 0 {
        report.push(Check::pass("providers", "none configured: the echo agent"));
    } else {
        report.push(Check::pass("providers", shown.join(", ")));
    }

    let dropped = r["records"]["dropped"].as_u64().unwrap_or(0);
    match r["db"].as_str().unwrap_or("?") {
        "degraded" => report.push(Check::warn(
            "database",
            format!("degraded, {dropped} records dropped"),
            "the records' database is slow or unreachable (records queue, then drop; calls go on): check DATABASE_URL \
             and the database server",
        )),
        "ok" if dropped > 0 => report.push(Check::warn(
            "database",
            format!("ok, but {dropped} records dropped"),
            "the record queue overflowed: a slow database, or raise HOTLINE_RECORD_QUEUE",
        )),
        "ok" => report.push(Check::pass("database", format!("ok, {} records written", r["records"]["written"]))),
        "off" => report.push(Check::pass("database", "off: no call records kept")),
        other => report.push(Check::warn("database", format!("db {other:?}"), "a hotline this doctor does not know")),
    }

    match r["twilio_signature"].as_str() {
        Some("on") => report.push(Check::pass("signatures", "on: only Twilio (with the auth token) can start calls")),
        Some(_) if p.plain_loopback => report.push(Check::pass("signatures", "off (a local server)")),
        _ => report.push(Check::warn(
            "signatures",
            "off: anyone who finds the URL can start calls",
            "set TWILIO_AUTH_TOKEN and HOTLINE_REQUIRE_SIGNATURE=true on the server",
        )),
    }
    configured == kinds.len()
}

/// `POST /webhook/incoming_call` as Twilio sends it; the TwiML's stream.
async fn webhook(p: &Probe, report: &mut Report) -> Option<StreamTarget> {
    const CHECK: &str = "webhook";
    let dial = Dial {
        server: &p.base,
        call_sid: &p.call_sid,
        from: "+15550100000",
        direction: "inbound",
        subprotocol: true,
        auth_token: p.auth_token.as_ref(),
        public_url: Some(&p.public),
        webhook: stream::WEBHOOK,
        extra: &[],
    };
    let began = Instant::now();
    let answer = async {
        let response = stream::webhook_request(&p.client, &dial).send().await?;
        let status = response.status();
        let content_type = header_of(response.headers(), "content-type").unwrap_or_default();
        Ok::<_, reqwest::Error>((status, content_type, response.text().await?))
    };
    let (status, content_type, body) = match tokio::time::timeout(WEBHOOK_TIMEOUT, answer).await {
        Err(_) => {
            report.push(Check::fail(
                CHECK,
                format!("no answer in {} s", WEBHOOK_TIMEOUT.as_secs()),
                "Twilio gives up after 15 s and plays its error message: see the server's log",
            ));
            return None;
        }
        Ok(Err(e)) => {
            report.push(Check::fail(CHECK, chain(&e), "the webhook's connection failed: see the server's log"));
            return None;
        }
        Ok(Ok(answer)) => answer,
    };
    let ms = began.elapsed().as_millis();
    let seen = format!("{status} {content_type} in {ms} ms");
    match status.as_u16() {
        200 => {}
        401 | 403 if p.auth_token.is_none() => {
            p.unsigned_refused.store(true, Ordering::Relaxed);
            report.push(Check::warn(
                CHECK,
                format!("{seen}: the server checks Twilio signatures"),
                "pass --auth-token (the server's TWILIO_AUTH_TOKEN) to check the webhooks, the upgrade and a call",
            ));
            return None;
        }
        401 | 403 => {
            report.push(Check::fail(
                CHECK,
                format!("{seen}: the signature was refused"),
                format!(
                    "the token is not the server's TWILIO_AUTH_TOKEN, or the server's public URL is not {}: its \
                     PUBLIC_BASE_URL must be the URL Twilio requests (pass --public-url when doctor reaches it another way)",
                    p.public
                ),
            ));
            return None;
        }
        500..=599 => {
            report.push(Check::fail(
                CHECK,
                format!("{seen}: {}", excerpt(&body)),
                "the server failed to answer Twilio's webhook (Twilio plays \"an application error has occurred\"): \
                 see the server's log",
            ));
            return None;
        }
        _ => {
            report.push(Check::fail(CHECK, format!("{seen}: {}", excerpt(&body)), not_hotline_fix(status)));
            return None;
        }
    }
    match stream_target(&body) {
        Err(e) => {
            report.push(Check::fail(
                CHECK,
                format!("{seen}, not TwiML ({e}): {}", excerpt(&body)),
                "another app or the platform's page answers POST /webhook/incoming_call: route it to the server",
            ));
            None
        }
        Ok(None) => {
            report.push(Check::warn(
                CHECK,
                format!("{seen}: TwiML without <Connect><Stream>: {}", excerpt(&body)),
                "no live call: HOTLINE_CALL_MODE=record, or call logic that answers without a stream",
            ));
            None
        }
        Ok(Some(target)) => {
            report.push(Check::pass(CHECK, format!("{seen}: TwiML with <Connect><Stream>")));
            let bare = p.bare_host();
            let public_host = Url::parse(&p.public).ok().and_then(|u| u.host_str().map(str::to_string));
            let expected = public_host.as_deref().unwrap_or(bare).trim_start_matches('[').trim_end_matches(']');
            report.push(super::twiml::stream_url(&target.url, expected, p.plain_loopback));
            report.push(super::twiml::callbacks(target.action.as_deref(), target.status_callback.as_deref()));
            Some(target)
        }
    }
}

/// `stream_status` (204) and `stream_ended` (TwiML), at the URLs the
/// TwiML named (or the built-in ones), signed as Twilio signs them.
async fn callbacks(p: &Probe, target: Option<&StreamTarget>, report: &mut Report) {
    if p.unsigned_refused() {
        report.push(Check::skip("stream_status", "needs --auth-token (signatures are on)"));
        report.push(Check::skip("stream_ended", "needs --auth-token (signatures are on)"));
        return;
    }
    let named = |url: Option<&String>, path: &str| url.cloned().unwrap_or_else(|| format!("{}{path}", p.public));
    let sid = |k: &str, v: &str| (k.to_string(), v.to_string());
    let stream_sid = format!("MZ{}", p.call_sid.trim_start_matches("CA"));
    let common = vec![sid("AccountSid", stream::ACCOUNT_SID), sid("CallSid", &p.call_sid)];

    let url = named(target.and_then(|t| t.status_callback.as_ref()), "/webhook/stream_status");
    let mut form = common.clone();
    form.extend([
        sid("StreamSid", &stream_sid),
        sid("StreamName", &stream_sid),
        sid("StreamEvent", "stream-started"),
        sid("Timestamp", "2026-01-01T00:00:00.000Z"),
    ]);
    match p.post(&url, form).await {
        Ok((StatusCode::NO_CONTENT, _, _)) => report.push(Check::pass("stream_status", format!("204 from {url}"))),
        Ok((status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN), _, body)) => {
            report.push(signature_refused("stream_status", status, &url, &body))
        }
        Ok((status, content_type, body)) => report.push(Check::fail(
            "stream_status",
            format!("{status} {content_type} from {url}: {}", excerpt(&body)),
            "Twilio posts the stream's events here and expects 204: route POST /webhook/* to the server",
        )),
        Err(e) => report.push(Check::fail("stream_status", format!("{url}: {e}"), "see the server's log")),
    }

    let url = named(target.and_then(|t| t.action.as_ref()), "/webhook/stream_ended");
    let mut form = common;
    form.push(sid("CallStatus", "in-progress"));
    match p.post(&url, form).await {
        Ok((StatusCode::OK, content_type, body)) if is_twiml(&body) => {
            report.push(Check::pass("stream_ended", format!("200 {content_type} from {url}: {}", excerpt(&body))));
        }
        Ok((status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN), _, body)) => {
            report.push(signature_refused("stream_ended", status, &url, &body))
        }
        Ok((status, content_type, body)) => report.push(Check::fail(
            "stream_ended",
            format!("{status} {content_type} from {url}: {}", excerpt(&body)),
            "Twilio asks this URL what to do when the stream ends and needs TwiML back (else the call drops with an \
             error): route POST /webhook/* to the server",
        )),
        Err(e) => report.push(Check::fail("stream_ended", format!("{url}: {e}"), "see the server's log")),
    }
}

fn signature_refused(check: &'static str, status: StatusCode, url: &str, body: &str) -> Check {
    Check::fail(
        check,
        format!("{status} from {url}: {}", excerpt(body)),
        "the signature was refused: the token is not the server's TWILIO_AUTH_TOKEN, or the server's PUBLIC_BASE_URL \
         is not the URL Twilio requests",
    )
}

fn is_twiml(body: &str) -> bool {
    roxmltree::Document::parse(body).is_ok_and(|d| d.root_element().has_tag_name("Response"))
}

/// The stream's URL to connect to (the TwiML's path on the target) and
/// the URL Twilio would sign (the TwiML's, as named).
pub(super) fn stream_urls(p: &Probe, target: Option<&StreamTarget>) -> (String, String) {
    let named = target.map(|t| t.url.clone()).unwrap_or_else(|| {
        let authority = p.public.split_once("://").map_or(p.public.as_str(), |(_, a)| a);
        format!("wss://{authority}{STREAM_PATH}")
    });
    let path = Url::parse(&named).map(|u| u.path().to_string()).unwrap_or_else(|_| STREAM_PATH.to_string());
    (p.ws_url(&path), named)
}

/// The upgrade offering `audio.twilio.com` (101 and the echo, or Twilio's
/// error 31920), and without the offer (still 101, nothing echoed).
/// Returns whether the call should offer the subprotocol: when the offer
/// got its echo (or was never tested).
async fn upgrades(p: &Probe, target: Option<&StreamTarget>, report: &mut Report) -> bool {
    use tokio_tungstenite::tungstenite::Error as WsError;
    use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError};
    let (ws_url, named) = stream_urls(p, target);
    let mut offer_works = true;
    for (check, offer) in [("ws_subprotocol", true), ("ws_plain", false)] {
        if p.unsigned_refused() {
            report.push(Check::skip(check, "needs --auth-token (signatures are on)"));
            continue;
        }
        let request = match stream::upgrade_request(&ws_url, &named, offer, p.auth_token.as_ref()) {
            Ok(r) => r,
            Err(e) => {
                report.push(Check::fail(check, format!("{ws_url}: {e:#}"), "the stream URL is not a valid URL"));
                continue;
            }
        };
        let began = Instant::now();
        let outcome = tokio::time::timeout(TIMEOUT, stream::connect(request, Some(p.tls.clone()))).await;
        let ms = began.elapsed().as_millis();
        let result = match outcome {
            Err(_) => Check::fail(
                check,
                format!("{ws_url}: no answer in {} s", TIMEOUT.as_secs()),
                "the proxy hangs on upgrades",
            ),
            Ok(Ok((mut ws, response))) => {
                let echoed = header_of(response.headers(), "sec-websocket-protocol");
                // Closed before `start`: the server ends it as a stream that never began.
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                match (offer, echoed) {
                    (true, Some(proto)) => {
                        Check::pass(check, format!("101 in {ms} ms from {ws_url}, Sec-WebSocket-Protocol: {proto}"))
                    }
                    (false, None) => {
                        Check::pass(check, format!("101 in {ms} ms from {ws_url}, no subprotocol offered or echoed"))
                    }
                    // tungstenite refuses these itself; kept for completeness.
                    (true, None) => subprotocol_missing(check, &ws_url),
                    (false, Some(proto)) => subprotocol_unasked(check, &ws_url, &proto),
                }
            }
            Ok(Err(WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(
                SubProtocolError::NoSubProtocol,
            )))) => subprotocol_missing(check, &ws_url),
            Ok(Err(WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(
                SubProtocolError::ServerSentSubProtocolNoneRequested,
            )))) => subprotocol_unasked(check, &ws_url, "a subprotocol"),
            Ok(Err(WsError::Http(response))) => {
                let status = response.status();
                let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
                let seen = format!("{status} from {ws_url}, not 101: {}", excerpt(&body));
                match status.as_u16() {
                    401 | 403 if p.auth_token.is_none() => Check::warn(
                        check,
                        format!("{seen} (the server checks signatures)"),
                        "pass --auth-token (the server's TWILIO_AUTH_TOKEN)",
                    ),
                    401 | 403 => Check::fail(
                        check,
                        format!("{seen}: the upgrade's signature was refused"),
                        "the server signs the stream URL its TwiML names: its PUBLIC_BASE_URL must be the URL Twilio uses",
                    ),
                    503 => Check::fail(check, seen, "the server is draining or at its call limit (see /readyz)"),
                    200..=299 => Check::fail(
                        check,
                        seen,
                        "the proxy does not pass WebSocket upgrades: enable WebSockets for the route (forward \
                         `Upgrade` and `Connection`, HTTP/1.1 to the server)",
                    ),
                    _ => {
                        Check::fail(check, seen, "the upgrade does not reach hotline: route GET /ws/twilio-media to it")
                    }
                }
            }
            Ok(Err(e)) => {
                Check::fail(check, format!("{ws_url}: {}", chain(&e)), "the upgrade's connection failed: see the proxy")
            }
        };
        if offer && result.status != Status::Pass {
            offer_works = false;
        }
        report.push(result);
    }
    offer_works
}

fn subprotocol_missing(check: &'static str, ws_url: &str) -> Check {
    Check::fail(
        check,
        format!("101 from {ws_url} without Sec-WebSocket-Protocol: audio.twilio.com"),
        "the proxy strips Sec-WebSocket-Protocol: Twilio fails with error 31920; pass the header through",
    )
}

fn subprotocol_unasked(check: &'static str, ws_url: &str, proto: &str) -> Check {
    Check::fail(
        check,
        format!("101 from {ws_url} echoing {proto} that was not offered"),
        "something in front of the server adds Sec-WebSocket-Protocol: echo only what the client offered (RFC 6455 \
         clients drop the connection)",
    )
}
