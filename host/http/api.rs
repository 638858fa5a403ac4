//! The call records' API, read-only, behind the admin token or a dashboard
//! session (absent, as `/admin/*` is, without a token; `/api/auth/*` is
//! `session.rs`): `GET /api/calls` (filters and pages) and
//! `GET /api/calls/{call_sid}` (the record, its turns and its timeline);
//! `GET /api/live`, the live calls as Server-Sent Events (`crate::live`);
//! `GET /api/stats?hours=N`, hourly figures (`store/stats.rs`);
//! `GET /api/calls/{call_sid}/recording`, the call's WAV (`recording.rs`);
//! `POST /api/calls`, an outbound call (`dial.rs`); `GET /api/guests`,
//! the guest versions and their counters (as `GET /admin/guest`).

use std::sync::Arc;
use std::time::SystemTime;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::error::AppError;
use super::respond::{Body, event_stream, json};
use super::session::{self, authorize};
use super::table::{Entry, Found, find};
use crate::app::App;
use crate::store::read::{self, CallFilter, Cursor, DEFAULT_LIMIT, MAX_LIMIT};
use crate::store::record::{Outcome, unix_ms};
use crate::store::stats;

#[derive(Clone, Copy)]
pub(super) enum Endpoint {
    Calls,
    Call,
    Recording,
    Dial,
    Stats,
    Guests,
    Live,
}

/// The records' API (`/api/auth/*` is `session.rs`'s table).
pub(super) const ROUTES: &[Entry<Endpoint>] = &[
    Entry::new(Method::GET, "/api/calls", Endpoint::Calls),
    Entry::new(Method::POST, "/api/calls", Endpoint::Dial),
    Entry::new(Method::GET, "/api/calls/{call_sid}", Endpoint::Call),
    Entry::new(Method::GET, "/api/calls/{call_sid}/recording", Endpoint::Recording),
    Entry::new(Method::GET, "/api/stats", Endpoint::Stats),
    Entry::new(Method::GET, "/api/guests", Endpoint::Guests),
    Entry::new(Method::GET, "/api/live", Endpoint::Live),
];

pub async fn handle(app: &Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, AppError> {
    if req.uri().path().starts_with("/api/auth/") {
        return session::handle(app, req).await;
    }
    authorize(app, &req)?;
    let (endpoint, sid) = match find(ROUTES, req.method(), req.uri().path()) {
        Found::Route(endpoint, sid) => (endpoint, sid.map(str::to_owned)),
        Found::WrongMethod => return Err(AppError::MethodNotAllowed),
        Found::Unknown => return Err(AppError::NotFound),
    };
    let sid = sid.as_deref().unwrap_or_default();
    match endpoint {
        Endpoint::Recording => super::recording::serve(app, sid, req.headers()).await,
        Endpoint::Guests => Ok(super::admin::status(app).await),
        Endpoint::Live => Ok(event_stream(super::observe::live_stream(app.clone()))),
        Endpoint::Stats => {
            let hours = hours(req.uri().query().unwrap_or(""))?;
            let db = app.calls.records.db().ok_or(AppError::RecordsOff)?;
            let now = unix_ms(SystemTime::now());
            let stats = stats::stats(db, now, hours).await.map_err(|e| AppError::Store(e.to_string()))?;
            Ok(json(StatusCode::OK, serde_json::to_value(stats).expect("stats serialize")))
        }
        Endpoint::Dial => super::dial::place(app, req).await,
        Endpoint::Calls => {
            let filter = filter(req.uri().query().unwrap_or(""))?;
            let db = app.calls.records.db().ok_or(AppError::RecordsOff)?;
            let page = read::list(db, &filter).await.map_err(|e| AppError::Store(e.to_string()))?;
            Ok(json(StatusCode::OK, page))
        }
        Endpoint::Call => {
            let db = app.calls.records.db().ok_or(AppError::RecordsOff)?;
            match read::get(db, sid).await.map_err(|e| AppError::Store(e.to_string()))? {
                Some(call) => Ok(json(StatusCode::OK, call)),
                None => Err(AppError::NotFound),
            }
        }
    }
}

/// `/api/stats`' one parameter, `hours`.
fn hours(query: &str) -> Result<u32, AppError> {
    let mut hours = stats::DEFAULT_HOURS;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let why = format!("hours: a number from 1 to {}", stats::MAX_HOURS);
        match &*key {
            "hours" => {
                hours =
                    value.parse().ok().filter(|h| (1..=stats::MAX_HOURS).contains(h)).ok_or(AppError::BadQuery(why))?
            }
            _ => return Err(AppError::BadQuery(format!("{key}: unknown parameter (hours)"))),
        }
    }
    Ok(hours)
}

/// The query string as filters; anything unknown or malformed is a 400
/// that says which parameter (a typo must not silently list everything).
fn filter(query: &str) -> Result<CallFilter, AppError> {
    let mut f = CallFilter { limit: DEFAULT_LIMIT, ..CallFilter::default() };
    let bad = |key: &str, why: &str| AppError::BadQuery(format!("{key}: {why}"));
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let ms = || value.parse::<i64>().map_err(|_| bad(&key, "Unix milliseconds expected"));
        match &*key {
            "since" => f.since = Some(ms()?),
            "until" => f.until = Some(ms()?),
            "outcome" => {
                let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.name()).collect();
                let why = format!("one of {}", names.join(", "));
                f.outcome = Some(Outcome::from_name(value).ok_or_else(|| bad(&key, &why))?);
            }
            "guest" => f.guest = Some(value.to_string()),
            "instance" => f.instance = Some(value.to_string()),
            "q" => f.q = Some(value.to_string()),
            "limit" => {
                let why = format!("a number from 1 to {MAX_LIMIT}");
                let limit = value.parse::<usize>().ok().filter(|l| (1..=MAX_LIMIT).contains(l));
                f.limit = limit.ok_or_else(|| bad(&key, &why))?;
            }
            "cursor" => f.cursor = Some(Cursor::decode(value).ok_or_else(|| bad(&key, "not a cursor this API gave"))?),
            _ => return Err(bad(&key, "unknown parameter (since, until, outcome, guest, instance, q, limit, cursor)")),
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_become_filters_and_mistakes_are_named() {
        let f = filter("since=10&until=20&outcome=drained&guest=ab12&q=hello%20there&limit=5").unwrap();
        assert_eq!((f.since, f.until, f.outcome, f.limit), (Some(10), Some(20), Some(Outcome::Drained), 5));
        assert_eq!((f.guest.as_deref(), f.q.as_deref()), (Some("ab12"), Some("hello there")));
        assert_eq!(filter("").unwrap().limit, DEFAULT_LIMIT);
        for (query, named) in
            [("since=yesterday", "since"), ("outcome=bored", "outcome"), ("limit=0", "limit"), ("sort=asc", "sort")]
        {
            let err = filter(query).unwrap_err().to_string();
            assert!(err.starts_with(named), "{query}: {err}");
        }
    }
}
