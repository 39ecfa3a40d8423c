//! Bounded multi-producer multi-consumer queue of `u64` values over a region: Dmitry Vyukov's
//! bounded MPMC queue (per-cell sequence stamps), with 64-bit positions so stamps never wrap in
//! practice (2⁶⁴ operations).
//!
//! Region bytes at `base` (see `docs/LAYOUT.md`):
//!
//! | offset | field |
//! |---|---|
//! | 0 | `enqueue_pos` (u64) |
//! | 128 | `dequeue_pos` (u64) |
//! | 256 | `capacity` cells of `{ stamp: u64, value: u64 }` |
//!
//! Cell `i` starts with stamp `i`. A producer that wins position `p` (CAS on `enqueue_pos`)
//! finds stamp `p`, writes the value and stores stamp `p + 1` (Release); a consumer that wins
//! `p` finds stamp `p + 1`, reads the value and stores stamp `p + capacity` (Release), handing
//! the cell to the producer of the next lap.
//!
//! Progress: lock-free between winning a position and stamping the cell, *blocking* for others
//! on that one cell — a process that dies in that window wedges the cell. The slot protocol in
//! [`crate::segment`] therefore does not use this queue for anything a crash must not wedge;
//! it serves in-process and same-fate uses (e.g. a thread pool inside one worker process).
//! Retries are bounded ([`crate::segment::RETRY_LIMIT`]) so hostile memory cannot hang a caller.

use crate::layout::LINE;
use crate::region::Region;
use crate::segment::RETRY_LIMIT;
use crate::spsc::RingError;
use crate::sync::{AtomicU64, Ordering};

/// Placement of an MPMC queue in a region.
#[derive(Clone, Copy, Debug)]
pub struct Mpmc<'a> {
    region: Region<'a>,
    base: u64,
    capacity: u64,
}

impl<'a> Mpmc<'a> {
    /// Bytes a queue of `capacity` cells occupies.
    pub const fn size(capacity: u32) -> u64 {
        2 * LINE + capacity as u64 * 16
    }

    /// Views the queue at `base` in `region` (no initialisation).
    ///
    /// # Errors
    /// [`RingError::BadGeometry`] when it does not fit, `base` is not 128-aligned or the capacity
    /// is below 2 (with one cell, a full cell's stamp `p + 1` equals the next position's free
    /// stamp, so the queue cannot tell full from free; proptest found this).
    pub fn at(region: Region<'a>, base: u64, capacity: u32) -> Result<Self, RingError> {
        let fits = base.checked_add(Self::size(capacity)).is_some_and(|e| e <= region.len() as u64);
        if !fits || base % LINE != 0 || capacity < 2 {
            return Err(RingError::BadGeometry);
        }
        Ok(Mpmc { region, base, capacity: u64::from(capacity) })
    }

    /// Initialises positions and stamps (before any concurrent use).
    ///
    /// # Examples
    /// ```
    /// use framebus_core::mpmc::Mpmc;
    /// let heap = framebus_core::HeapRegion::zeroed(4096);
    /// let q = Mpmc::at(heap.region(), 0, 4).unwrap();
    /// q.init();
    /// q.push(9).unwrap();
    /// assert_eq!(q.pop(), Ok(9));
    /// ```
    pub fn init(&self) {
        self.word(0).store(0, Ordering::Relaxed);
        self.word(LINE).store(0, Ordering::Relaxed);
        for i in 0..self.capacity {
            // Release on each stamp: pairs with the Acquire stamp loads of the first users.
            self.stamp(i).store(i, Ordering::Release);
        }
    }

    fn word(&self, off: u64) -> &'a AtomicU64 {
        self.region.word((self.base + off) as usize)
    }
    fn stamp(&self, pos: u64) -> &'a AtomicU64 {
        self.word(2 * LINE + (pos % self.capacity) * 16)
    }
    fn value(&self, pos: u64) -> &'a AtomicU64 {
        self.word(2 * LINE + (pos % self.capacity) * 16 + 8)
    }

    /// Enqueues `v`.
    ///
    /// # Errors
    /// [`RingError::Full`]; [`RingError::Corrupt`] when positions or stamps are inconsistent.
    pub fn push(&self, v: u64) -> Result<(), RingError> {
        let enq = self.word(0);
        let mut pos = enq.load(Ordering::Relaxed);
        for _ in 0..RETRY_LIMIT {
            // SYNC POINT mpmc-free: pairs with the Release stamp store in `pop` (cell emptied).
            let stamp = self.stamp(pos).load(Ordering::Acquire);
            let diff = stamp.wrapping_sub(pos) as i64;
            if diff == 0 {
                // Relaxed: the position only arbitrates; data travels through the stamp.
                match enq.compare_exchange_weak(pos, pos.wrapping_add(1), Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => {
                        self.value(pos).store(v, Ordering::Relaxed);
                        // SYNC POINT mpmc-full: pairs with the Acquire stamp load in `pop`.
                        self.stamp(pos).store(pos.wrapping_add(1), Ordering::Release);
                        return Ok(());
                    }
                    Err(now) => pos = now,
                }
            } else if diff < 0 {
                // The cell still holds last lap's value: full (or a consumer is mid-pop).
                if diff < -(self.capacity as i64) {
                    return Err(RingError::Corrupt);
                }
                return Err(RingError::Full);
            } else {
                // Relaxed: a fresh starting point; the stamp's Acquire load orders what matters.
                pos = enq.load(Ordering::Relaxed);
            }
        }
        Err(RingError::Corrupt)
    }

    /// Dequeues the oldest value.
    ///
    /// # Errors
    /// [`RingError::Empty`]; [`RingError::Corrupt`] when positions or stamps are inconsistent.
    pub fn pop(&self) -> Result<u64, RingError> {
        let deq = self.word(LINE);
        let mut pos = deq.load(Ordering::Relaxed);
        for _ in 0..RETRY_LIMIT {
            // SYNC POINT mpmc-full: pairs with the Release stamp store in `push`.
            let stamp = self.stamp(pos).load(Ordering::Acquire);
            let diff = stamp.wrapping_sub(pos.wrapping_add(1)) as i64;
            if diff == 0 {
                match deq.compare_exchange_weak(pos, pos.wrapping_add(1), Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => {
                        // Relaxed: ordered by the Acquire stamp load above (SYNC POINT mpmc-full).
                        let v = self.value(pos).load(Ordering::Relaxed);
                        // SYNC POINT mpmc-free: pairs with the Acquire stamp load in `push`.
                        self.stamp(pos).store(pos.wrapping_add(self.capacity), Ordering::Release);
                        return Ok(v);
                    }
                    Err(now) => pos = now,
                }
            } else if diff < 0 {
                if diff < -(self.capacity as i64) {
                    return Err(RingError::Corrupt);
                }
                return Err(RingError::Empty);
            } else {
                // Relaxed: a fresh starting point; the stamp's Acquire load orders what matters.
                pos = deq.load(Ordering::Relaxed);
            }
        }
        Err(RingError::Corrupt)
    }
}
