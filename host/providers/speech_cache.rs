//! Speech already synthesized, by its text: a greeting or a filler is the
//! same words on every call, so after the first time it plays at once
//! instead of waiting for text-to-speech's first byte (and is not paid for
//! again). Voice and model are the process's settings, so the text alone
//! is the key. Bounded in bytes; the oldest entries go first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::Pcm;

/// Longer texts are replies, not phrases that come back.
const MAX_TEXT_CHARS: usize = 200;

pub struct SpeechCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Arc<[Pcm]>>,
    /// Insertion order, for eviction.
    order: VecDeque<String>,
    bytes: usize,
}

impl SpeechCache {
    /// `max_bytes` 0: nothing is kept.
    pub fn new(max_bytes: usize) -> SpeechCache {
        SpeechCache { max_bytes, inner: Mutex::new(Inner::default()) }
    }

    /// Whether speech for `text` would be kept.
    pub fn wants(&self, text: &str) -> bool {
        self.max_bytes > 0 && text.chars().count() <= MAX_TEXT_CHARS
    }

    pub fn get(&self, text: &str) -> Option<Arc<[Pcm]>> {
        self.lock().entries.get(text).cloned()
    }

    /// Keeps the whole speech for `text`, evicting the oldest as needed.
    pub fn put(&self, text: &str, chunks: Vec<Pcm>) {
        let size: usize = chunks.iter().map(|c| c.samples.len() * 2).sum();
        if !self.wants(text) || size > self.max_bytes {
            return;
        }
        let mut inner = self.lock();
        if inner.entries.contains_key(text) {
            return;
        }
        while inner.bytes + size > self.max_bytes {
            let Some(oldest) = inner.order.pop_front() else { break };
            if let Some(gone) = inner.entries.remove(&oldest) {
                inner.bytes -= gone.iter().map(|c| c.samples.len() * 2).sum::<usize>();
            }
        }
        inner.bytes += size;
        inner.order.push_back(text.to_string());
        inner.entries.insert(text.to_string(), chunks.into());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speech(samples: usize) -> Vec<Pcm> {
        vec![Pcm { samples: vec![1; samples], rate: 24_000 }]
    }

    #[test]
    fn keeps_short_texts_within_its_bytes_and_forgets_the_oldest_first() {
        let cache = SpeechCache::new(1000);
        cache.put("Hello!", speech(300)); // 600 bytes
        assert_eq!(cache.get("Hello!").unwrap()[0].samples.len(), 300);
        cache.put("One moment.", speech(200)); // 400 bytes: full
        assert!(cache.get("Hello!").is_some() && cache.get("One moment.").is_some());
        cache.put("Goodbye.", speech(100)); // the oldest goes
        assert!(cache.get("Hello!").is_none());
        assert!(cache.get("One moment.").is_some() && cache.get("Goodbye.").is_some());
        cache.put(&"long ".repeat(100), speech(10));
        assert!(cache.get(&"long ".repeat(100)).is_none(), "a reply, not a phrase");
        cache.put("Too big.", speech(600));
        assert!(cache.get("Too big.").is_none());
        let off = SpeechCache::new(0);
        off.put("Hello!", speech(10));
        assert!(off.get("Hello!").is_none());
    }
}
