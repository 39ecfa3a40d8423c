//! Taking a consumer-table entry back: `reclaim` (an idle consumer, or one whose process is
//! dead), the validated finish anyone may run (SYNC POINT `reclaim-validate`), and `reap`.

use super::*;

/// What a reclaim did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reclaimed {
    /// Slot holds cleared.
    pub cleared: u32,
    /// The producer sleeps waiting for space: the platform must wake the space-wake word.
    pub wake: bool,
}

/// How [`Segment::reclaim`] may take an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reclaim {
    /// The consumer may be alive: take the entry only if it is between operations and holds
    /// no frame (a lease that expired, a subscriber that stopped reading, `unregister`).
    Idle,
    /// The caller found the process with token `owner` dead: take the entry whatever it holds,
    /// but only while the entry still names that process.
    Dead {
        /// the token judged dead (read from the process slot the entry names)
        owner: u64,
    },
}

impl<'a> Segment<'a> {
    /// Evicts consumer entry `idx` of generation `gen` and frees it for reuse under generation
    /// `gen + 1`; a late operation of the evicted consumer then returns
    /// [`ClaimError::Evicted`] and has no effect.
    ///
    /// - [`Reclaim::Idle`] is safe at any time: it succeeds only when the consumer is between
    ///   operations **and holds no frame** (a subscriber that stopped reading, say), so it can
    ///   never take a slot from a live reader. A consumer that holds frames is refused with
    ///   [`ReclaimError::Holding`].
    /// - [`Reclaim::Dead`] asserts that the process `owner` is dead (it can never resume), and
    ///   acts only while the entry's process slot still names `owner`: its holds are cleared
    ///   from every slot (a worker's frames become FREE). A judgement is thus tied to the
    ///   occupant it was made about — generation and owner together.
    ///
    /// Either way an entry found RECLAIMING at `gen` (a reclaim or an `unregister` stopped by a
    /// crash, or one running right now) is finished: finishing is idempotent and safe to run
    /// in any number of processes at once, because every hold is cleared by a CAS validated
    /// against the entry still being RECLAIMING at `gen` (see `finish`).
    ///
    /// # Examples
    /// ```
    /// # use framebus_core::*;
    /// # use framebus_core::segment::{Reclaim, ReclaimError};
    /// # let spec = SegmentSpec::new(FrameGeometry::new(8, 1, PixelFormat::Gray8), 2);
    /// # let heap = HeapRegion::for_layout(&Layout::compute(&spec).unwrap());
    /// # let seg = Segment::create(heap.region(), &spec, Creator::default()).unwrap();
    /// # let mut p = seg.attach_producer(1).unwrap();
    /// let mut w = seg.register(ConsumerKind::Worker, 7).unwrap();
    /// p.begin().unwrap().publish(FrameMeta::default());
    /// let _frame = w.claim().unwrap();
    /// assert_eq!(seg.reclaim(w.index(), w.generation(), Reclaim::Idle), Err(ReclaimError::Holding { frames: 1 }));
    /// // ... the platform finds process 7 dead:
    /// let r = seg.reclaim(w.index(), w.generation(), Reclaim::Dead { owner: 7 }).unwrap();
    /// assert_eq!(r.cleared, 1);
    /// ```
    ///
    /// # Errors
    /// [`ReclaimError`] when nothing was done.
    pub fn reclaim(&self, idx: u32, gen: u64, how: Reclaim) -> Result<Reclaimed, ReclaimError> {
        self.reclaim_impl(idx, gen, how, NEVER).map(|r| r.expect("runs to completion"))
    }

    /// Fault injection for crash tests: [`Segment::reclaim`] stopped dead after step `step`
    /// (1 ..= [`fault::UNREGISTER_STEPS`]), as a reaper killed there leaves it. `Ok(true)` when
    /// it stopped there.
    ///
    /// # Errors
    /// As [`Segment::reclaim`].
    #[doc(hidden)]
    pub fn reclaim_dying(&self, idx: u32, gen: u64, how: Reclaim, step: u32) -> Result<bool, ReclaimError> {
        self.reclaim_impl(idx, gen, how, step).map(|r| r.is_none())
    }

    pub(super) fn reclaim_impl(
        &self,
        idx: u32,
        gen: u64,
        how: Reclaim,
        die: u32,
    ) -> Result<Option<Reclaimed>, ReclaimError> {
        let n = self.layout.spec.max_consumers;
        if idx >= n {
            return Err(ReclaimError::NoSuchEntry);
        }
        let w = self.entry(idx, ctl::consumer::STATE);
        // SYNC POINT entry-evict: Acquire pairs with the Release bracket CAS in `Consumer::leave`.
        let mut cur = w.load(Ordering::Acquire);
        let mut reclaiming = false;
        for _ in 0..RETRY_LIMIT {
            let st = EntryState::decode(cur);
            if st.gen != gen {
                return Err(ReclaimError::Stale);
            }
            match st.status {
                EntryStatus::Reclaiming => {
                    reclaiming = true;
                    break;
                }
                EntryStatus::Alive => {}
                EntryStatus::Free | EntryStatus::Invalid => return Err(ReclaimError::Stale),
            }
            match how {
                Reclaim::Idle if st.busy => return Err(ReclaimError::Busy),
                Reclaim::Idle if st.holds != 0 => return Err(ReclaimError::Holding { frames: st.holds }),
                Reclaim::Idle => {}
                Reclaim::Dead { owner } => {
                    // The entry word we CAS from names slot `st.process`, and a slot is never
                    // reused while an entry names it: if it holds `owner` now, the occupant we
                    // evict is the process judged dead.
                    if st.process >= n || self.process_token(st.process) != owner {
                        return Err(ReclaimError::Stale);
                    }
                }
            }
            // SYNC POINT entry-evict: same word as the consumer's bracket CAS in
            // `Consumer::enter` / `leave`: exactly one of them wins, and the holds count we
            // checked is the one in force when we win.
            match w.compare_exchange(
                cur,
                entry_word(ENTRY_RECLAIMING, false, 0, 0, st.process, gen),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    reclaiming = true;
                    break;
                }
                Err(now) => cur = now,
            }
        }
        if !reclaiming {
            return Err(ReclaimError::Contended);
        }
        if die == 1 {
            return Ok(None);
        }
        self.finish(idx, gen, die)
    }

    /// True while entry `idx` is RECLAIMING at generation `gen`.
    ///
    /// SYNC POINT reclaim-validate: called between an Acquire load of a shared word that carries
    /// entry `idx`'s bit (a slot word, the frame-waiter word) and the CAS that would clear it.
    /// That CAS must never clear a bit of the entry's *next* occupant N. Two cases:
    /// - The value the finisher loaded carries N's bit: it was written by N's claim (or
    ///   announce) RMW or a later RMW (every write of a word that still has the bit is an RMW,
    ///   so they continue its release sequence), which N made after registering, i.e. after its
    ///   Acquire of the FREE word a finisher stored with Release. This Acquire load of the entry
    ///   then sees FREE or later, and the caller leaves the bit alone.
    /// - The value carries the dead occupant's bit, but the word has since become that value
    ///   again with N's bit (ABA), so the CAS would succeed. For the frame-waiter word the
    ///   version in bits 16-63, bumped by every change, rules that out. For a slot word it
    ///   cannot happen: the same word means the same frame (same slot generation), which N would
    ///   have claimed, but N claims only frames published after it registered (subscribers and
    ///   latest readers start their cursor at the `write_pos` they read after registering, which
    ///   is past every frame the dead occupant held), and a worker's claim is exclusive, so a
    ///   worker's frame goes FREE and is rewritten (new generation) before anyone claims it.
    ///
    /// loom: `late_finishers_never_clear_the_next_occupants_hold` and
    /// `a_dead_sleepers_bit_is_cleared_by_its_reclaim_and_never_the_next_occupants` (which fails
    /// without either the re-check or the version).
    pub(super) fn reclaiming(&self, idx: u32, gen: u64) -> bool {
        let st = EntryState::decode(self.entry(idx, ctl::consumer::STATE).load(Ordering::Acquire));
        st.status == EntryStatus::Reclaiming && st.gen == gen
    }

    /// Finishes the reclaim of entry `idx` at `gen`: clears its bit from every slot and from the
    /// frame-waiter mask, each by a CAS validated with `reclaiming`, then frees the entry.
    /// Several finishers may run at once (a crashed reclaim, a reap, the owner's own
    /// `unregister`): each bit is cleared exactly once, by whoever's CAS wins, and the FREE CAS
    /// succeeds exactly once; the others return [`ReclaimError::Stale`].
    pub(super) fn finish(&self, idx: u32, gen: u64, die: u32) -> Result<Option<Reclaimed>, ReclaimError> {
        let bit = 1u16 << idx;
        let mut cleared = 0;
        let mut redelivered = 0;
        let mut out = Ok(());
        for s in 0..self.layout.spec.slot_count {
            // A worker's frame (a TAKEN slot with our bit, on a segment with results) whose
            // result is still open goes back to the workers once, READY again at the same
            // generation, its result cell left open; or — the second time, under
            // `lost_on_death`, or with its result being written — its fate (the worker died)
            // goes into its result cell before it leaves its slot. Validated like the clear below,
            // so never for the next occupant.
            if self.has_results() {
                let st = SlotState::decode(self.slot_word(s, ctl::slot::STATE).load(Ordering::Acquire));
                if st.kind == SlotKind::Taken && st.holders & bit != 0 && self.reclaiming(idx, gen) {
                    let again = self.slot_word(s, ctl::slot::REDELIVERED_GEN);
                    // Relaxed: written before our CAS below, which publishes it (SYNC POINT
                    // redeliver); an earlier reclaim's value reached us through the claim CAS
                    // chain that our Acquire load of the state ends.
                    let seq = self.slot_word(s, ctl::slot::SEQ).load(Ordering::Relaxed);
                    // Only a frame still waiting for its result goes back: one whose result is
                    // posted (the worker died before its release), being written (a dead
                    // poster: `resolve_dead_posts` skips it) or already skipped has its fate.
                    if !self.layout.spec.lost_on_death
                        && st.holders == bit
                        && again.load(Ordering::Relaxed) != st.gen
                        && self.cell_open_for(seq)
                    {
                        // At the next generation: the word `TAKEN(g, bit)` the dead worker held
                        // can then never come back (the entry's next occupant claiming the frame
                        // writes `TAKEN(g + 1, bit)`), so no slow finisher of this reclaim can
                        // take it for the dead one's (the ABA argument of LAYOUT §5 holds).
                        let next = st.gen.wrapping_add(1) & GEN_MASK;
                        again.store(next, Ordering::Relaxed);
                        let back = |w| {
                            let now = SlotState::decode(w);
                            (now.kind == SlotKind::Taken && now.holders == bit && now.gen == st.gen)
                                .then(|| SlotState { gen: next, kind: SlotKind::Ready, holders: 0 }.encode())
                        };
                        match self.clear_validated(self.slot_word(s, ctl::slot::STATE), idx, gen, back) {
                            Ok(true) => {
                                redelivered += 1;
                                continue;
                            }
                            // Another finisher of this reclaim put it back first.
                            Ok(false) => {}
                            Err(e) => {
                                out = Err(e);
                                break;
                            }
                        }
                    } else {
                        self.mark_skip(seq, crate::vocab::SkipCause::WorkerDied);
                    }
                }
            }
            // SYNC POINT slot-release (by reclaim): as in `Consumer::release`.
            let held = |w| {
                let st = SlotState::decode(w);
                (st.holders & bit != 0 && matches!(st.kind, SlotKind::Ready | SlotKind::Taken))
                    .then(|| released(st, bit).encode())
            };
            match self.clear_validated(self.slot_word(s, ctl::slot::STATE), idx, gen, held) {
                Ok(c) => cleared += u32::from(c),
                Err(e) => {
                    out = Err(e);
                    break;
                }
            }
        }
        // Statistics only; nothing is ordered by this counter.
        self.ctl(ctl::RECLAIMED).fetch_add(u64::from(cleared + redelivered), Ordering::Relaxed);
        if redelivered > 0 {
            self.ctl(ctl::REDELIVERED).fetch_add(u64::from(redelivered), Ordering::Relaxed);
            // SYNC POINT redeliver: Release, after the CASes to READY; pairs with the Acquire
            // load in `claim_redelivered`. Then wake sleeping workers, as a publish does.
            self.ctl(ctl::REDELIVER).fetch_add(1, Ordering::Release);
            self.bump_if_waiters(ctl::FRAME_WAKE, ctl::FRAME_WAITERS, FRAME_SLEEPERS);
        }
        // A Contended sweep leaves the entry RECLAIMING: any later reclaim or reap finishes it.
        out?;
        // A poster that died mid-copy leaves its cell WRITING: skip it (worker-died), so the
        // ordered reader never waits for it. Validated the same way as the holds.
        if self.has_results() {
            self.resolve_dead_posts(idx, gen)?;
        }
        if die == 2 {
            return Ok(None);
        }
        // The consumer may have died asleep: take its bit out of the frame-waiter mask, or
        // every publish from now on would make a wake-up call for nobody.
        let bit = u64::from(bit);
        self.clear_validated(self.ctl(ctl::FRAME_WAITERS), idx, gen, |m| {
            (m & bit != 0).then(|| waiters_with(m, false, bit))
        })?;
        if die == 3 {
            return Ok(None);
        }
        let w = self.entry(idx, ctl::consumer::STATE);
        let cur = w.load(Ordering::Relaxed);
        let st = EntryState::decode(cur);
        if st.status != EntryStatus::Reclaiming || st.gen != gen {
            return Err(ReclaimError::Stale);
        }
        // SYNC POINT entry-free: Release pairs with the Acquire CAS in `register`; the entry
        // may be reused only after every hold was cleared. A CAS: exactly one finisher frees.
        w.compare_exchange(
            cur,
            entry_word(ENTRY_FREE, false, 0, 0, 0, gen.wrapping_add(1)),
            Ordering::Release,
            Ordering::Relaxed,
        )
        .map_err(|_| ReclaimError::Stale)?;
        // Freed slots, or a subscriber cursor no longer holding the producer back: wake it.
        let wake = self.bump_if_waiters(ctl::SPACE_WAKE, ctl::SPACE_WAITERS, SPACE_SLEEPERS);
        Ok(Some(Reclaimed { cleared, wake }))
    }

    /// Takes entry `idx`'s bit out of `word` for its reclaim at `gen`: `without(value)` is the
    /// value with the bit cleared, or `None` when the bit is not (or no longer) there. Each
    /// attempt loads the word (Acquire), re-checks that the entry is still RECLAIMING at `gen`
    /// (SYNC POINT reclaim-validate, see `reclaiming`: never a bit of the next occupant), and
    /// CASes. `Ok(true)` when this call cleared it.
    pub(super) fn clear_validated(
        &self,
        word: &AtomicU64,
        idx: u32,
        gen: u64,
        without: impl Fn(u64) -> Option<u64>,
    ) -> Result<bool, ReclaimError> {
        // Acquire: SYNC POINT reclaim-validate.
        let mut cur = word.load(Ordering::Acquire);
        for _ in 0..RETRY_LIMIT {
            let Some(next) = without(cur) else { return Ok(false) };
            if !self.reclaiming(idx, gen) {
                return Err(ReclaimError::Stale);
            }
            // AcqRel: the Release half is SYNC POINT slot-release for slot words; Acquire on
            // failure for SYNC POINT reclaim-validate on the next attempt.
            match word.compare_exchange(cur, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(true),
                Err(now) => cur = now,
            }
        }
        Err(ReclaimError::Contended)
    }

    /// Reclaims every consumer entry whose process `is_alive` calls dead, and finishes every
    /// reclaim a crash left half-done; calls `each(entry, what was reclaimed)` for each entry
    /// it freed and returns how many. The platform calls it with its liveness check; a
    /// [`Reclaimed::wake`] asks it to wake the producer's space-wake word.
    ///
    /// Each judgement is tied to its occupant: the entry's generation and the token in the
    /// process slot it names, passed on as [`Reclaim::Dead`]. No entry is skipped for its
    /// owner's value: an ALIVE entry always names a claimed process slot (step 2 of
    /// [`Segment::register_with`]), so a registrant killed anywhere is found dead.
    pub fn reap(&self, is_alive: impl Fn(u64) -> bool, mut each: impl FnMut(u32, Reclaimed)) -> u32 {
        let n = self.layout.spec.max_consumers;
        let mut freed = 0;
        for idx in 0..n {
            let st = self.entry_state(idx);
            let how = match st.status {
                EntryStatus::Free | EntryStatus::Invalid => continue,
                EntryStatus::Reclaiming => Reclaim::Idle,
                EntryStatus::Alive if st.process >= n => continue,
                EntryStatus::Alive => {
                    let owner = self.process_token(st.process);
                    if owner != 0 && is_alive(owner) {
                        continue;
                    }
                    Reclaim::Dead { owner }
                }
            };
            if let Ok(r) = self.reclaim(idx, st.gen, how) {
                each(idx, r);
                freed += 1;
            }
        }
        freed
    }
}
