//! Broadcast: every frame to every subscriber. Each subscriber has its own cursor, which it
//! publishes for the producer: a slot is reused only when every subscriber is past it (or,
//! under a drop policy, by dropping for the slowest).

use crate::segment::*;

impl<'a> Consumer<'a> {
    pub(in crate::segment) fn store_cursor(&self) {
        // SYNC POINT subscriber-cursor: pairs with the Acquire load in `Producer::min_cursor`.
        self.seg.entry(self.idx, ctl::consumer::CURSOR).store(self.cursor, Ordering::Release);
        self.seg.entry(self.idx, ctl::consumer::DELIVERED).store(self.delivered, Ordering::Relaxed);
        self.seg.entry(self.idx, ctl::consumer::SKIPPED).store(self.skipped, Ordering::Relaxed);
    }

    pub(in crate::segment) fn claim_broadcast(&mut self) -> Result<Frame, ClaimError> {
        let seg = self.seg;
        let ring = u64::from(seg.layout.ring_capacity);
        let mut result = Err(ClaimError::Contended);
        for _ in 0..RETRY_LIMIT {
            // SYNC POINT write-pos: pairs with the Release store in `WriteSlot::publish`.
            let wp = seg.ctl(ctl::WRITE_POS).load(Ordering::Acquire);
            if self.cursor >= wp {
                result = Err(if self.cursor > wp { ClaimError::Corrupt } else { seg.empty_or_ended(wp) });
                break;
            }
            if wp - self.cursor > ring {
                // Cells before wp - ring are overwritten: those frames are gone for us.
                self.skipped += wp - ring - self.cursor;
                self.cursor = wp - ring;
            }
            match self.try_hold(self.cursor, false) {
                Ok(Some(frame)) => {
                    self.cursor += 1;
                    self.delivered += 1;
                    result = Ok(frame);
                    break;
                }
                Ok(None) => {
                    self.cursor += 1;
                    self.skipped += 1;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.store_cursor();
        result
    }
}

impl<'a> Producer<'a> {
    /// Smallest cursor of the live subscribers (`u64::MAX` when there are none).
    pub(in crate::segment) fn min_cursor(&self) -> u64 {
        let mut min = u64::MAX;
        for idx in 0..self.seg.layout.spec.max_consumers {
            // SYNC POINT entry-alive: pairs with the Release store in `register`.
            let st = EntryState::decode(self.seg.entry(idx, ctl::consumer::STATE).load(Ordering::Acquire));
            // ALIVE subscribers only: a RECLAIMING entry's kind is cleared (its holds alone keep
            // its slots), and a joining one has no kind yet (`register_with`, steps 2-4). An
            // Invalid word is counted, which is only more careful.
            if st.status != EntryStatus::Free && st.kind == Some(ConsumerKind::Subscriber) {
                // SYNC POINT subscriber-cursor: pairs with the Release store in `Consumer::claim_broadcast`.
                min = min.min(self.seg.entry(idx, ctl::consumer::CURSOR).load(Ordering::Acquire));
            }
        }
        min
    }
}
