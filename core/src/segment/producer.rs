//! The producer: attaching (and taking over from a dead one), acquiring a slot under the
//! overflow policy, writing it, publishing it, and giving it back unpublished.

use super::*;
use crate::vocab::SkipCause;

impl<'a> Segment<'a> {
    /// Attaches the one producer, identified by a non-zero platform `token`.
    ///
    /// Bumps the epoch and recovers slots a previous (dead) producer left mid-write.
    ///
    /// # Examples
    /// ```
    /// # use framebus_core::*;
    /// # let spec = SegmentSpec::new(FrameGeometry::new(8, 8, PixelFormat::Gray8), 2);
    /// # let heap = HeapRegion::for_layout(&Layout::compute(&spec).unwrap());
    /// let seg = Segment::create(heap.region(), &spec, Creator::default()).unwrap();
    /// let p = seg.attach_producer(42).unwrap();
    /// assert!(seg.attach_producer(43).is_err()); // unique
    /// drop(p); // detaches
    /// assert!(seg.attach_producer(43).is_ok());
    /// ```
    ///
    /// # Errors
    /// [`AttachError::Busy`] when a producer is attached, [`AttachError::ZeroToken`] for token 0.
    pub fn attach_producer(&self, token: u64) -> Result<Producer<'a>, AttachError> {
        self.take_over_producer(token, 0)
    }

    /// Attaches a producer in place of the one with token `dead` (which the caller has found
    /// dead), or of none when `dead` is 0.
    ///
    /// # Errors
    /// As [`Segment::attach_producer`].
    pub fn take_over_producer(&self, token: u64, dead: u64) -> Result<Producer<'a>, AttachError> {
        if token == 0 {
            return Err(AttachError::ZeroToken);
        }
        if token == dead {
            // Taking over from ourselves would let recovery free our own slot mid-write.
            return Err(AttachError::Busy { owner: dead });
        }
        self.ctl(ctl::PRODUCER_OWNER)
            .compare_exchange(dead, token, Ordering::AcqRel, Ordering::Acquire)
            .map_err(|owner| AttachError::Busy { owner })?;
        // SYNC POINT producer-owner: the AcqRel CAS above pairs with the Release CAS in
        // `Producer::drop` (clean detach). After a crash there is no Release; what the dead
        // producer wrote reaches us only as far as its own Release stores did, which is why the
        // recovery below re-derives everything from the words consumers can see.
        let epoch = self.ctl(ctl::EPOCH).fetch_add(1, Ordering::AcqRel).wrapping_add(1);
        let write_pos = self.ctl(ctl::WRITE_POS).load(Ordering::Acquire);
        // Counters: `next_seq = write_pos + dropped_newest` holds between operations. The dead
        // producer stores `dropped_newest` before `next_seq` and `next_seq` before `write_pos`,
        // so a crash leaves `next_seq` at or above the sum, never below: sequence numbers it
        // gave out are never reissued, and the ones it never published count as dropped.
        let dropped = self.ctl(ctl::DROPPED_NEWEST);
        let floor = write_pos.wrapping_add(dropped.load(Ordering::Acquire));
        let mut next_seq = self.ctl(ctl::NEXT_SEQ).load(Ordering::Acquire);
        if next_seq > floor {
            dropped.store(dropped.load(Ordering::Relaxed).wrapping_add(next_seq - floor), Ordering::Release);
        } else {
            next_seq = floor;
        }
        self.ctl(ctl::NEXT_SEQ).store(next_seq, Ordering::Release);
        // A new producer reopens a stream its predecessor ended (`Producer::end_stream`).
        // SYNC POINT end: Release, as the store in `end_stream`; pairs with `Segment::end_seq`.
        self.ctl(ctl::END).store(0, Ordering::Release);
        // Only the producer sleeps for space. A count left raised by a producer that died asleep
        // would make every release a needless wake-up call: start from zero. (Were the old
        // producer alive after all, its missed wake-ups cost it one sleep slice, not a hang:
        // the platform's waits are bounded.) Relaxed: a hint, as in `retire_sleeper`.
        self.ctl(ctl::SPACE_WAITERS).store(0, Ordering::Relaxed);
        // A drop the dead producer left half-decided (a DROPPING result cell): decide it from
        // the slots, before this producer takes any.
        self.resolve_dropping();
        // Recovery: slots the previous producer was writing, or had marked READY without
        // advancing `write_pos` (so no consumer can have seen them), become FREE again.
        for s in 0..self.layout.spec.slot_count {
            let w = self.slot_word(s, ctl::slot::STATE);
            let st = SlotState::decode(w.load(Ordering::Acquire));
            let unpublished = st.kind == SlotKind::Ready
                && st.holders == 0
                // Relaxed: the descriptor is only written by the producer, which is dead or is us.
                && self.slot_word(s, ctl::slot::POS).load(Ordering::Relaxed) >= write_pos;
            if st.kind == SlotKind::Writing || unpublished {
                // A CAS, not a store: a hostile peer may be changing the word; then we leave it.
                let _ = w.compare_exchange(
                    st.encode(),
                    st.with(SlotKind::Free, 0).encode(),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
        }
        // SYNC POINT join (store buffering), for a producer that has not published yet: the
        // last `write_pos` store was the dead producer's, and our Acquire load above
        // synchronises with that store, not with the SeqCst fence the dead producer issued after
        // it. Under C11 our first `min_cursor` could then miss a subscriber that read the older
        // `write_pos` and recycle the frame it starts at (x86-TSO and ARMv8 forbid that
        // outcome; C11 does not). This fence stands in for the one `WriteSlot::publish` issues,
        // between our view of `write_pos` and our first entry loads. Pairs with the SeqCst
        // fence in `Segment::register_with`.
        fence(Ordering::SeqCst);
        Ok(Producer { seg: *self, token, epoch, write_pos, next_seq, hint: 0 })
    }
}

/// The unique producer endpoint. Dropping it detaches (another producer may then attach).
#[derive(Debug)]
pub struct Producer<'a> {
    pub(super) seg: Segment<'a>,
    pub(super) token: u64,
    pub(super) epoch: u64,
    /// Cached copy of `write_pos` (the producer is its only writer).
    pub(super) write_pos: u64,
    /// Cached copy of `next_seq`.
    pub(super) next_seq: u64,
    pub(super) hint: u32,
}

/// A slot the producer holds for writing. Publish it, or drop it to give the slot back.
#[derive(Debug)]
#[must_use = "publish the slot or it is given back unpublished"]
pub struct WriteSlot<'p, 'a> {
    pub(super) producer: &'p mut Producer<'a>,
    pub(super) slot: u32,
    pub(super) state: SlotState,
    /// True when this slot was obtained by dropping an unclaimed frame.
    pub dropped_oldest: bool,
}

/// A [`WriteSlot`] detached from its borrow of the producer ([`WriteSlot::detach`]), for
/// handles that cannot hold a borrow: a C or Python producer object that keeps its producer
/// and its slot in one place. The slot stays WRITING (the producer's) until it is resumed
/// with [`Producer::resume`] and published or dropped; a pending slot that is simply
/// forgotten stays the producer's until the producer detaches or dies and is taken over.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "resume the slot and publish or drop it, or it stays out of service"]
pub struct PendingSlot {
    pub(super) slot: u32,
    pub(super) state: SlotState,
    pub(super) token: u64,
    pub(super) epoch: u64,
    pub(super) dropped_oldest: bool,
}

impl PendingSlot {
    /// Slot index.
    pub fn slot(&self) -> u32 {
        self.slot
    }
}

/// What a publish did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    /// Sequence number given to the frame.
    pub seq: u64,
    /// Publish position.
    pub pos: u64,
    /// Consumers are sleeping: the platform must wake the frame-wake word.
    pub wake: bool,
}

impl<'a> Producer<'a> {
    /// The segment.
    pub fn segment(&self) -> &Segment<'a> {
        &self.seg
    }

    /// The epoch this producer attached at.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The sequence number the next published frame gets (unless a drop-newest consumes it
    /// first): what a producer that stamps the number into the frame writes.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Turns a [`PendingSlot`] from [`WriteSlot::detach`] back into a [`WriteSlot`].
    ///
    /// # Errors
    /// Hands `pending` back when it is not this producer's: another producer (owner token or
    /// epoch; also another segment's) made it, or its slot no longer holds the WRITING state
    /// it was detached in.
    pub fn resume(&mut self, pending: PendingSlot) -> Result<WriteSlot<'_, 'a>, PendingSlot> {
        // Relaxed: the word was last written by this producer (the CAS that made it WRITING),
        // and nobody else writes a WRITING word; the load only checks the handle's identity.
        let cur = self
            .seg
            .slot_word(pending.slot % self.seg.layout.spec.slot_count, ctl::slot::STATE)
            .load(Ordering::Relaxed);
        if pending.epoch != self.epoch
            || pending.slot >= self.seg.layout.spec.slot_count
            || cur != pending.state.encode()
        {
            return Err(pending);
        }
        let PendingSlot { slot, state, dropped_oldest, .. } = pending;
        Ok(WriteSlot { producer: self, slot, state, dropped_oldest })
    }

    /// Acquires a slot to write the next frame into, applying the segment's overflow policy.
    ///
    /// # Examples
    /// ```
    /// # use framebus_core::*;
    /// # let spec = SegmentSpec::new(FrameGeometry::new(4, 2, PixelFormat::Gray8), 2);
    /// # let heap = HeapRegion::for_layout(&Layout::compute(&spec).unwrap());
    /// # let seg = Segment::create(heap.region(), &spec, Creator::default()).unwrap();
    /// let mut producer = seg.attach_producer(1).unwrap();
    /// let mut worker = seg.register(ConsumerKind::Worker, 2).unwrap();
    /// let mut slot = producer.begin().unwrap();
    /// slot.write(0, &[7; 8]);
    /// let published = slot.publish(FrameMeta { payload_len: 8, ..FrameMeta::default() });
    /// let frame = worker.claim().unwrap();
    /// let mut buf = [0; 8];
    /// worker.read(&frame, 0, &mut buf).unwrap();
    /// assert_eq!((frame.seq, buf), (published.seq, [7; 8]));
    /// worker.release(frame).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`BeginError::Full`] under `Block` when no slot is free, [`BeginError::DroppedNewest`] when
    /// the frame is dropped (counted), [`BeginError::Superseded`] after a takeover.
    pub fn begin(&mut self) -> Result<WriteSlot<'_, 'a>, BeginError> {
        if self.seg.ctl(ctl::PRODUCER_OWNER).load(Ordering::Acquire) != self.token {
            return Err(BeginError::Superseded);
        }
        let spec = self.seg.layout.spec;
        let n = spec.slot_count;
        for _ in 0..RETRY_LIMIT {
            // 1. A FREE slot, scanning from the last one used.
            for i in 0..n {
                let s = (self.hint + i) % n;
                let w = self.seg.slot_word(s, ctl::slot::STATE);
                let cur = w.load(Ordering::Relaxed);
                let st = SlotState::decode(cur);
                if st.kind == SlotKind::Free {
                    if let Some(state) = self.try_take(s, st, false) {
                        return Ok(WriteSlot { producer: self, slot: s, state, dropped_oldest: false });
                    }
                }
            }
            // 2. A READY slot nobody holds: consumed by every subscriber (recycle), or the
            //    oldest unclaimed frame under DropOldest (drop).
            let min_cursor = match spec.pattern {
                Pattern::Broadcast => self.min_cursor(),
                Pattern::WorkQueue => 0,
            };
            let mut best: Option<(u32, SlotState, u64)> = None;
            for s in 0..n {
                // Relaxed: a scan for candidates; `try_take`'s Acquire CAS validates and orders.
                let st = SlotState::decode(self.seg.slot_word(s, ctl::slot::STATE).load(Ordering::Relaxed));
                if st.kind != SlotKind::Ready || st.holders != 0 {
                    continue;
                }
                let pos = self.seg.slot_word(s, ctl::slot::POS).load(Ordering::Relaxed);
                let consumed = pos < min_cursor;
                if (consumed || spec.policy == OverflowPolicy::DropOldest) && best.is_none_or(|(_, _, p)| pos < p) {
                    best = Some((s, st, pos));
                }
            }
            match best {
                Some((s, st, pos)) => {
                    let drop = pos >= min_cursor;
                    // A frame's fate goes into its result cell before it leaves its slot: mark
                    // the cell DROPPING, take the slot, then say which way it went.
                    // Relaxed: the descriptor is this producer's (or ordered by the takeover).
                    let seq = self.seg.slot_word(s, ctl::slot::SEQ).load(Ordering::Relaxed);
                    let marked = drop && self.begin_dropping(seq);
                    let taken = self.try_take(s, st, drop);
                    if marked {
                        self.end_dropping(seq, taken.is_some());
                    }
                    if let Some(state) = taken {
                        return Ok(WriteSlot { producer: self, slot: s, state, dropped_oldest: drop });
                    }
                    // Lost a race with a consumer: look again.
                }
                None => {
                    return match spec.policy {
                        OverflowPolicy::Block => Err(BeginError::Full),
                        OverflowPolicy::DropNewest | OverflowPolicy::DropOldest => Err(self.drop_newest()),
                    }
                }
            }
        }
        // Every candidate was taken from under us RETRY_LIMIT times (only a misbehaving peer
        // does that). Block never drops a frame: the caller waits for space and retries.
        Err(match spec.policy {
            OverflowPolicy::Block => BeginError::Full,
            OverflowPolicy::DropNewest | OverflowPolicy::DropOldest => self.drop_newest(),
        })
    }

    /// CASes slot `s` from `st` to WRITING; returns the new state on success.
    pub(super) fn try_take(&mut self, s: u32, st: SlotState, drop: bool) -> Option<SlotState> {
        let w = self.seg.slot_word(s, ctl::slot::STATE);
        let next = SlotState { gen: (st.gen + 1) & GEN_MASK, kind: SlotKind::Writing, holders: 0 };
        // SYNC POINT slot-release: Acquire pairs with the Release CAS of the last holder in
        // `Consumer::release` / `Segment::clear_holds`: their payload reads happen before our writes.
        // SYNC POINT drop-mark: with results, the Release half orders a DROPPING result cell
        // (marked just before, `begin_dropping`) before the slot leaves READY: a reader whose
        // Acquire scan in `Segment::frame_in_flight` sees the slot taken also sees the mark, and
        // never calls the drop an overflow. Without results nothing needs it.
        let order = if self.seg.has_results() { Ordering::AcqRel } else { Ordering::Acquire };
        w.compare_exchange(st.encode(), next.encode(), order, Ordering::Relaxed).ok()?;
        if drop {
            let d = self.seg.ctl(ctl::DROPPED_OLDEST);
            // Written only by the producer: a load/store pair is enough. Release pairs with the
            // Acquire load in `Segment::stats` (statistics; nothing else is ordered by it).
            d.store(d.load(Ordering::Relaxed).wrapping_add(1), Ordering::Release);
        }
        self.hint = (s + 1) % self.seg.layout.spec.slot_count;
        Some(next)
    }

    pub(super) fn drop_newest(&mut self) -> BeginError {
        let seq = self.next_seq;
        // Before `next_seq` says the frame was issued: the reader never sees it unmarked.
        self.seg.mark_skip(seq, SkipCause::DroppedNewest);
        self.next_seq = seq.wrapping_add(1);
        let d = self.seg.ctl(ctl::DROPPED_NEWEST);
        // Written only by the producer; stored before `next_seq` (see `take_over_producer`).
        // Release pairs with the Acquire loads in `Segment::stats` and `take_over_producer`.
        d.store(d.load(Ordering::Relaxed).wrapping_add(1), Ordering::Release);
        // SYNC POINT next-seq: pairs with Acquire loads in `Segment::stats`.
        self.seg.ctl(ctl::NEXT_SEQ).store(self.next_seq, Ordering::Release);
        BeginError::DroppedNewest { seq }
    }

    /// Checks whether the producer should wake itself up: true when a slot could be acquired.
    /// For the platform's sleep loop (re-check after announcing a waiter).
    pub fn has_space(&self) -> bool {
        let spec = self.seg.layout.spec;
        let min_cursor = if spec.pattern == Pattern::Broadcast { self.min_cursor() } else { 0 };
        (0..spec.slot_count).any(|s| {
            // Acquire pairs with the release CASes in `Consumer::release` (a hint for sleeping).
            let st = SlotState::decode(self.seg.slot_word(s, ctl::slot::STATE).load(Ordering::Acquire));
            st.kind == SlotKind::Free
                || (st.kind == SlotKind::Ready
                    && st.holders == 0
                    && self.seg.slot_word(s, ctl::slot::POS).load(Ordering::Relaxed) < min_cursor)
        })
    }
}

impl Drop for Producer<'_> {
    fn drop(&mut self) {
        // Detach only if we are still the owner (a takeover may have replaced us).
        let _ = self.seg.ctl(ctl::PRODUCER_OWNER).compare_exchange(self.token, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

impl<'a> WriteSlot<'_, 'a> {
    /// The sequence number of the frame this slot's reuse dropped (`DropOldest`), if any: the
    /// frame no consumer will ever get, for callers that account for drops frame by frame.
    pub fn dropped_seq(&self) -> Option<u64> {
        // Relaxed: the descriptor was last written by this producer (or the one it took over
        // from, ordered by the takeover), and the slot is ours (WRITING) until publish.
        self.dropped_oldest.then(|| self.producer.seg.slot_word(self.slot, ctl::slot::SEQ).load(Ordering::Relaxed))
    }

    /// Slot index.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// Bytes available in the slot.
    pub fn capacity(&self) -> u64 {
        self.producer.seg.layout.spec.slot_payload_size
    }

    /// Byte offset of the payload from the region start.
    pub fn offset(&self) -> u64 {
        self.producer.seg.layout.slot_offset(self.slot)
    }

    /// Raw pointer to the payload, for writing in place (a decoder, a DMA engine). Valid for
    /// [`WriteSlot::capacity`] bytes until the slot is published or dropped.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        // The offset is inside the region: the layout was validated against the region size.
        self.producer.seg.region.base().as_ptr().wrapping_add(self.offset() as usize)
    }

    /// Copies `bytes` into the payload at `at`.
    ///
    /// # Panics
    /// When `at + bytes.len()` exceeds the slot capacity.
    pub fn write(&mut self, at: u64, bytes: &[u8]) {
        assert!(
            at.checked_add(bytes.len() as u64).is_some_and(|e| e <= self.capacity()),
            "write past the end of the slot"
        );
        let seg = self.producer.seg;
        seg.region.tracker(self.slot as usize).write(|| {
            // SAFETY: the slot is WRITING and owned by this producer; range checked above.
            unsafe { seg.region.copy_in((self.offset() + at) as usize, bytes) }
        });
    }

    /// Detaches the slot from its borrow of the producer (see [`PendingSlot`]); the slot stays
    /// the producer's, unpublished.
    pub fn detach(self) -> PendingSlot {
        let pending = PendingSlot {
            slot: self.slot,
            state: self.state,
            token: self.producer.token,
            epoch: self.producer.epoch,
            dropped_oldest: self.dropped_oldest,
        };
        // Not dropped: dropping would give the slot back.
        core::mem::forget(self);
        pending
    }

    /// Publishes the frame with `meta`, giving it the next sequence number.
    pub fn publish(self, meta: FrameMeta) -> Published {
        let p = &mut *self.producer;
        let seg = p.seg;
        let (slot, st) = (self.slot, self.state);
        let (pos, seq) = (p.write_pos, p.next_seq);
        let flags = meta.flags & !FLAG_CHECKSUM | if meta.checksum.is_some() { FLAG_CHECKSUM } else { 0 };
        for (f, v) in [
            (ctl::slot::POS, pos),
            (ctl::slot::SEQ, seq),
            (ctl::slot::CAPTURE_NS, meta.capture_ns),
            (ctl::slot::PTS_NS, meta.pts_ns),
            (ctl::slot::WIDTH_HEIGHT, u64::from(meta.width) | u64::from(meta.height) << 32),
            (ctl::slot::FORMAT_FLAGS, u64::from(meta.pixel_format) | u64::from(flags) << 32),
            (ctl::slot::PAYLOAD_LEN, meta.payload_len),
            (ctl::slot::CHECKSUM, meta.checksum.unwrap_or(0)),
            (ctl::slot::EPOCH, p.epoch),
        ] {
            // Relaxed: published by the Release store of the state word below (SYNC POINT slot-ready).
            seg.slot_word(slot, f).store(v, Ordering::Relaxed);
        }
        // SYNC POINT slot-ready: pairs with the Acquire claim CAS in `Consumer::claim*`; makes
        // the payload and descriptor visible to whoever claims the slot.
        seg.slot_word(slot, ctl::slot::STATE).store(st.with(SlotKind::Ready, 0).encode(), Ordering::Release);
        // SYNC POINT ring-cell: pairs with the Acquire load of the cell in `Consumer::claim*`.
        seg.ring_cell(pos).store((pos & POS_MASK) << 16 | u64::from(slot), Ordering::Release);
        p.write_pos = pos.wrapping_add(1);
        p.next_seq = seq.wrapping_add(1);
        // `next_seq` before `write_pos`: a crash in between leaves next_seq ahead, which a
        // takeover counts as a dropped frame instead of reissuing the sequence number.
        // SYNC POINT next-seq: pairs with Acquire loads in `Segment::stats` / takeover.
        seg.ctl(ctl::NEXT_SEQ).store(p.next_seq, Ordering::Release);
        // SYNC POINT write-pos: pairs with the Acquire loads of `write_pos` in `Consumer::claim*`;
        // the cell is written before any consumer can look for position `pos`.
        seg.ctl(ctl::WRITE_POS).store(p.write_pos, Ordering::Release);
        // The SeqCst fence inside also serves SYNC POINT join (see `Segment::register`): our
        // `write_pos` store is ordered before the entry loads of our next `min_cursor`.
        let wake = seg.bump_if_waiters(ctl::FRAME_WAKE, ctl::FRAME_WAITERS, FRAME_SLEEPERS);
        core::mem::forget(self);
        Published { seq, pos, wake }
    }
}

impl Drop for WriteSlot<'_, '_> {
    fn drop(&mut self) {
        // Unpublished: give the slot back. Plain store: nobody else writes a WRITING word.
        // SYNC POINT slot-release (by the producer): Release, though nobody read the payload.
        let w = self.producer.seg.slot_word(self.slot, ctl::slot::STATE);
        w.store(self.state.with(SlotKind::Free, 0).encode(), Ordering::Release);
    }
}
