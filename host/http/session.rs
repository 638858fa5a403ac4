//! Who may use `/api/*`, `/admin/*` and the dashboard: a script with the
//! admin token as a bearer token, or a browser with a session cookie it got
//! by signing in with that token (`POST /api/auth/login`).
//!
//! The cookie is stateless: `<expires>.<nonce>.<HMAC-SHA256>`, keyed by a
//! key derived from the admin token, so rotating the token signs everyone
//! out, and a restart does not. It is HttpOnly (no script reads it),
//! SameSite=Strict (no other site's page sends it), `Secure` when the public
//! URL is https, and expires (`HOTLINE_SESSION_HOURS`).
//!
//! Cross-site requests: a state-changing request (anything but GET/HEAD)
//! authenticated by the cookie must carry `X-Hotline-CSRF` (a page on
//! another site cannot send a custom header without a CORS preflight, which
//! this server never grants) and, when the browser says where it comes
//! from, come from this origin (`Sec-Fetch-Site: same-origin`). The bearer
//! token needs neither: browsers never send it on their own.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::json;
use subtle::ConstantTimeEq;
use tracing::info;

use super::error::AppError;
use super::respond::{Body, json, read_body};
use super::table::{Entry, Found, find};
use crate::admission::limits::Peer;
use crate::app::App;

pub const COOKIE: &str = "hotline_session";
/// The header a cookie-authenticated state-changing request must carry.
pub const CSRF_HEADER: &str = "x-hotline-csrf";
/// A sign-in's body is a token and little else.
const LOGIN_MAX_BYTES: usize = 4096;

/// How a request proved it may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Bearer,
    /// A signed session cookie; it expires at this Unix second.
    Session {
        expires_at: u64,
    },
}

/// The session key: derived from the admin token (one HMAC of a fixed
/// label), so the key is never the token itself and a new token makes
/// every cookie signed with the old one invalid.
fn key(token: &str) -> hmac::Key {
    let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes()), b"hotline session key v1");
    hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A new session's cookie value, valid until `expires_at` (Unix seconds).
pub fn issue(token: &str, expires_at: u64) -> String {
    let mut nonce = [0u8; 16];
    SystemRandom::new().fill(&mut nonce).expect("the system's random source works");
    let payload = format!("{expires_at}.{}", URL_SAFE_NO_PAD.encode(nonce));
    let tag = hmac::sign(&key(token), payload.as_bytes());
    format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// Why a cookie was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    Malformed,
    Forged,
    Expired,
}

/// The cookie's expiry, if it was signed with this token and has not
/// expired at `now` (Unix seconds).
pub fn verify(token: &str, value: &str, now: u64) -> Result<u64, Invalid> {
    let (payload, tag) = value.rsplit_once('.').ok_or(Invalid::Malformed)?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| Invalid::Malformed)?;
    // `ring` compares the tag in constant time.
    hmac::verify(&key(token), payload.as_bytes(), &tag).map_err(|_| Invalid::Forged)?;
    let expires_at: u64 = payload.split('.').next().and_then(|e| e.parse().ok()).ok_or(Invalid::Malformed)?;
    if expires_at <= now {
        return Err(Invalid::Expired);
    }
    Ok(expires_at)
}

/// The session cookie's value in a request, if it sent one.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
}

/// Equal lengths first (that leaks only the length), then constant time.
fn token_matches(given: &str, token: &str) -> bool {
    given.len() == token.len() && bool::from(given.as_bytes().ct_eq(token.as_bytes()))
}

fn peer_ip<B>(req: &Request<B>) -> Option<IpAddr> {
    req.extensions().get::<Peer>().map(|p| p.addr.ip())
}

/// The admin token, or 404: without one the admin API, `/api/*` and the
/// dashboard do not exist.
pub fn admin_token(app: &App) -> Result<&str, AppError> {
    app.config.admin_token.as_deref().ok_or(AppError::NotFound)
}

/// The check every `/api/*` and `/admin/*` request passes: 404 when no
/// token is configured; the bearer token (401 when wrong, 429 for an
/// address that keeps guessing); else a valid session cookie (401 when
/// absent, forged or expired), with the cross-site check for anything but
/// GET and HEAD.
pub fn authorize<B>(app: &App, req: &Request<B>) -> Result<Credential, AppError> {
    let token = admin_token(app)?;
    let path = || req.uri().path().to_string();
    if let Some(given) = bearer(req.headers()) {
        check_guess(app, peer_ip(req), token_matches(given, token))
            .map_err(|e| e.unwrap_or(AppError::Unauthorized { path: path() }))?;
        return Ok(Credential::Bearer);
    }
    let Some(value) = cookie(req.headers()) else {
        return Err(AppError::Unauthorized { path: path() });
    };
    // A bad cookie is not a guess at the token (a rotated token leaves
    // every browser with one): refused, not counted against the address.
    let expires_at = verify(token, value, now_secs()).map_err(|why| AppError::SessionInvalid { why, path: path() })?;
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        same_origin(req.headers(), true)?;
    }
    Ok(Credential::Session { expires_at })
}

/// `/metrics`: open without `HOTLINE_METRICS_TOKEN`; with it, the bearer
/// token (a wrong one counts toward the same lockout as the admin token's).
pub fn authorize_metrics<B>(app: &App, req: &Request<B>) -> Result<(), AppError> {
    let Some(token) = app.config.metrics_token.as_deref() else { return Ok(()) };
    let right = bearer(req.headers()).is_some_and(|given| token_matches(given, token));
    check_guess(app, peer_ip(req), right)
        .map_err(|e| e.unwrap_or_else(|| AppError::Unauthorized { path: req.uri().path().to_string() }))
}

/// A guess at the admin token from `ip`: refused while the address is
/// locked out (right token or not), counted when wrong. `Err(None)`: a
/// wrong token, for the caller to name.
fn check_guess(app: &App, ip: Option<IpAddr>, right: bool) -> Result<(), Option<AppError>> {
    if let Some(retry_after) = ip.and_then(|ip| app.admin_failures.locked(ip)) {
        return Err(Some(AppError::TooManyAttempts { retry_after }));
    }
    if !right {
        if let Some(ip) = ip {
            app.admin_failures.failed(ip);
        }
        return Err(None);
    }
    Ok(())
}

/// Refuses a request a browser says came from another site; with
/// `need_header`, also one without `X-Hotline-CSRF` (which only this
/// origin's scripts send).
fn same_origin(headers: &HeaderMap, need_header: bool) -> Result<(), AppError> {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if let Some(site) = site.filter(|s| !matches!(*s, "same-origin" | "none")) {
        return Err(AppError::CrossSite(if site == "same-site" { "same-site" } else { "cross-site" }));
    }
    if need_header && !headers.contains_key(CSRF_HEADER) {
        return Err(AppError::CrossSite("no X-Hotline-CSRF header"));
    }
    Ok(())
}

#[derive(Clone, Copy)]
pub(super) enum Endpoint {
    Login,
    Me,
    Logout,
}

pub(super) const ROUTES: &[Entry<Endpoint>] = &[
    Entry::new(Method::POST, "/api/auth/login", Endpoint::Login),
    Entry::new(Method::GET, "/api/auth/me", Endpoint::Me),
    Entry::new(Method::POST, "/api/auth/logout", Endpoint::Logout),
];

/// `/api/auth/login`, `/api/auth/me`, `/api/auth/logout`.
pub async fn handle(app: &App, req: Request<Incoming>) -> Result<Response<Body>, AppError> {
    admin_token(app)?;
    match find(ROUTES, req.method(), req.uri().path()) {
        Found::Route(Endpoint::Login, _) => login(app, req).await,
        Found::Route(Endpoint::Me, _) => {
            let credential = authorize(app, &req)?;
            let expires_at = match credential {
                Credential::Session { expires_at } => Some(expires_at * 1000),
                Credential::Bearer => None,
            };
            let via = if expires_at.is_some() { "session" } else { "bearer" };
            Ok(json(StatusCode::OK, json!({ "via": via, "expires_at": expires_at })))
        }
        Found::Route(Endpoint::Logout, _) => {
            // Signing out needs no valid session (an expired one is still
            // cleared), but another site may not sign an operator out.
            same_origin(req.headers(), true)?;
            if cookie(req.headers()).is_some() {
                info!(event = "logout");
            }
            let mut response = json(StatusCode::OK, json!({ "signed_in": false }));
            set_cookie(&mut response, &clear_cookie(secure(app, req.headers())));
            Ok(response)
        }
        Found::WrongMethod => Err(AppError::MethodNotAllowed),
        Found::Unknown => Err(AppError::NotFound),
    }
}

async fn login(app: &App, req: Request<Incoming>) -> Result<Response<Body>, AppError> {
    let token = admin_token(app)?;
    // The sign-in form is this origin's; another site's page may not sign
    // a browser in (the header is not needed: the form may post plainly).
    same_origin(req.headers(), false)?;
    let ip = peer_ip(&req);
    let secure = secure(app, req.headers());
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let is_json = content_type.trim_start().to_ascii_lowercase().starts_with("application/json");
    let body = read_body(req, LOGIN_MAX_BYTES, app.config.security.body_timeout).await?;
    let given = if is_json {
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("token").and_then(|t| t.as_str()).map(str::to_string))
    } else {
        form_urlencoded::parse(&body).find(|(k, _)| k == "token").map(|(_, v)| v.into_owned())
    };
    let given = given.ok_or_else(|| AppError::BadQuery("token: expected {\"token\": \"...\"} or token=...".into()))?;
    check_guess(app, ip, token_matches(&given, token)).map_err(|e| e.unwrap_or(AppError::LoginFailed { ip }))?;
    let lifetime = app.config.session_lifetime;
    let expires_at = now_secs() + lifetime.as_secs();
    info!(event = "login", ip = ip.map(|ip| ip.to_string()), expires_at);
    let mut response = json(StatusCode::OK, json!({ "expires_at": expires_at * 1000 }));
    set_cookie(&mut response, &session_cookie(&issue(token, expires_at), lifetime, secure));
    Ok(response)
}

/// Whether the cookie is `Secure`: when the public URL is https.
fn secure(app: &App, headers: &HeaderMap) -> bool {
    app.auth.public_base(headers).is_ok_and(|base| base.starts_with("https://"))
}

fn session_cookie(value: &str, lifetime: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{secure}", lifetime.as_secs())
}

fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}")
}

fn set_cookie(response: &mut Response<Body>, cookie: &str) {
    let value = HeaderValue::from_str(cookie).expect("cookie values are base64url and digits");
    response.headers_mut().append(header::SET_COOKIE, value);
}

/// Whether a browser's request carries a valid session: the dashboard's
/// pages redirect to the sign-in page without one.
pub fn has_session<B>(app: &App, req: &Request<B>) -> bool {
    let (Some(token), Some(value)) = (app.config.admin_token.as_deref(), cookie(req.headers())) else { return false };
    verify(token, value, now_secs()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef-token";

    #[test]
    fn a_cookie_is_valid_until_it_expires_and_only_for_its_token() {
        let value = issue(TOKEN, 1000);
        assert_eq!(verify(TOKEN, &value, 999), Ok(1000));
        assert_eq!(verify(TOKEN, &value, 1000), Err(Invalid::Expired));
        assert_eq!(verify("another-token-0123456789", &value, 999), Err(Invalid::Forged), "a rotated token");
        // A later expiry with the old signature is a forgery.
        let (_, rest) = value.split_once('.').unwrap();
        assert_eq!(verify(TOKEN, &format!("99999.{rest}"), 999), Err(Invalid::Forged));
        assert_eq!(verify(TOKEN, "garbage", 0), Err(Invalid::Malformed));
        assert_ne!(issue(TOKEN, 1000), issue(TOKEN, 1000), "each session its own nonce");
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; hotline_session=abc.def; b=2"));
        assert_eq!(cookie(&headers), Some("abc.def"));
        assert_eq!(cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn cross_site_requests_are_refused() {
        let h = |pairs: &[(&'static str, &'static str)]| -> HeaderMap {
            pairs.iter().map(|(k, v)| (http::HeaderName::from_static(k), HeaderValue::from_static(v))).collect()
        };
        assert!(same_origin(&h(&[("sec-fetch-site", "same-origin"), (CSRF_HEADER, "1")]), true).is_ok());
        assert!(same_origin(&h(&[(CSRF_HEADER, "1")]), true).is_ok(), "an older browser: the header suffices");
        assert!(same_origin(&h(&[("sec-fetch-site", "cross-site"), (CSRF_HEADER, "1")]), true).is_err());
        assert!(same_origin(&h(&[("sec-fetch-site", "same-site")]), false).is_err());
        assert!(same_origin(&h(&[("sec-fetch-site", "same-origin")]), true).is_err(), "no header");
        assert!(same_origin(&HeaderMap::new(), false).is_ok(), "a script's sign-in");
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_behind_https() {
        let c = session_cookie("v", Duration::from_secs(3600), true);
        assert_eq!(c, "hotline_session=v; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict; Secure");
        assert!(!session_cookie("v", Duration::from_secs(1), false).contains("Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
