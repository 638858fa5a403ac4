//! What a client may hold: connections in all and per address (so the
//! process never runs out of descriptors and one address cannot take them
//! all: `/healthz` stays reachable), and failed admin authentications per
//! address (a token cannot be guessed at thousands of tries a second).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotline_common::Lock;

/// Open connections, counted from accept until the last of the HTTP
/// connection and the call it upgraded to ends.
pub struct Connections {
    max_total: usize,
    max_per_ip: usize,
    state: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Total,
    PerAddress,
}

impl Refusal {
    pub fn name(self) -> &'static str {
        match self {
            Refusal::Total => "connection limit",
            Refusal::PerAddress => "per-address limit",
        }
    }
}

/// One admitted connection; dropping it frees its place.
pub struct ConnectionGuard {
    owner: Arc<Connections>,
    ip: IpAddr,
}

impl Connections {
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Connections> {
        Arc::new(Connections { max_total, max_per_ip, state: Mutex::new(Counts::default()) })
    }

    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionGuard, Refusal> {
        let mut counts = self.state.locked();
        if counts.total >= self.max_total {
            return Err(Refusal::Total);
        }
        let mine = counts.per_ip.entry(ip).or_default();
        if *mine >= self.max_per_ip {
            return Err(Refusal::PerAddress);
        }
        *mine += 1;
        counts.total += 1;
        Ok(ConnectionGuard { owner: self.clone(), ip })
    }

    pub fn open(&self) -> usize {
        self.state.locked().total
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut counts = self.owner.state.locked();
        counts.total -= 1;
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

/// Where a request came from; it holds its connection's place, and the
/// upgrade hands it on to the call.
#[derive(Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    _connection: Arc<ConnectionGuard>,
}

impl Peer {
    pub fn new(addr: SocketAddr, connection: Arc<ConnectionGuard>) -> Peer {
        Peer { addr, _connection: connection }
    }
}

/// Failed admin authentications: an address that fails `max` times within
/// `window` is refused (429) until its window ends.
pub struct AuthFailures {
    max: u32,
    window: Duration,
    state: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

/// Addresses remembered before expired ones are swept out.
const REMEMBERED: usize = 10_000;

impl AuthFailures {
    pub fn new(max: u32, window: Duration) -> AuthFailures {
        AuthFailures { max, window, state: Mutex::new(HashMap::new()) }
    }

    /// How long this address must wait, if it is locked out.
    pub fn locked(&self, ip: IpAddr) -> Option<Duration> {
        let state = self.state.locked();
        let &(count, since) = state.get(&ip)?;
        let left = self.window.checked_sub(since.elapsed())?;
        (count >= self.max).then_some(left)
    }

    pub fn failed(&self, ip: IpAddr) {
        let mut state = self.state.locked();
        if state.len() >= REMEMBERED {
            let window = self.window;
            state.retain(|_, (_, since)| since.elapsed() < window);
        }
        let entry = state.entry(ip).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_in_all_and_per_address_until_dropped() {
        let c = Connections::new(3, 2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let a1 = c.admit(a).unwrap();
        let _a2 = c.admit(a).unwrap();
        assert_eq!(c.admit(a).err(), Some(Refusal::PerAddress));
        let _b1 = c.admit(b).unwrap();
        assert_eq!(c.admit(b).err(), Some(Refusal::Total));
        drop(a1);
        assert_eq!(c.open(), 2);
        assert!(c.admit(a).is_ok());
    }

    #[test]
    fn an_address_that_keeps_failing_waits_out_its_window() {
        let f = AuthFailures::new(3, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..2 {
            f.failed(ip);
        }
        assert_eq!(f.locked(ip), None);
        f.failed(ip);
        assert!(f.locked(ip).is_some_and(|d| d <= Duration::from_secs(60)));
        assert_eq!(f.locked("10.0.0.2".parse().unwrap()), None);
    }
}
