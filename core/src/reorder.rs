//! Bounded reorder window: results of parallel workers arrive out of order; the window releases
//! them in sequence order, and gives up on a missing sequence number once a later result has
//! waited `timeout_ns` (so one slow or dead worker cannot stall the output).
//!
//! Storage is a fixed `heapless::Vec` of `N` entries indexed by `seq % N`; nothing allocates.
//!
//! Rules (each is tested, and modelled under loom where the window is shared):
//! - Output is strictly increasing in `seq`, with every sequence number from the first to the
//!   last reported exactly once, either as [`Released::Frame`] or [`Released::Skipped`].
//! - A missing `seq` is skipped when (a) it is marked with [`ReorderWindow::skip`] (known
//!   dropped), (b) the oldest waiting later result has waited `timeout_ns`, or (c) a result
//!   arrives `N` or more ahead, which forces the head out to make room.
//! - A result for a `seq` already released or skipped is handed back as [`Rejected::Late`].

use heapless::Vec;

/// One output of the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Released<T> {
    /// The result for `seq`.
    Frame(u64, T),
    /// `seq` was given up on.
    Skipped(u64, SkipReason),
}

/// Why a sequence number was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// Marked as dropped by the caller.
    Marked,
    /// A later result waited longer than the deadline.
    Deadline,
    /// The window was full.
    Overflow,
}

/// A result the window did not take, handed back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejected<T> {
    /// Its sequence number was already released or skipped.
    Late(u64, T),
    /// A result for this sequence number is already waiting.
    Duplicate(u64, T),
}

#[derive(Clone, Debug)]
enum Entry<T> {
    Empty,
    Skip,
    Value { seq: u64, arrived_ns: u64, value: T },
}

/// Counters of a [`ReorderWindow`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReorderStats {
    /// Results released in order.
    pub released: u64,
    /// Sequence numbers skipped, by reason: marked, deadline, overflow.
    pub skipped_marked: u64,
    /// See `skipped_marked`.
    pub skipped_deadline: u64,
    /// See `skipped_marked`.
    pub skipped_overflow: u64,
    /// Results rejected as late.
    pub late: u64,
}

/// A reorder window of `N` sequence numbers.
#[derive(Debug)]
pub struct ReorderWindow<T, const N: usize> {
    entries: Vec<Entry<T>, N>,
    next: u64,
    timeout_ns: u64,
    stats: ReorderStats,
}

impl<T, const N: usize> ReorderWindow<T, N> {
    /// A window expecting `first` next, giving up on a gap after `timeout_ns`.
    ///
    /// # Examples
    /// ```
    /// use framebus_core::reorder::{Released, ReorderWindow, SkipReason};
    /// let mut w: ReorderWindow<&str, 8> = ReorderWindow::new(0, 100);
    /// let mut out = Vec::new();
    /// w.insert(1, "b", 0, |r| out.push(r)).unwrap();
    /// w.insert(0, "a", 5, |r| out.push(r)).unwrap();
    /// w.insert(3, "d", 10, |r| out.push(r)).unwrap(); // 2 is missing
    /// w.poll(200, |r| out.push(r)); // 3 has waited > 100 ns: give up on 2
    /// assert_eq!(out, [Released::Frame(0, "a"), Released::Frame(1, "b"),
    ///                  Released::Skipped(2, SkipReason::Deadline), Released::Frame(3, "d")]);
    /// ```
    ///
    /// # Panics
    /// When `N` is 0.
    pub fn new(first: u64, timeout_ns: u64) -> Self {
        assert!(N > 0, "a reorder window needs at least one entry");
        let mut entries = Vec::new();
        while entries.push(Entry::Empty).is_ok() {}
        ReorderWindow { entries, next: first, timeout_ns, stats: ReorderStats::default() }
    }

    /// The next sequence number the window will release.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Counters so far.
    pub fn stats(&self) -> ReorderStats {
        self.stats
    }

    /// Results waiting for an earlier sequence number.
    pub fn waiting(&self) -> usize {
        self.entries.iter().filter(|e| matches!(e, Entry::Value { .. })).count()
    }

    fn idx(seq: u64) -> usize {
        (seq % N as u64) as usize
    }

    /// Offers the result for `seq`, received at `now_ns`; emits everything that became
    /// releasable, in order.
    ///
    /// # Errors
    /// [`Rejected`] hands the value back when it is late or a duplicate.
    pub fn insert(
        &mut self,
        seq: u64,
        value: T,
        now_ns: u64,
        mut emit: impl FnMut(Released<T>),
    ) -> Result<(), Rejected<T>> {
        if seq < self.next {
            self.stats.late += 1;
            return Err(Rejected::Late(seq, value));
        }
        while seq >= self.next + N as u64 {
            self.pop_head(SkipReason::Overflow, &mut emit);
        }
        let e = &mut self.entries[Self::idx(seq)];
        if matches!(e, Entry::Value { .. }) {
            return Err(Rejected::Duplicate(seq, value));
        }
        *e = Entry::Value { seq, arrived_ns: now_ns, value };
        self.poll(now_ns, emit);
        Ok(())
    }

    /// Marks `seq` as known-missing (e.g. dropped by the producer); emits what became releasable.
    pub fn skip(&mut self, seq: u64, now_ns: u64, mut emit: impl FnMut(Released<T>)) {
        if seq < self.next {
            return;
        }
        while seq >= self.next + N as u64 {
            self.pop_head(SkipReason::Overflow, &mut emit);
        }
        let e = &mut self.entries[Self::idx(seq)];
        if matches!(e, Entry::Empty) {
            *e = Entry::Skip;
        }
        self.poll(now_ns, emit);
    }

    /// Releases what is in order, and gives up on missing heads whose deadline passed.
    pub fn poll(&mut self, now_ns: u64, mut emit: impl FnMut(Released<T>)) {
        loop {
            match &self.entries[Self::idx(self.next)] {
                Entry::Value { .. } | Entry::Skip => self.pop_head(SkipReason::Marked, &mut emit),
                Entry::Empty => {
                    let oldest = self.entries.iter().filter_map(|e| match e {
                        Entry::Value { arrived_ns, .. } => Some(*arrived_ns),
                        _ => None,
                    });
                    match oldest.min() {
                        Some(t) if now_ns.saturating_sub(t) >= self.timeout_ns => {
                            self.pop_head(SkipReason::Deadline, &mut emit)
                        }
                        _ => return,
                    }
                }
            }
        }
    }

    /// Releases the head whatever its state (end of stream: call until [`Self::waiting`] is 0).
    pub fn force_head(&mut self, mut emit: impl FnMut(Released<T>)) {
        self.pop_head(SkipReason::Deadline, &mut emit);
    }

    fn pop_head(&mut self, reason: SkipReason, emit: &mut impl FnMut(Released<T>)) {
        let seq = self.next;
        let e = core::mem::replace(&mut self.entries[Self::idx(seq)], Entry::Empty);
        self.next += 1;
        match e {
            Entry::Value { seq: s, value, .. } => {
                debug_assert_eq!(s, seq, "window entry out of place");
                self.stats.released += 1;
                emit(Released::Frame(s, value));
            }
            Entry::Skip => {
                self.stats.skipped_marked += 1;
                emit(Released::Skipped(seq, SkipReason::Marked));
            }
            Entry::Empty => {
                match reason {
                    SkipReason::Overflow => self.stats.skipped_overflow += 1,
                    _ => self.stats.skipped_deadline += 1,
                }
                emit(Released::Skipped(
                    seq,
                    if reason == SkipReason::Overflow { SkipReason::Overflow } else { SkipReason::Deadline },
                ));
            }
        }
    }
}
