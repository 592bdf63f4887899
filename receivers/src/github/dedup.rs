//! Replay protection: the delivery ids (`X-GitHub-Delivery`) of deliveries whose data every
//! pipeline accepted, bounded in count (oldest forgotten first) and in time (`ttl`). An id is
//! remembered only once its data was accepted downstream: a delivery refused with `503` is not
//! remembered, so GitHub's redelivery of it is processed. While a delivery is being processed
//! its id is "in flight"; a concurrent copy is answered `503` (retry) rather than emitted twice
//! or dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What the cache says about a delivery id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not seen (or forgotten): process it. The id is now in flight.
    New,
    /// Accepted before, within the ttl: answer `200`, emit nothing.
    Duplicate,
    /// Another copy is being processed right now.
    InFlight,
}

#[derive(Debug, Default)]
struct State {
    /// Accepted ids and when they were accepted.
    accepted: HashMap<String, Instant>,
    /// Accepted ids in acceptance order (an id may appear more than once after it expired and
    /// came back; only the entry matching `accepted`'s time counts).
    order: VecDeque<(String, Instant)>,
    in_flight: HashSet<String>,
}

/// The bounded, time-limited set of accepted delivery ids. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct DeliveryCache {
    state: Arc<Mutex<State>>,
    max_entries: usize,
    ttl: Duration,
}

impl DeliveryCache {
    /// A cache of at most `max_entries` ids, each kept for `ttl`; `max_entries == 0` remembers
    /// nothing.
    pub fn new(max_entries: usize, ttl: Duration) -> DeliveryCache {
        DeliveryCache {
            state: Arc::new(Mutex::new(State::default())),
            max_entries,
            ttl,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether replay protection is on.
    pub fn enabled(&self) -> bool {
        self.max_entries > 0
    }

    /// Looks `id` up at `now`; a [`Seen::New`] id is marked in flight until the returned guard
    /// is [`InFlightGuard::accept`]ed (remembered) or dropped (forgotten).
    pub fn begin(&self, id: &str, now: Instant) -> (Seen, Option<InFlightGuard>) {
        if !self.enabled() {
            return (Seen::New, None);
        }
        let mut s = self.lock();
        self.expire(&mut s, now);
        if s.accepted.contains_key(id) {
            return (Seen::Duplicate, None);
        }
        if !s.in_flight.insert(id.to_string()) {
            return (Seen::InFlight, None);
        }
        (
            Seen::New,
            Some(InFlightGuard {
                cache: self.clone(),
                id: Some(id.to_string()),
            }),
        )
    }

    /// How many accepted ids are remembered.
    pub fn len(&self) -> usize {
        self.lock().accepted.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn expire(&self, s: &mut State, now: Instant) {
        while let Some((id, at)) = s.order.front() {
            let expired = now.saturating_duration_since(*at) >= self.ttl;
            if !expired && s.order.len() <= self.max_entries {
                break;
            }
            if s.accepted.get(id) == Some(at) {
                s.accepted.remove(id);
            }
            s.order.pop_front();
        }
    }

    fn finish(&self, id: String, accepted_at: Option<Instant>) {
        let mut s = self.lock();
        s.in_flight.remove(&id);
        if let Some(now) = accepted_at {
            s.accepted.insert(id.clone(), now);
            s.order.push_back((id, now));
            // Over the bound: forget the oldest.
            self.expire(&mut s, now);
        }
    }
}

/// A delivery id in flight; see [`DeliveryCache::begin`].
#[derive(Debug)]
pub struct InFlightGuard {
    cache: DeliveryCache,
    id: Option<String>,
}

impl InFlightGuard {
    /// Every pipeline accepted the delivery's data: remember its id from `now`.
    pub fn accept(mut self, now: Instant) {
        if let Some(id) = self.id.take() {
            self.cache.finish(id, Some(now));
        }
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        // Not accepted (refused, failed, or the request was abandoned): forget it.
        if let Some(id) = self.id.take() {
            self.cache.finish(id, None);
        }
    }
}
