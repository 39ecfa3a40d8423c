//! Consumers: registering in the consumer table (process slots, the joining protocol),
//! the busy bracket every operation runs in, holding and releasing frames, reading them,
//! leaving. How a consumer picks its next frame is its delivery pattern's (`delivery/`).

use super::*;

impl<'a> Segment<'a> {
    /// Registers a consumer of `kind`, owned by platform `token` (a non-zero liveness token of
    /// the calling process). Subscribers and latest readers start at the next frame to be
    /// published. Without a liveness check, a process slot of a dead process is never reused
    /// (see [`Segment::register_with`]).
    ///
    /// # Errors
    /// [`RegisterError::TableFull`], [`RegisterError::TooManyProcesses`],
    /// [`RegisterError::WrongPattern`], [`RegisterError::ZeroToken`].
    pub fn register(&self, kind: ConsumerKind, token: u64) -> Result<Consumer<'a>, RegisterError> {
        self.register_with(kind, token, |_| true)
    }

    /// [`Segment::register`] with the platform's liveness check, which lets the registration
    /// reuse the process slot of a dead process that no entry names any more.
    ///
    /// # The registration protocol (layout v2)
    /// 1. Find the caller's process slot: the one holding `token`, else claim a free one
    ///    (CAS 0 → token), else take over one whose token `is_alive` calls dead and that no
    ///    non-FREE entry names (CAS dead → token). A dead token is never reissued, so this
    ///    CAS cannot suffer ABA, and only the dead process could have made a new entry name
    ///    the slot.
    /// 2. CAS a FREE(g) entry to ALIVE(g+1, busy, kind *joining*, process slot p): the claim
    ///    and the owner's name in one atomic step, and a generation no snapshot of the entry
    ///    taken before it can match.
    /// 3. Initialise the counters and set the cursor to the current `write_pos` (ours alone:
    ///    nobody reads the fields of a joining entry).
    /// 4. CAS the kind in (Release: publishes step 3 to `min_cursor`).
    /// 5. SeqCst fence, read `write_pos` again as the starting point, store it (SYNC POINT
    ///    join), and CAS out of busy (Release).
    ///
    /// A process killed after step 2 leaves an ALIVE entry naming its dead process: any
    /// [`Segment::reap`] reclaims it. Between 2 and 4 the entry counts for nobody's cursor;
    /// from 4 its cursor is at most a few frames behind the final one (conservative).
    ///
    /// # Errors
    /// As [`Segment::register`].
    pub fn register_with(
        &self,
        kind: ConsumerKind,
        token: u64,
        is_alive: impl Fn(u64) -> bool,
    ) -> Result<Consumer<'a>, RegisterError> {
        self.register_impl(kind, token, is_alive, NEVER).map(|c| c.expect("runs to completion"))
    }

    /// Fault injection for crash tests: runs [`Segment::register_with`] and stops it dead after
    /// step `step` (1 ..= [`fault::REGISTER_STEPS`]), leaving the shared words exactly as a
    /// process killed there leaves them. `Ok(true)` when it stopped there, `Ok(false)` when it
    /// finished first (the consumer is then simply forgotten, as by a kill right after).
    ///
    /// # Errors
    /// As [`Segment::register`].
    #[doc(hidden)]
    pub fn register_dying(
        &self,
        kind: ConsumerKind,
        token: u64,
        is_alive: impl Fn(u64) -> bool,
        step: u32,
    ) -> Result<bool, RegisterError> {
        self.register_impl(kind, token, is_alive, step).map(|c| c.is_none())
    }

    pub(super) fn register_impl(
        &self,
        kind: ConsumerKind,
        token: u64,
        is_alive: impl Fn(u64) -> bool,
        die: u32,
    ) -> Result<Option<Consumer<'a>>, RegisterError> {
        let pattern = self.layout.spec.pattern;
        match (kind, pattern) {
            (ConsumerKind::Worker, Pattern::Broadcast) | (ConsumerKind::Subscriber, Pattern::WorkQueue) => {
                return Err(RegisterError::WrongPattern { pattern, kind });
            }
            _ => {}
        }
        if token == 0 {
            return Err(RegisterError::ZeroToken);
        }
        let max = self.layout.spec.max_consumers;
        let free = |idx| EntryState::decode(self.entry(idx, ctl::consumer::STATE).load(Ordering::Relaxed)).status;
        // A full table is the first thing to report (and no reason to claim a process slot).
        if !(0..max).any(|idx| free(idx) == EntryStatus::Free) {
            return Err(RegisterError::TableFull { max });
        }
        let p = self.process_slot(token, &is_alive).ok_or(RegisterError::TooManyProcesses { max })?;
        if die == 1 {
            return Ok(None);
        }
        for idx in 0..max {
            let w = self.entry(idx, ctl::consumer::STATE);
            // SYNC POINT entry-free: Acquire pairs with the Release CAS to FREE in `finish`.
            let cur = w.load(Ordering::Acquire);
            let st = EntryState::decode(cur);
            if st.status != EntryStatus::Free {
                continue;
            }
            let gen = st.gen.wrapping_add(1) & ENTRY_GEN_MASK;
            let joining = entry_word(ENTRY_ALIVE, true, KIND_JOINING, 0, p, gen);
            // SYNC POINT entry-free: the CAS reads the FREE word a finisher stored (Acquire), so
            // every hold of the previous occupant is cleared before we can claim a frame.
            if w.compare_exchange(cur, joining, Ordering::AcqRel, Ordering::Relaxed).is_err() {
                continue;
            }
            if die == 2 {
                return Ok(None);
            }
            // The entry is ours: nobody reads the fields of a joining entry, and nobody else
            // writes them while it is ALIVE under our generation.
            let pre = self.ctl(ctl::WRITE_POS).load(Ordering::Acquire);
            for (f, v) in [
                (ctl::consumer::LEASE_NS, 0),
                (ctl::consumer::CURSOR, pre),
                (ctl::consumer::DELIVERED, 0),
                (ctl::consumer::SKIPPED, 0),
                (ctl::consumer::JOINED_POS, pre),
            ] {
                // Relaxed: published by the Release CAS below (SYNC POINT entry-alive).
                self.entry(idx, f).store(v, Ordering::Relaxed);
            }
            if die == 3 {
                return Ok(None);
            }
            let named = entry_word(ENTRY_ALIVE, true, kind as u64, 0, p, gen);
            // SYNC POINT entry-alive: Release pairs with the Acquire loads of the entry word in
            // `Producer::min_cursor`: a producer that sees our kind sees the cursor stored above.
            // A CAS: only a reaper that judged our process dead can have changed the word.
            if w.compare_exchange(joining, named, Ordering::Release, Ordering::Relaxed).is_err() {
                continue;
            }
            // SYNC POINT join (store buffering): we store our entry, then load `write_pos`; the
            // producer stores `write_pos`, then (next `begin`) loads the entries. Without a SeqCst
            // fence on both sides both could read the old values, and the producer could recycle
            // the first frame we start at. Pairs with the SeqCst fence in `WriteSlot::publish`
            // (and the one ending `Segment::take_over_producer`).
            fence(Ordering::SeqCst);
            let start = self.ctl(ctl::WRITE_POS).load(Ordering::Acquire);
            for f in [ctl::consumer::CURSOR, ctl::consumer::JOINED_POS] {
                // Relaxed: published by the Release CAS below; `start >= pre`, so a producer that
                // still reads `pre` is only more careful than it needs to be.
                self.entry(idx, f).store(start, Ordering::Relaxed);
            }
            if die == 4 {
                return Ok(None);
            }
            // SYNC POINT entry-alive: as above.
            if w.compare_exchange(
                named,
                entry_word(ENTRY_ALIVE, false, kind as u64, 0, p, gen),
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_err()
            {
                continue;
            }
            return Ok(Some(Consumer {
                seg: *self,
                idx,
                gen,
                process: p,
                kind,
                cursor: start,
                delivered: 0,
                skipped: 0,
                holds: 0,
            }));
        }
        Err(RegisterError::TableFull { max })
    }

    /// The process slot for `token` (step 1 of [`Segment::register_with`]).
    pub(super) fn process_slot(&self, token: u64, is_alive: impl Fn(u64) -> bool) -> Option<u32> {
        let n = self.layout.spec.max_consumers;
        let slot = |p| self.entry(p, ctl::consumer::PROCESS);
        if let Some(p) = (0..n).find(|&p| self.process_token(p) == token) {
            return Some(p);
        }
        // SYNC POINT process-slot: AcqRel pairs with the Acquire loads in `process_token`.
        let claim =
            |p: u32, from: u64| slot(p).compare_exchange(from, token, Ordering::AcqRel, Ordering::Relaxed).is_ok();
        if let Some(p) = (0..n).find(|&p| self.process_token(p) == 0 && claim(p, 0)) {
            return Some(p);
        }
        (0..n).find(|&p| {
            let t = self.process_token(p);
            t != 0 && !is_alive(t) && !self.names_process(p) && claim(p, t)
        })
    }

    /// True when some non-FREE entry names process slot `p`.
    pub(super) fn names_process(&self, p: u32) -> bool {
        (0..self.layout.spec.max_consumers).any(|idx| {
            // Acquire: an entry the dead process made is visible with its final word.
            let st = EntryState::decode(self.entry(idx, ctl::consumer::STATE).load(Ordering::Acquire));
            st.status != EntryStatus::Free && st.process == p
        })
    }

    pub(super) fn read_frame(&self, slot: u32, gen: u64) -> Frame {
        // Relaxed: the caller holds the slot; the claim CAS (Acquire) ordered these after the
        // producer's descriptor stores (SYNC POINT slot-ready).
        let r = |f| self.slot_word(slot, f).load(Ordering::Relaxed);
        let wh = r(ctl::slot::WIDTH_HEIGHT);
        let ff = r(ctl::slot::FORMAT_FLAGS);
        let flags = (ff >> 32) as u32;
        Frame {
            slot,
            gen,
            pos: r(ctl::slot::POS),
            seq: r(ctl::slot::SEQ),
            epoch: r(ctl::slot::EPOCH),
            meta: FrameMeta {
                capture_ns: r(ctl::slot::CAPTURE_NS),
                pts_ns: r(ctl::slot::PTS_NS),
                width: wh as u32,
                height: (wh >> 32) as u32,
                pixel_format: ff as u32,
                flags: flags & !FLAG_CHECKSUM,
                // A hostile peer could write any length: clamp to the slot so readers stay in bounds.
                payload_len: r(ctl::slot::PAYLOAD_LEN).min(self.layout.spec.slot_payload_size),
                checksum: (flags & FLAG_CHECKSUM != 0).then(|| r(ctl::slot::CHECKSUM)),
            },
            // Written by the reclaim that put this generation back, before its CAS to READY,
            // which the claim's CAS acquired (SYNC POINT redeliver).
            redelivered: r(ctl::slot::REDELIVERED_GEN) == gen,
        }
    }
}

/// A registered consumer (worker, subscriber or latest reader). Not `Sync`: one thread uses it.
#[derive(Debug)]
pub struct Consumer<'a> {
    pub(super) seg: Segment<'a>,
    pub(super) idx: u32,
    pub(super) gen: u64,
    /// The process slot our entry names.
    pub(super) process: u32,
    pub(super) kind: ConsumerKind,
    /// Next position to read (subscriber / latest); the shared copy is written for the producer.
    pub(super) cursor: u64,
    pub(super) delivered: u64,
    pub(super) skipped: u64,
    /// Frames held now; mirrored into the entry word at the end of every operation so that a
    /// non-forced reclaim can see, atomically, that we may be reading.
    pub(super) holds: u16,
}

impl<'a> Consumer<'a> {
    /// Consumer-table index (the bit this consumer sets in slot holder masks).
    pub fn index(&self) -> u32 {
        self.idx
    }

    /// Entry generation (pass to [`Segment::reclaim`]).
    pub fn generation(&self) -> u64 {
        self.gen
    }

    /// Consumer kind.
    pub fn kind(&self) -> ConsumerKind {
        self.kind
    }

    /// The segment.
    pub fn segment(&self) -> &Segment<'a> {
        &self.seg
    }

    /// Frames delivered to this consumer and frames it skipped (broadcast/latest).
    pub fn counts(&self) -> (u64, u64) {
        (self.delivered, self.skipped)
    }

    /// Sets the lease deadline a reaper may check (platform clock, ns). Inside the busy
    /// bracket, so the store never lands on the entry of a consumer that registered after this
    /// one was evicted.
    ///
    /// # Errors
    /// [`ClaimError::Evicted`] when this consumer was reclaimed.
    pub fn set_lease(&mut self, deadline_ns: u64) -> Result<(), ClaimError> {
        self.bracket(
            |c| {
                // Relaxed: published by the Release CAS that closes the bracket.
                c.seg.entry(c.idx, ctl::consumer::LEASE_NS).store(deadline_ns, Ordering::Relaxed);
                Ok(())
            },
            |_, ()| {},
        )
    }

    pub(super) fn alive_word(&self, busy: bool, holds: u16) -> u64 {
        entry_word(ENTRY_ALIVE, busy, self.kind as u64, holds, self.process, self.gen)
    }

    /// True while our entry is still ours (ALIVE at our generation and process slot).
    pub(super) fn still_registered(&self) -> bool {
        // Acquire: SYNC POINT reclaim-validate, as in `Segment::reclaiming`.
        let st = EntryState::decode(self.seg.entry(self.idx, ctl::consumer::STATE).load(Ordering::Acquire));
        st.status == EntryStatus::Alive && st.gen == self.gen && st.process == self.process
    }

    /// Opens the busy bracket; fails once the entry was reclaimed.
    pub(super) fn enter(&self) -> Result<(), ClaimError> {
        // SYNC POINT entry-evict: CAS on the same word as `Segment::reclaim`; if reclaim won,
        // we see RECLAIMING/FREE and stop; if we won, reclaim sees busy and waits.
        self.seg
            .entry(self.idx, ctl::consumer::STATE)
            .compare_exchange(
                self.alive_word(false, self.holds),
                self.alive_word(true, self.holds),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .map(|_| ())
            .map_err(|_| ClaimError::Evicted)
    }

    /// Closes the bracket, publishing the new hold count. False when a forced reclaim took
    /// the entry while we were inside.
    pub(super) fn leave(&self, held_before: u16) -> bool {
        // SYNC POINT entry-evict: Release pairs with the Acquire load in `Segment::reclaim`:
        // everything done inside the bracket is visible to a reclaimer that sees us idle.
        // A CAS so that a forced reclaim that already took the entry is not undone.
        self.seg
            .entry(self.idx, ctl::consumer::STATE)
            .compare_exchange(
                self.alive_word(true, held_before),
                self.alive_word(false, self.holds),
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Runs `f` inside the busy bracket. If a forced reclaim evicted us meanwhile (it should
    /// only be forced on dead processes, but if it hit a live one), whatever `f` claimed is
    /// given back by `undo`, so no hold outlives the entry, and the result is `Evicted`.
    pub(super) fn bracket<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ClaimError>,
        undo: impl FnOnce(&Self, T),
    ) -> Result<T, ClaimError> {
        self.enter()?;
        let before = self.holds;
        let r = f(self);
        if self.leave(before) {
            return r;
        }
        if let Ok(v) = r {
            undo(self, v);
        }
        self.holds = 0;
        Err(ClaimError::Evicted)
    }

    /// Clears our bit from `frame`'s slot; returns whether the slot lost its last holder.
    pub(super) fn unhold(&self, frame: &Frame) -> Result<bool, ClaimError> {
        if frame.slot >= self.seg.layout.spec.slot_count {
            return Err(ClaimError::NotHeld);
        }
        let bit = 1u16 << self.idx;
        let w = self.seg.slot_word(frame.slot, ctl::slot::STATE);
        // Relaxed: only a starting guess for the CAS below, which carries the ordering.
        let mut cur = w.load(Ordering::Relaxed);
        for _ in 0..RETRY_LIMIT {
            let st = SlotState::decode(cur);
            if st.gen != frame.gen || st.holders & bit == 0 || !matches!(st.kind, SlotKind::Ready | SlotKind::Taken) {
                return Err(ClaimError::NotHeld);
            }
            let next = released(st, bit);
            // SYNC POINT slot-release: Release pairs with the Acquire CAS in
            // `Producer::try_take`: our payload reads happen before the producer rewrites.
            match w.compare_exchange(cur, next.encode(), Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return Ok(next.holders == 0),
                Err(now) => cur = now,
            }
        }
        Err(ClaimError::Contended)
    }

    /// Checks that this consumer holds `frame` (its bit set at the frame's generation).
    pub(super) fn holding(&self, frame: &Frame) -> Result<(), ClaimError> {
        if frame.slot >= self.seg.layout.spec.slot_count {
            return Err(ClaimError::NotHeld);
        }
        // SYNC POINT slot-ready: Acquire pairs with the claim CAS's release sequence; if we see
        // our bit at this generation, the producer cannot write the slot until we release it.
        let st = SlotState::decode(self.seg.slot_word(frame.slot, ctl::slot::STATE).load(Ordering::Acquire));
        let held = st.gen == frame.gen
            && st.holders & (1u16 << self.idx) != 0
            && matches!(st.kind, SlotKind::Ready | SlotKind::Taken);
        if held {
            Ok(())
        } else {
            Err(ClaimError::NotHeld)
        }
    }

    /// A cheap, read-only hint: true when a frame may be waiting (the write position is past
    /// this consumer's cursor, or the shared claim cursor for workers). Changes no state and
    /// takes no lock-prefixed instruction, so a spinning consumer can poll it and call
    /// [`Consumer::claim`] only when it says yes; `claim` remains the authority (it may still
    /// return `Empty` when another worker won the frame).
    #[must_use]
    pub fn might_have_frame(&self) -> bool {
        // Relaxed: only a hint; `claim` re-reads both with the orderings that matter.
        let wp = self.seg.ctl(ctl::WRITE_POS).load(Ordering::Relaxed);
        if self.kind == ConsumerKind::Worker
            && self.seg.has_results()
            && self.seg.ctl(ctl::REDELIVER).load(Ordering::Relaxed) != 0
        {
            return true; // a redelivered frame may wait
        }
        let at = match self.kind {
            ConsumerKind::Worker => self.seg.ctl(ctl::CLAIM_CURSOR).load(Ordering::Relaxed),
            ConsumerKind::Subscriber | ConsumerKind::Latest => self.cursor,
        };
        if wp == at {
            return false;
        }
        // The claim that follows reads this position's ring cell first: start fetching it
        // now, so it arrives while `claim` opens its busy bracket.
        prefetch_read((self.seg.ring_cell(at) as *const AtomicU64).cast());
        true
    }

    /// Claims the next frame according to this consumer's kind.
    ///
    /// # Errors
    /// [`ClaimError::Empty`] when nothing is available, [`ClaimError::Evicted`] after a reclaim,
    /// [`ClaimError::Corrupt`] / [`ClaimError::Contended`] for hostile shared state.
    pub fn claim(&mut self) -> Result<Frame, ClaimError> {
        self.bracket(
            |c| {
                // We hold at most one frame per slot: a count above the slot count is corrupt (a
                // peer cleared our bits). Checked here, the count stays within slot_count + 1,
                // which the entry's 11-bit holds field always fits (MAX_SLOTS is 1024).
                if u32::from(c.holds) > c.seg.layout.spec.slot_count {
                    return Err(ClaimError::Corrupt);
                }
                let frame = match c.kind {
                    ConsumerKind::Worker => c.claim_work(),
                    ConsumerKind::Subscriber => c.claim_broadcast(),
                    ConsumerKind::Latest => c.claim_latest(),
                }?;
                c.holds += 1;
                Ok(frame)
            },
            |c, frame| {
                let _ = c.unhold(&frame);
            },
        )
    }

    /// Tries to add our hold to the frame at `pos` if the ring still maps it to a READY slot.
    /// `Ok(None)` means the frame is gone (claimed exclusively, dropped, or its slot reused).
    pub(super) fn try_hold(&self, pos: u64, exclusive: bool) -> Result<Option<Frame>, ClaimError> {
        let seg = &self.seg;
        // SYNC POINT ring-cell: pairs with the Release store in `WriteSlot::publish`.
        let cell = seg.ring_cell(pos).load(Ordering::Acquire);
        if cell >> 16 != pos & POS_MASK {
            return Ok(None);
        }
        let slot = (cell & 0xFFFF) as u32;
        if slot >= seg.layout.spec.slot_count {
            return Err(ClaimError::Corrupt);
        }
        // Start fetching the payload's first line now, so that it travels from the producer's
        // cache together with the slot's state line instead of after the claim (a hint only).
        prefetch_read(seg.region.base().as_ptr().wrapping_add(seg.layout.slot_offset(slot) as usize));
        let w = seg.slot_word(slot, ctl::slot::STATE);
        let bit = 1u16 << self.idx;
        // Acquire: starting value for the CAS loop, which carries the ordering.
        let mut cur = w.load(Ordering::Acquire);
        for _ in 0..RETRY_LIMIT {
            let st = SlotState::decode(cur);
            let claimable = match st.kind {
                SlotKind::Ready => true,
                SlotKind::Taken => !exclusive,
                _ => false,
            };
            // The descriptor's position is read before the CAS; the CAS succeeding proves the
            // state (and so the descriptor, written only in WRITING) did not change in between.
            if !claimable || seg.slot_word(slot, ctl::slot::POS).load(Ordering::Relaxed) != pos {
                return Ok(None);
            }
            if st.holders & bit != 0 {
                return Err(ClaimError::Corrupt);
            }
            let kind = if exclusive { SlotKind::Taken } else { st.kind };
            // SYNC POINT slot-ready: Acquire pairs with the Release store in `WriteSlot::publish`
            // (and the release sequence of later holder CASes).
            match w.compare_exchange(cur, st.with(kind, st.holders | bit).encode(), Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(Some(seg.read_frame(slot, st.gen))),
                Err(now) => cur = now,
            }
        }
        Err(ClaimError::Contended)
    }

    /// Copies `dst.len()` payload bytes of `frame` from offset `at` into `dst`.
    ///
    /// # Errors
    /// [`ClaimError::NotHeld`] when this consumer does not hold `frame` (a forged or stale frame):
    /// nothing is read.
    ///
    /// # Panics
    /// When the range exceeds the slot capacity.
    pub fn read(&self, frame: &Frame, at: u64, dst: &mut [u8]) -> Result<(), ClaimError> {
        let cap = self.seg.layout.spec.slot_payload_size;
        assert!(at.checked_add(dst.len() as u64).is_some_and(|e| e <= cap), "read past the end of the slot");
        self.holding(frame)?;
        let region = self.seg.region;
        let off = self.seg.layout.slot_offset(frame.slot) + at;
        region.tracker(frame.slot as usize).read(|| {
            // SAFETY: we hold the slot (checked just above; only our own release or a forced
            // reclaim of a dead process can end that), so no honest writer touches it; the range
            // is inside the slot, checked above against the validated layout.
            unsafe { region.copy_out(off as usize, dst) }
        });
        Ok(())
    }

    /// Raw pointer to `frame`'s payload, for reading in place (an accelerator input). Valid for
    /// the slot capacity until `frame` is released.
    ///
    /// # Errors
    /// [`ClaimError::NotHeld`] when this consumer does not hold `frame`.
    pub fn payload_ptr(&self, frame: &Frame) -> Result<*const u8, ClaimError> {
        self.holding(frame)?;
        Ok(self.seg.region.base().as_ptr().wrapping_add(self.seg.layout.slot_offset(frame.slot) as usize))
    }

    /// Gives `frame` back. Returns true when the producer sleeps waiting for space and the
    /// platform must wake the space-wake word.
    ///
    /// # Errors
    /// [`ClaimError::Evicted`] when this consumer was reclaimed (the hold is already gone),
    /// [`ClaimError::NotHeld`] for a frame this consumer does not hold.
    pub fn release(&mut self, frame: Frame) -> Result<bool, ClaimError> {
        self.bracket(
            |c| {
                if c.kind == ConsumerKind::Worker && c.seg.has_results() {
                    // A worker that releases without posting: the frame's fate is "no result",
                    // written before the frame leaves the slot (nothing if it posted). Only on
                    // a segment with results: the release fast path stays as it was elsewhere.
                    c.holding(&frame)?;
                    c.seg.mark_skip(frame.seq, crate::vocab::SkipCause::NoResult);
                }
                let freed = c.unhold(&frame)?;
                // Saturating: a count a peer's bit flips drove to 0 must not wrap.
                c.holds = c.holds.saturating_sub(1);
                Ok(freed && c.seg.bump_if_waiters(ctl::SPACE_WAKE, ctl::SPACE_WAITERS, SPACE_SLEEPERS))
            },
            |_, _| {},
        )
    }

    /// Leaves the consumer table. Release every frame first.
    ///
    /// # Errors
    /// [`ReclaimError::Holding`] while frames are still held; [`ReclaimError::Stale`] when the
    /// entry was already reclaimed.
    pub fn unregister(self) -> Result<Reclaimed, ReclaimError> {
        self.seg.reclaim(self.idx, self.gen, Reclaim::Idle)
    }

    /// Fault injection for crash tests: [`Consumer::unregister`] stopped dead after step
    /// `step` (1 ..= [`fault::UNREGISTER_STEPS`]), as a process killed there would leave it.
    /// `Ok(true)` when it stopped there.
    ///
    /// # Errors
    /// As [`Consumer::unregister`].
    #[doc(hidden)]
    pub fn unregister_dying(self, step: u32) -> Result<bool, ReclaimError> {
        self.seg.reclaim_impl(self.idx, self.gen, Reclaim::Idle, step).map(|r| r.is_none())
    }
}
