//! Single-producer single-consumer ring of fixed-size records over a region (Lamport's ring with
//! cached peer indices, as in rtrb). Records are `record_words` 64-bit words, stored as atomics
//! so that a hostile peer can garble records but never cause undefined behaviour.
//!
//! Region bytes at `base` (all little-endian, see `docs/LAYOUT.md`):
//!
//! | offset | field | written by |
//! |---|---|---|
//! | 0 | `head`: records consumed (u64, monotonic) | consumer only |
//! | 128 | `tail`: records produced (u64, monotonic) | producer only |
//! | 256 | `capacity × record_words` words of records | producer |
//!
//! Invariant: `0 ≤ tail − head ≤ capacity`. The producer writes record `tail % capacity`, then
//! publishes `tail + 1` with Release; the consumer reads the record after an Acquire load of
//! `tail`, then publishes `head + 1` with Release so the producer may overwrite it. A value
//! outside the invariant read from shared memory is reported as [`RingError::Corrupt`].
//!
//! Crash behaviour: a producer that dies mid-push leaves `tail` unchanged (the record is simply
//! not there); a consumer that dies leaves `head`, and a new consumer continues from it.
//! Progress: wait-free for both sides.

use core::fmt;

use crate::layout::LINE;
use crate::region::Region;
use crate::sync::{AtomicU64, Ordering};

/// Why a ring operation did nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// Nothing to pop.
    Empty,
    /// No room to push.
    Full,
    /// The indices in shared memory break the ring invariant.
    Corrupt,
    /// Record length differs from the ring's record size.
    BadRecord,
    /// The ring does not fit the region at that offset, or the capacity is not a power of two.
    BadGeometry,
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "ring is empty",
            Self::Full => "ring is full",
            Self::Corrupt => "ring indices in shared memory are inconsistent: corrupt or hostile peer",
            Self::BadRecord => "record length does not match the ring's record size",
            Self::BadGeometry => "ring does not fit in the region (or capacity is not a power of two)",
        })
    }
}
impl core::error::Error for RingError {}

/// Placement of a ring in a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpscLayout {
    /// Byte offset of the ring (multiple of 128).
    pub base: u64,
    /// Records (a power of two).
    pub capacity: u32,
    /// Words per record (≥ 1).
    pub record_words: u32,
}

impl SpscLayout {
    /// Bytes the ring occupies.
    pub const fn size(&self) -> u64 {
        2 * LINE + self.capacity as u64 * self.record_words as u64 * 8
    }

    fn check(&self, region: &Region<'_>) -> Result<(), RingError> {
        let fits = self.base.checked_add(self.size()).is_some_and(|e| e <= region.len() as u64);
        if !fits || self.base % LINE != 0 || !self.capacity.is_power_of_two() || self.record_words == 0 {
            return Err(RingError::BadGeometry);
        }
        Ok(())
    }

    fn word<'a>(&self, region: &Region<'a>, off: u64) -> &'a AtomicU64 {
        region.word((self.base + off) as usize)
    }

    fn record<'a>(&self, region: &Region<'a>, pos: u64, w: u32) -> &'a AtomicU64 {
        let idx = pos & (u64::from(self.capacity) - 1);
        self.word(region, 2 * LINE + (idx * u64::from(self.record_words) + u64::from(w)) * 8)
    }

    /// Zeroes the ring's indices (before any endpoint uses it).
    ///
    /// # Errors
    /// [`RingError::BadGeometry`].
    pub fn init(&self, region: &Region<'_>) -> Result<(), RingError> {
        self.check(region)?;
        self.word(region, 0).store(0, Ordering::Relaxed);
        // Release: a later Acquire of `tail` by the consumer sees the zeroed head too.
        self.word(region, LINE).store(0, Ordering::Release);
        Ok(())
    }

    /// The producer endpoint (the caller ensures there is one).
    ///
    /// # Errors
    /// [`RingError::BadGeometry`].
    pub fn producer<'a>(&self, region: Region<'a>) -> Result<SpscProducer<'a>, RingError> {
        self.check(&region)?;
        let tail = self.word(&region, LINE).load(Ordering::Acquire);
        Ok(SpscProducer { ring: *self, region, tail, cached_head: self.word(&region, 0).load(Ordering::Acquire) })
    }

    /// The consumer endpoint (the caller ensures there is one).
    ///
    /// # Errors
    /// [`RingError::BadGeometry`].
    pub fn consumer<'a>(&self, region: Region<'a>) -> Result<SpscConsumer<'a>, RingError> {
        self.check(&region)?;
        let head = self.word(&region, 0).load(Ordering::Acquire);
        Ok(SpscConsumer { ring: *self, region, head, cached_tail: self.word(&region, LINE).load(Ordering::Acquire) })
    }
}

/// Writing end of an SPSC ring.
#[derive(Debug)]
pub struct SpscProducer<'a> {
    ring: SpscLayout,
    region: Region<'a>,
    tail: u64,
    cached_head: u64,
}

impl SpscProducer<'_> {
    /// Appends one record.
    ///
    /// # Examples
    /// ```
    /// use framebus_core::spsc::SpscLayout;
    /// let heap = framebus_core::HeapRegion::zeroed(4096);
    /// let ring = SpscLayout { base: 0, capacity: 4, record_words: 2 };
    /// ring.init(&heap.region()).unwrap();
    /// let (mut tx, mut rx) = (ring.producer(heap.region()).unwrap(), ring.consumer(heap.region()).unwrap());
    /// tx.push(&[1, 2]).unwrap();
    /// let mut out = [0; 2];
    /// rx.pop(&mut out).unwrap();
    /// assert_eq!(out, [1, 2]);
    /// ```
    ///
    /// # Errors
    /// [`RingError::Full`], [`RingError::BadRecord`], [`RingError::Corrupt`].
    pub fn push(&mut self, record: &[u64]) -> Result<(), RingError> {
        if record.len() != self.ring.record_words as usize {
            return Err(RingError::BadRecord);
        }
        let cap = u64::from(self.ring.capacity);
        if self.tail.wrapping_sub(self.cached_head) >= cap {
            // SYNC POINT spsc-head: pairs with the Release store in `SpscConsumer::pop`; the
            // consumer finished reading the record we are about to overwrite.
            self.cached_head = self.ring.word(&self.region, 0).load(Ordering::Acquire);
            let used = self.tail.wrapping_sub(self.cached_head);
            if used > cap {
                return Err(RingError::Corrupt);
            }
            if used == cap {
                return Err(RingError::Full);
            }
        }
        for (i, &v) in record.iter().enumerate() {
            // Relaxed: published by the Release store of `tail` below (SYNC POINT spsc-tail).
            self.ring.record(&self.region, self.tail, i as u32).store(v, Ordering::Relaxed);
        }
        self.tail = self.tail.wrapping_add(1);
        // SYNC POINT spsc-tail: pairs with the Acquire load in `SpscConsumer::pop`.
        self.ring.word(&self.region, LINE).store(self.tail, Ordering::Release);
        Ok(())
    }
}

/// Reading end of an SPSC ring.
#[derive(Debug)]
pub struct SpscConsumer<'a> {
    ring: SpscLayout,
    region: Region<'a>,
    head: u64,
    cached_tail: u64,
}

impl SpscConsumer<'_> {
    /// Removes the oldest record into `out`.
    ///
    /// # Errors
    /// [`RingError::Empty`], [`RingError::BadRecord`], [`RingError::Corrupt`].
    pub fn pop(&mut self, out: &mut [u64]) -> Result<(), RingError> {
        if out.len() != self.ring.record_words as usize {
            return Err(RingError::BadRecord);
        }
        if self.head == self.cached_tail {
            // SYNC POINT spsc-tail: pairs with the Release store in `SpscProducer::push`.
            self.cached_tail = self.ring.word(&self.region, LINE).load(Ordering::Acquire);
            if self.head == self.cached_tail {
                return Err(RingError::Empty);
            }
        }
        if self.cached_tail.wrapping_sub(self.head) > u64::from(self.ring.capacity) {
            return Err(RingError::Corrupt);
        }
        for (i, o) in out.iter_mut().enumerate() {
            // Relaxed: ordered after the producer's stores by the Acquire load of `tail`.
            *o = self.ring.record(&self.region, self.head, i as u32).load(Ordering::Relaxed);
        }
        self.head = self.head.wrapping_add(1);
        // SYNC POINT spsc-head: pairs with the Acquire load in `SpscProducer::push`.
        self.ring.word(&self.region, 0).store(self.head, Ordering::Release);
        Ok(())
    }

    /// Records waiting (as of the last look at the producer's index).
    pub fn len_hint(&self) -> u64 {
        self.cached_tail.wrapping_sub(self.head)
    }
}
