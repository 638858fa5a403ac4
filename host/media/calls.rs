//! What every call shares: the server's parts a call uses, and nothing of
//! HTTP. `App` (the composition root) makes one and hands it to each call
//! the listener upgrades; a call never sees `App`, the routes or the
//! listener.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::switchboard::Switchboard;
use crate::config::Config;
use crate::fetch::Fetcher;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::providers::Providers;
use crate::store::Records;
use crate::twilio::rest::Rest;
use crate::twilio::stream_token::StreamTokens;
use crate::versions::Registry;

pub struct Calls {
    /// The server's settings (the same `Arc` as `App`'s).
    pub config: Arc<Config>,
    /// Guest versions: a call starts on the active one and follows swaps.
    pub versions: Arc<Registry>,
    /// Speech-to-text, LLM, text-to-speech (any may be absent) and their health.
    pub providers: Arc<Providers>,
    /// Checks each `start`'s token (issued into the webhook's TwiML).
    pub stream_tokens: Arc<StreamTokens>,
    /// Call records: the queue to the writer, and the recordings.
    pub records: Records,
    /// What the calls count for `/metrics`.
    pub metrics: Metrics,
    /// The live calls and their changes, for the dashboard.
    pub live: Live,
    /// Answering-machine verdicts on their way to live calls, and transfers
    /// between a stream's end and the caller's return (with the call's
    /// record, submitted when the phone call is over).
    pub switchboard: Arc<Switchboard>,
    /// The guests' `fetch`: its policy and its client.
    pub fetch: Fetcher,
    /// Twilio's REST API (`TWILIO_ACCOUNT_SID`): ends and redirects calls;
    /// `None` without an account.
    pub twilio: Option<Rest>,
    /// Every call's task (from its WebSocket upgrade to its close): how
    /// many are live, and what a drain waits for.
    pub tasks: TaskTracker,
    /// Cancelled when the drain budget is spent: every call closes now.
    pub close_all: CancellationToken,
}
