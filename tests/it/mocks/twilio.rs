//! A stand-in for Twilio's REST API (the two requests call control makes):
//! `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` (update)
//! and `POST …/Calls.json` (create). It checks HTTP Basic auth and the
//! form as Twilio does, answers with Twilio's JSON (calls and errors), and
//! can be told to fail the next requests with given statuses.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hyper::{Response, StatusCode};
use serde_json::json;

use super::{Body, Log, Recorded, json_response};

pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const API_KEY: &str = "SK0123456789abcdef0123456789abcdef";
pub const API_SECRET: &str = "api-secret-0123456789";

#[derive(Default)]
pub struct State {
    pub log: Arc<Log>,
    /// Statuses for the next requests (then success).
    pub statuses: Mutex<VecDeque<u16>>,
}

pub struct TwilioMock {
    pub addr: SocketAddr,
    pub state: Arc<State>,
}

/// One request as the stand-in understood it.
#[derive(Debug, Clone, PartialEq)]
pub struct RestCall {
    /// `update CA…` or `create`.
    pub what: String,
    pub form: Vec<(String, String)>,
}

impl TwilioMock {
    pub async fn start() -> TwilioMock {
        let state = Arc::new(State::default());
        let s = state.clone();
        let addr = super::serve(move |r| handle(s.clone(), r), None).await;
        TwilioMock { addr, state }
    }

    /// What `hotline serve` needs to use it (an API key: no webhook signatures).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TWILIO_ACCOUNT_SID", ACCOUNT_SID.into()),
            ("TWILIO_API_KEY", API_KEY.into()),
            ("TWILIO_API_SECRET", API_SECRET.into()),
            ("HOTLINE_TWILIO_API_URL", format!("http://{}", self.addr)),
        ]
    }

    pub fn fail_next(&self, statuses: &[u16]) {
        self.state.statuses.lock().unwrap().extend(statuses);
    }

    /// The well-formed requests so far, in order.
    pub fn calls(&self) -> Vec<RestCall> {
        let requests = self.state.log.requests.lock().unwrap().clone();
        requests
            .iter()
            .filter_map(|r| {
                let what = what(&r.path)?;
                let form = form_urlencoded::parse(&r.body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
                Some(RestCall { what, form })
            })
            .collect()
    }

    pub fn violations(&self) -> Vec<String> {
        self.state.log.violations()
    }
}

/// `update CA…` or `create` for this account's paths.
fn what(path: &str) -> Option<String> {
    let rest = path.strip_prefix(&format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls"))?;
    match rest {
        ".json" => Some("create".into()),
        _ => rest.strip_prefix('/')?.strip_suffix(".json").map(|sid| format!("update {sid}")),
    }
}

fn twilio_error(status: u16, code: i64, message: &str) -> Response<Body> {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    });
    json_response(StatusCode::from_u16(status).unwrap(), body)
}

async fn handle(state: Arc<State>, r: Recorded) -> Response<Body> {
    state.log.requests.lock().unwrap().push(r.clone());
    let expected =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{API_KEY}:{API_SECRET}")));
    if r.headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        state.log.violations.lock().unwrap().push(format!("bad auth on {}", r.path));
        return twilio_error(401, 20003, "Authenticate");
    }
    let Some(what) = what(&r.path) else {
        state.log.violations.lock().unwrap().push(format!("unknown path {}", r.path));
        return twilio_error(404, 20404, "The requested resource was not found");
    };
    if r.headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/x-www-form-urlencoded") {
        return state.log.refuse(StatusCode::BAD_REQUEST, format!("{what}: not a form"));
    }
    let form: Vec<(String, String)> =
        form_urlencoded::parse(&r.body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if let Some(status) = state.statuses.lock().unwrap().pop_front() {
        return match status {
            404 => twilio_error(404, 20404, "The requested resource was not found"),
            429 => twilio_error(429, 20429, "Too Many Requests"),
            s => twilio_error(s, 20500, "Internal Server Error"),
        };
    }
    match what.strip_prefix("update ") {
        Some(sid) => {
            let actions = ["Twiml", "Url", "Status"].iter().filter(|k| field(k).is_some()).count();
            if actions != 1 {
                return twilio_error(400, 21201, "one of Twiml, Url or Status is required");
            }
            if field("Status").is_some_and(|s| s != "completed" && s != "canceled") {
                return twilio_error(400, 21218, "Invalid Status");
            }
            let status = if field("Status").is_some() { "completed" } else { "in-progress" };
            json_response(StatusCode::OK, json!({ "sid": sid, "account_sid": ACCOUNT_SID, "status": status }))
        }
        None => {
            if field("To").is_none() || field("From").is_none() || field("Url").is_none() {
                return twilio_error(400, 21205, "To, From and Url are required");
            }
            let sid = format!("CA{:032x}", state.log.requests.lock().unwrap().len());
            json_response(StatusCode::CREATED, json!({ "sid": sid, "account_sid": ACCOUNT_SID, "status": "queued" }))
        }
    }
}
