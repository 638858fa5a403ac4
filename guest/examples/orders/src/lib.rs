//! Example call logic: an order-status line. The caller keys in an order
//! number and `#`; the guest asks the host to fetch
//! `GET {orders_api}/orders/{number}` (`orders_api` is one of the host's
//! `HOTLINE_GUEST_VARIABLES`), with an `Authorization` header that the host
//! fills in from its secret `orders_token` (`HOTLINE_GUEST_SECRETS`): the
//! component never holds the token. It says the order's status through
//! text-to-speech ("Order 1234 has shipped and arrives Friday."), or a
//! clear sorry when the lookup fails (not found, refused, timed out).
//! `*` starts the number again.
//!
//! The API answers `{"status": "shipped", "arrives": "Friday"}` (`arrives`
//! optional). Everything else (turn-taking, speech, barge-in) is the
//! default agent's: this is its `Wrapper` pattern with state of its own,
//! so the session is written out here (`Wrapped` is for stateless
//! wrappers), and its snapshot carries the machine's and its own. Pure: the
//! host does the request, and `fetched` brings the answer back.

use std::cell::RefCell;

use hotline_agent::bindings::exports::hotline::call::{calls, incoming};
use hotline_agent::bindings::hotline::call::types::{
    Effect, Event, FetchError, Fetched, HttpRequest, HttpResponse, LogEntry, TwimlError, Webhook,
};
use hotline_agent::{Machine, Outbox};
use serde::{Deserialize, Serialize};

/// The variable naming the API's base URL.
const API_VARIABLE: &str = "orders_api";
/// The host's secret that becomes the `Authorization` header.
const TOKEN_SECRET: &str = "orders_token";
/// Longer than any order number.
const MAX_DIGITS: usize = 12;
const GREETING: &str = "Hello! Key in your order number, then press the hash key.";
const UNAVAILABLE: &str = "Sorry, I cannot look up orders right now. Please try again later.";

/// What this guest remembers besides the machine's state.
#[derive(Default, Serialize, Deserialize)]
struct Orders {
    /// `orders_api`, from `started`.
    api: Option<String>,
    /// Digits keyed since the last `#` or `*`.
    digits: String,
    /// The lookup in flight: the fetch's id and the order number.
    pending: Option<(u32, String)>,
    next_id: u32,
}

impl Orders {
    fn handle(&mut self, machine: &mut Machine, event: Event) -> Vec<Effect> {
        match event {
            Event::Started(mut started) => {
                let variables = &started.config.variables;
                self.api =
                    variables.iter().find(|(k, _)| k == API_VARIABLE).map(|(_, v)| v.trim_end_matches('/').into());
                started.config.greeting.get_or_insert_with(|| GREETING.into());
                machine.handle(Event::Started(started))
            }
            Event::Dtmf(digit @ '0'..='9') if self.digits.len() < MAX_DIGITS => {
                self.digits.push(digit);
                Vec::new()
            }
            Event::Dtmf('*') => {
                self.digits.clear();
                Vec::new()
            }
            Event::Dtmf('#') => self.look_up(machine),
            Event::Fetched(fetched) => self.answer(machine, fetched),
            other => machine.handle(other),
        }
    }

    /// The `fetch` for the number keyed so far.
    fn look_up(&mut self, machine: &mut Machine) -> Vec<Effect> {
        let number = std::mem::take(&mut self.digits);
        if number.is_empty() {
            return machine.say(GREETING);
        }
        let Some(api) = &self.api else {
            let mut fx = vec![log("order_lookup_failed", &[("number", &number), ("reason", "no orders_api variable")])];
            fx.extend(machine.say(UNAVAILABLE));
            return fx;
        };
        self.next_id += 1;
        let id = self.next_id;
        let request = HttpRequest {
            id,
            method: "GET".into(),
            url: format!("{api}/orders/{number}"),
            headers: vec![("accept".into(), "application/json".into())],
            body: Vec::new(),
            secret_headers: vec![("authorization".into(), TOKEN_SECRET.into())],
        };
        let fx = vec![log("order_lookup", &[("number", &number), ("id", &id.to_string())]), Effect::Fetch(request)];
        self.pending = Some((id, number));
        fx
    }

    /// What the caller hears once the lookup is answered.
    fn answer(&mut self, machine: &mut Machine, fetched: Fetched) -> Vec<Effect> {
        let number = match self.pending.take() {
            Some((id, number)) if id == fetched.id => number,
            other => {
                // An answer to an earlier lookup, already given up on.
                self.pending = other;
                return vec![log("order_fetch_stale", &[("id", &fetched.id.to_string())])];
            }
        };
        let (text, outcome) = match fetched.response {
            Ok(response) => from_response(&number, &response),
            Err(error) => (UNAVAILABLE.to_string(), failure(&error)),
        };
        let mut fx = vec![log("order_answer", &[("number", &number), ("outcome", &outcome)])];
        fx.extend(machine.say(&text));
        fx
    }
}

#[derive(Deserialize)]
struct Status {
    status: String,
    #[serde(default)]
    arrives: Option<String>,
}

/// The sentence for an API answer, and the outcome for the log.
fn from_response(number: &str, response: &HttpResponse) -> (String, String) {
    match response.status {
        200 => match serde_json::from_slice::<Status>(&response.body) {
            Ok(order) => {
                let arrives = order.arrives.map(|day| format!(" and arrives {day}")).unwrap_or_default();
                (format!("Order {number} has {}{arrives}.", order.status), "found".into())
            }
            Err(_) => (UNAVAILABLE.into(), "bad_json".into()),
        },
        404 => (format!("Sorry, I could not find order {number}."), "not_found".into()),
        status => (UNAVAILABLE.into(), format!("status_{status}")),
    }
}

fn failure(error: &FetchError) -> String {
    match error {
        FetchError::Refused(_) => "refused",
        FetchError::Timeout => "timeout",
        FetchError::TooLarge => "too_large",
        FetchError::Failed(_) => "failed",
    }
    .into()
}

fn log(event: &str, fields: &[(&str, &str)]) -> Effect {
    let fields = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Effect::Log(LogEntry { event: event.into(), fields })
}

// ---- the component ---------------------------------------------------------

struct Guest;

impl incoming::Guest for Guest {
    fn incoming_call(call: Webhook) -> Result<String, TwimlError> {
        <hotline_agent::Agent as incoming::Guest>::incoming_call(call)
    }
}

impl calls::Guest for Guest {
    type Session = Session;
}

struct Session(RefCell<(Machine, Orders)>, Outbox);

/// Marks this guest's snapshots: `ORDERS1`, the machine's length (u32 LE),
/// the machine's snapshot, then its own state as JSON.
const MAGIC: &[u8] = b"ORDERS1";

impl calls::GuestSession for Session {
    fn new() -> Self {
        Session(RefCell::new((Machine::default(), Orders::default())), Outbox::default())
    }

    fn handle(&self, event: Event) -> Vec<Effect> {
        let (machine, orders) = &mut *self.0.borrow_mut();
        orders.handle(machine, event)
    }

    fn handle_media(&self, payload: Vec<u8>, timestamp_ms: u64) -> bool {
        self.1.hold(self.handle(hotline_agent::media(payload, timestamp_ms)))
    }

    fn take_effects(&self) -> Vec<Effect> {
        self.1.take()
    }

    fn snapshot(&self) -> Vec<u8> {
        let (machine, orders) = &*self.0.borrow();
        let machine = machine.snapshot();
        let mut bytes = MAGIC.to_vec();
        bytes.extend((machine.len() as u32).to_le_bytes());
        bytes.extend(machine);
        bytes.extend(serde_json::to_vec(orders).unwrap_or_default());
        bytes
    }

    fn restore(snapshot: Vec<u8>) -> Result<calls::Session, String> {
        // The default agent's snapshot (a call migrating to this guest)
        // restores with nothing keyed yet.
        let Some(rest) = snapshot.strip_prefix(MAGIC) else {
            let machine = Machine::restore(&snapshot)?;
            return Ok(calls::Session::new(Session(RefCell::new((machine, Orders::default())), Outbox::default())));
        };
        let (len, rest) = rest.split_first_chunk::<4>().ok_or("orders snapshot: truncated")?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err("orders snapshot: truncated".into());
        }
        let (machine, orders) = rest.split_at(len);
        let machine = Machine::restore(machine)?;
        let orders = serde_json::from_slice(orders).map_err(|e| format!("orders snapshot: {e}"))?;
        Ok(calls::Session::new(Session(RefCell::new((machine, orders)), Outbox::default())))
    }
}

hotline_agent::export!(Guest);
