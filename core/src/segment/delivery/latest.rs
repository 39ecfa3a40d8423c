//! Latest: the newest complete frame, skipping older ones, on either pattern (a viewer).

use crate::segment::*;

impl<'a> Consumer<'a> {
    pub(in crate::segment) fn claim_latest(&mut self) -> Result<Frame, ClaimError> {
        let seg = self.seg;
        let ring = u64::from(seg.layout.ring_capacity);
        // SYNC POINT write-pos: pairs with the Release store in `WriteSlot::publish`.
        let wp = seg.ctl(ctl::WRITE_POS).load(Ordering::Acquire);
        if wp <= self.cursor {
            return Err(if wp < self.cursor { ClaimError::Corrupt } else { seg.empty_or_ended(wp) });
        }
        // Newest first; fall back to older frames if the newest was recycled meanwhile.
        let oldest = self.cursor.max(wp.saturating_sub(ring));
        let mut pos = wp;
        while pos > oldest {
            pos -= 1;
            if let Some(frame) = self.try_hold(pos, false)? {
                self.skipped += pos - self.cursor;
                self.cursor = pos + 1;
                self.delivered += 1;
                self.store_cursor();
                return Ok(frame);
            }
        }
        Err(ClaimError::Empty)
    }
}
