//! A small answer cache with CLOCK eviction: positive answers and negative answers
//! (NXDOMAIN / NODATA, RFC 2308), TTLs capped (CoreDNS `cache 30`). Entries keep the wire bytes
//! and the offsets of their TTL fields, so a hit is a copy plus a few 4-byte writes.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::wire::{self, Layout, OptRecord, Question};

/// Cache identity: the question plus the bits that change what an upstream answers
/// (EDNS: an answer to a query without OPT must not carry one, RFC 6891 section 7; DO: DNSSEC
/// records included, RFC 3225; CD: validation skipped, RFC 4035 section 3.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CacheKey {
    pub question: Question,
    pub edns: bool,
    pub dnssec_ok: bool,
    pub checking_disabled: bool,
}

/// Two writes into the keyed SipHash (clients fill this cache, so the hash stays keyed): the
/// name, then every other field in one word. The derived impl made seven (length prefix, name,
/// two u16, three bools), about 430 instructions per lookup.
impl Hash for CacheKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&self.question.name);
        state.write_u64(
            u64::from(self.question.qtype)
                | u64::from(self.question.qclass) << 16
                | u64::from(self.edns) << 32
                | u64::from(self.dnssec_ok) << 33
                | u64::from(self.checking_disabled) << 34,
        );
    }
}

/// A cache entry as seen, under the cache's lock, by [`ResponseCache::with_hit`].
pub(crate) struct Hit<'a> {
    pub bytes: &'a [u8],
    pub ttl_offsets: &'a [u16],
    pub question_end: usize,
    /// Whole seconds since it was stored, to subtract from every TTL.
    pub age: u32,
}

/// A cached answer as handed out on a hit.
pub(crate) struct CachedAnswer {
    pub bytes: Arc<[u8]>,
    pub ttl_offsets: Arc<[u16]>,
    pub question_end: usize,
    pub opt: Option<OptRecord>,
    /// Whole seconds since it was stored, to subtract from every TTL.
    pub age: u32,
}

struct Entry {
    key: CacheKey,
    bytes: Arc<[u8]>,
    ttl_offsets: Arc<[u16]>,
    question_end: usize,
    opt: Option<OptRecord>,
    stored: Instant,
    expires: Instant,
    referenced: bool,
}

struct Clock {
    slots: Vec<Entry>,
    index: HashMap<CacheKey, usize>,
    hand: usize,
}

pub(crate) struct ResponseCache {
    capacity: usize,
    clock: Mutex<Clock>,
}

/// How long `response` may be cached, or None when it must not be: TC set, an rcode other than
/// NOERROR / NXDOMAIN, a negative answer without an SOA to bound it (RFC 2308 section 5), or a
/// TTL of zero.
pub(crate) fn cacheable_ttl(response: &[u8], layout: &Layout, cap: u32) -> Option<u32> {
    if wire::is_truncated(response) {
        return None;
    }
    let ttl = match wire::rcode(response) {
        wire::RCODE_NOERROR if layout.answer_count > 0 => layout.min_ttl?,
        wire::RCODE_NOERROR | wire::RCODE_NXDOMAIN => layout.negative_ttl?,
        _ => return None,
    };
    Some(ttl.min(cap)).filter(|&t| t > 0)
}

impl ResponseCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            clock: Mutex::new(Clock {
                slots: Vec::new(),
                index: HashMap::new(),
                hand: 0,
            }),
        }
    }

    pub(crate) fn get(&self, key: &CacheKey, now: Instant) -> Option<CachedAnswer> {
        if self.capacity == 0 {
            return None;
        }
        // A poisoned lock only means another query panicked mid-update of plain data; the
        // entries are still consistent enough to serve or overwrite.
        let mut clock = self.clock.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = *clock.index.get(key)?;
        let entry = &mut clock.slots[slot];
        if now >= entry.expires {
            return None;
        }
        entry.referenced = true;
        let age = now.saturating_duration_since(entry.stored).as_secs();
        Some(CachedAnswer {
            bytes: Arc::clone(&entry.bytes),
            ttl_offsets: Arc::clone(&entry.ttl_offsets),
            question_end: entry.question_end,
            opt: entry.opt,
            age: u32::try_from(age).unwrap_or(u32::MAX),
        })
    }

    /// Runs `f` on the entry for `key` under the lock, when there is one that has not expired:
    /// the bytes are read where they are, without the two `Arc` clones (atomic increments on
    /// lines every worker touches) and the copy out that [`ResponseCache::get`] makes.
    pub(crate) fn with_hit<R>(
        &self,
        key: &CacheKey,
        now: Instant,
        f: impl FnOnce(Hit<'_>) -> R,
    ) -> Option<R> {
        if self.capacity == 0 {
            return None;
        }
        let mut clock = self.clock.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = *clock.index.get(key)?;
        let entry = &mut clock.slots[slot];
        if now >= entry.expires {
            return None;
        }
        entry.referenced = true;
        let age = now.saturating_duration_since(entry.stored).as_secs();
        Some(f(Hit {
            bytes: &entry.bytes,
            ttl_offsets: &entry.ttl_offsets,
            question_end: entry.question_end,
            age: u32::try_from(age).unwrap_or(u32::MAX),
        }))
    }

    /// Stores `response` (TTLs already capped) for `ttl` seconds.
    pub(crate) fn insert(
        &self,
        key: CacheKey,
        response: &[u8],
        layout: &Layout,
        ttl: u32,
        now: Instant,
    ) {
        if self.capacity == 0 {
            return;
        }
        let mut bytes = response.to_vec();
        wire::set_id(&mut bytes, 0);
        let entry = Entry {
            key: key.clone(),
            bytes: bytes.into(),
            ttl_offsets: layout.ttl_offsets.clone().into(),
            question_end: layout.question_end,
            opt: layout.opt,
            stored: now,
            expires: now + Duration::from_secs(u64::from(ttl)),
            referenced: false,
        };
        let mut clock = self.clock.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(&slot) = clock.index.get(&key) {
            clock.slots[slot] = entry;
            return;
        }
        if clock.slots.len() < self.capacity {
            let slot = clock.slots.len();
            clock.slots.push(entry);
            clock.index.insert(key, slot);
            return;
        }
        let victim = clock.sweep(now);
        let old_key = std::mem::replace(&mut clock.slots[victim], entry).key;
        clock.index.remove(&old_key);
        clock.index.insert(key, victim);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.clock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .index
            .len()
    }
}

impl Clock {
    /// CLOCK (second chance): the first slot that is expired or not referenced since the hand
    /// last passed. Two full turns always find one, as the first turn clears every bit.
    fn sweep(&mut self, now: Instant) -> usize {
        let len = self.slots.len();
        for _ in 0..2 * len {
            let slot = self.hand;
            self.hand = (self.hand + 1) % len;
            let entry = &mut self.slots[slot];
            if entry.referenced && now < entry.expires {
                entry.referenced = false;
            } else {
                return slot;
            }
        }
        self.hand
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NOERROR answer for `a.` A with one A record of the given TTL.
    fn answer(name: u8, ttl: u32) -> (Vec<u8>, Layout) {
        let mut r = vec![
            0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 1, name, 0, 0, 1, 0, 1,
        ];
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        r.extend_from_slice(&ttl.to_be_bytes());
        r.extend_from_slice(&[0, 4, 192, 0, 2, 1]);
        let layout = Layout::parse(&r).unwrap();
        (r, layout)
    }

    fn key(layout: &Layout) -> CacheKey {
        CacheKey {
            question: layout.question.clone(),
            edns: false,
            dnssec_ok: false,
            checking_disabled: false,
        }
    }

    #[test]
    fn ttl_is_capped_and_zero_is_not_cached() {
        let (r, layout) = answer(b'a', 300);
        assert_eq!(cacheable_ttl(&r, &layout, 30), Some(30));
        let (r, layout) = answer(b'a', 0);
        assert_eq!(cacheable_ttl(&r, &layout, 30), None);
    }

    #[test]
    fn hit_reports_whole_seconds_of_age_and_expires() {
        let cache = ResponseCache::new(4);
        let (r, layout) = answer(b'a', 30);
        let t0 = Instant::now();
        cache.insert(key(&layout), &r, &layout, 10, t0);
        let hit = cache
            .get(&key(&layout), t0 + Duration::from_millis(2500))
            .unwrap();
        assert_eq!(hit.age, 2);
        assert_eq!(&hit.bytes[..2], &[0, 0]);
        assert!(cache
            .get(&key(&layout), t0 + Duration::from_secs(10))
            .is_none());
    }

    #[test]
    fn clock_evicts_an_unreferenced_entry_and_keeps_the_bound() {
        let cache = ResponseCache::new(2);
        let t0 = Instant::now();
        let (ra, la) = answer(b'a', 30);
        let (rb, lb) = answer(b'b', 30);
        let (rc, lc) = answer(b'c', 30);
        cache.insert(key(&la), &ra, &la, 30, t0);
        cache.insert(key(&lb), &rb, &lb, 30, t0);
        assert!(cache.get(&key(&la), t0).is_some());
        cache.insert(key(&lc), &rc, &lc, 30, t0);
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&key(&la), t0).is_some());
        assert!(cache.get(&key(&lb), t0).is_none());
        assert!(cache.get(&key(&lc), t0).is_some());
    }
}
