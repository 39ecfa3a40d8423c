//! Work queue: each frame to exactly one worker. Workers race on the shared claim cursor;
//! the winner of a position takes the frame exclusively.

use crate::segment::*;

impl<'a> Consumer<'a> {
    pub(in crate::segment) fn claim_work(&mut self) -> Result<Frame, ClaimError> {
        let seg = self.seg;
        // Frames a dead worker held come first (rare: the hint is 0 otherwise).
        if let Some(frame) = self.claim_redelivered()? {
            seg.ctl(ctl::DELIVERED).fetch_add(1, Ordering::Relaxed);
            self.delivered += 1;
            seg.entry(self.idx, ctl::consumer::DELIVERED).store(self.delivered, Ordering::Relaxed);
            return Ok(frame);
        }
        let cursor = seg.ctl(ctl::CLAIM_CURSOR);
        for _ in 0..RETRY_LIMIT {
            // SYNC POINT claim-cursor: Acquire pairs with the AcqRel CASes below that advanced it.
            // No payload travels on this edge (that is `ring-cell` and `slot-ready`), and
            // exclusivity rests on the slot CAS in `try_hold`, not on the cursor. The pair only
            // makes a worker that sees the cursor past `c` also see why (frame `c` held, or no
            // longer READY), which keeps each step's reasoning local.
            let c = cursor.load(Ordering::Acquire);
            // SYNC POINT write-pos: pairs with the Release store in `WriteSlot::publish`.
            let wp = seg.ctl(ctl::WRITE_POS).load(Ordering::Acquire);
            if c >= wp {
                if c > wp {
                    return Err(ClaimError::Corrupt);
                }
                return Err(seg.empty_or_ended(c));
            }
            let ring = u64::from(seg.layout.ring_capacity);
            if wp - c > ring {
                // Positions before wp - ring had their cells overwritten: those frames can no
                // longer be claimed through the ring (they were dropped or consumed). Jump, so a
                // worker that fell far behind a DropOldest producer catches up in one step.
                // SYNC POINT claim-cursor: the Release half pairs with the Acquire load above.
                let _ = cursor.compare_exchange(c, wp - ring, Ordering::AcqRel, Ordering::Relaxed);
                continue;
            }
            match self.try_hold(c, true)? {
                Some(frame) => {
                    // Move the cursor on; if someone else already did, fine.
                    // SYNC POINT claim-cursor: Release half, after our hold on frame `c`.
                    let _ = cursor.compare_exchange(c, c + 1, Ordering::AcqRel, Ordering::Relaxed);
                    seg.ctl(ctl::DELIVERED).fetch_add(1, Ordering::Relaxed);
                    self.delivered += 1;
                    // This worker's own count, for `inspect` and operators (statistics: Relaxed;
                    // only this consumer writes its line's counters).
                    seg.entry(self.idx, ctl::consumer::DELIVERED).store(self.delivered, Ordering::Relaxed);
                    return Ok(frame);
                }
                None => {
                    // Frame `c` has left READY for good (claimed, dropped, or its cell reused):
                    // help move the cursor past it, then look again.
                    // SYNC POINT claim-cursor: Release half, after seeing `c` gone.
                    let _ = cursor.compare_exchange(c, c + 1, Ordering::AcqRel, Ordering::Relaxed);
                }
            }
        }
        Err(ClaimError::Contended)
    }

    /// Takes a frame a reclaim put back (READY, no holders, `redelivered_gen` = its generation)
    /// when the `redeliver` hint says there may be one; a look that finds none clears the hint
    /// from the value it read (a redelivery since has bumped it: the CAS fails, the hint stays).
    fn claim_redelivered(&mut self) -> Result<Option<Frame>, ClaimError> {
        let seg = self.seg;
        // Only segments with results redeliver: the others pay no shared load on the claim path.
        if !seg.has_results() {
            return Ok(None);
        }
        let hint = seg.ctl(ctl::REDELIVER);
        // SYNC POINT redeliver: Acquire pairs with the Release bump in `Segment::finish`, made
        // after the slot's CAS to READY: a worker that reads the bump finds the slot READY.
        let h = hint.load(Ordering::Acquire);
        if h == 0 {
            return Ok(None);
        }
        let bit = 1u16 << self.idx;
        for s in 0..seg.layout.spec.slot_count {
            let w = seg.slot_word(s, ctl::slot::STATE);
            let cur = w.load(Ordering::Acquire);
            let st = SlotState::decode(cur);
            // Relaxed: ordered after the reclaim's store by the Acquire load of the state above
            // (the reclaim's CAS to READY released it); the claim CAS below re-validates.
            if st.kind != SlotKind::Ready
                || st.holders != 0
                || seg.slot_word(s, ctl::slot::REDELIVERED_GEN).load(Ordering::Relaxed) != st.gen
            {
                continue;
            }
            // SYNC POINT slot-ready (as in `try_hold`): the exclusive claim of the put-back frame.
            if w.compare_exchange(cur, st.with(SlotKind::Taken, bit).encode(), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(Some(seg.read_frame(s, st.gen)));
            }
        }
        // SYNC POINT redeliver: nothing found; clear the hint unless it moved since we read it.
        let _ = hint.compare_exchange(h, 0, Ordering::AcqRel, Ordering::Relaxed);
        Ok(None)
    }
}
