//! Warm start: what a call will need from the providers, made ready before
//! it asks.
//!
//! - At start, the configured greeting's speech goes into the speech cache,
//!   so even the first call's greeting plays the moment its stream starts.
//! - When a call's webhook arrives (Twilio opens the stream a moment
//!   later, and the first utterance ends seconds after that):
//!   - the greeting again, if the cache lost it (evicted, or the start's
//!     attempt failed); one synthesis at a time;
//!   - a connection to each HTTP provider's origin not touched for
//!     [`PREOPEN_EVERY`], opened with a HEAD request: reqwest's pool keeps
//!     it, so the call's first transcription, chat or speech request finds
//!     TCP and TLS done (and rustls keeps the TLS session for a quicker
//!     handshake on the next connection). What the provider answers to the
//!     HEAD does not matter, only that it answered;
//!   - Google's access token, fetched if the cached one is due.
//!
//! Streaming speech-to-text sockets are not opened ahead: a call opens its
//! own at its first frame, seconds before its first utterance ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::Providers;
use super::google::Google;

/// An origin touched this recently is left alone: its connection is most
/// likely still in the pool (reqwest keeps idle ones 90 s), and a burst of
/// webhooks costs one HEAD, not one each.
const PREOPEN_EVERY: Duration = Duration::from_secs(30);
/// A provider that takes longer than this to answer a HEAD is not warmed.
const PREOPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// What the providers warm, built with them.
pub struct Warmer {
    origins: Vec<Origin>,
    google: Option<Arc<Google>>,
    /// A greeting synthesis is under way.
    greeting_busy: AtomicBool,
}

struct Origin {
    /// `scheme://host:port/`.
    url: String,
    last: Mutex<Option<Instant>>,
}

impl Warmer {
    /// `urls`: every URL the HTTP providers call; one origin each is kept.
    /// Nothing is pre-opened when `preopen` is off.
    pub fn new(urls: Vec<String>, google: Option<Arc<Google>>, preopen: bool) -> Warmer {
        let mut origins: Vec<String> = urls
            .iter()
            .filter(|_| preopen)
            .filter_map(|u| reqwest::Url::parse(u).ok())
            .map(|u| format!("{}/", u.origin().ascii_serialization()))
            .collect();
        origins.sort();
        origins.dedup();
        let origins = origins.into_iter().map(|url| Origin { url, last: Mutex::new(None) }).collect();
        Warmer { origins, google: google.filter(|_| preopen), greeting_busy: AtomicBool::new(false) }
    }

    /// The origins due for a connection, marked as touched now.
    fn due(&self) -> Vec<String> {
        let now = Instant::now();
        self.origins
            .iter()
            .filter(|o| {
                let mut last = o.last.lock().unwrap_or_else(|e| e.into_inner());
                let due = last.is_none_or(|at| now.duration_since(at) >= PREOPEN_EVERY);
                if due {
                    *last = Some(now);
                }
                due
            })
            .map(|o| o.url.clone())
            .collect()
    }
}

impl Providers {
    /// At start: the configured greeting's speech into the cache.
    pub fn warm(self: &Arc<Self>) {
        self.warm_greeting();
    }

    /// A call is coming (its webhook arrived): the greeting if the cache
    /// lost it, connections to the providers, Google's token.
    pub fn prepare(self: &Arc<Self>) {
        if !self.complete() {
            return; // an echo call needs no provider
        }
        self.warm_greeting();
        for origin in self.warmer.due() {
            let client = self.client.clone();
            tokio::spawn(async move {
                let began = Instant::now();
                match client.head(&origin).timeout(PREOPEN_TIMEOUT).send().await {
                    Ok(response) => {
                        let ms = began.elapsed().as_millis() as u64;
                        debug!(event = "provider_preopened", origin, status = response.status().as_u16(), ms);
                    }
                    Err(e) => warn!(event = "provider_preopen_failed", origin, error = %e),
                }
            });
        }
        if let Some(google) = self.warmer.google.clone() {
            tokio::spawn(async move {
                if let Err(e) = google.warm_token().await {
                    warn!(event = "provider_preopen_failed", origin = "google token", error = %e);
                }
            });
        }
    }

    /// Synthesizes `HOTLINE_GREETING` into the speech cache unless it is
    /// there already or on its way.
    fn warm_greeting(self: &Arc<Self>) {
        let (Some(tts), Some(greeting)) = (self.tts.clone(), self.settings.greeting.clone()) else { return };
        if self.realtime.is_some() {
            return; // the realtime agent speaks its greeting itself
        }
        if !self.complete() || !self.speech_cache.wants(&greeting) || self.speech_cache.get(&greeting).is_some() {
            return;
        }
        if self.warmer.greeting_busy.swap(true, Ordering::AcqRel) {
            return;
        }
        let providers = self.clone();
        tokio::spawn(async move {
            let began = Instant::now();
            let mut chunks = Vec::new();
            match tts.speak(&greeting, &mut |pcm| chunks.push(pcm)).await {
                Ok(()) => {
                    providers.speech_cache.put(&greeting, chunks);
                    let ms = began.elapsed().as_millis() as u64;
                    info!(event = "tts_cache_warmed", ms);
                }
                Err(e) => warn!(event = "tts_cache_warm_failed", error = %e),
            }
            providers.warmer.greeting_busy.store(false, Ordering::Release);
        });
    }
}
