//! What the simulation's processes tell each other, as fixed little-endian records in the
//! slots of small framebus segments (one per sender).
//!
//! - `NAME.ev`: producer → collector, one [`Event`] per published or dropped frame, and one at
//!   the end; the collector learns from it exactly which sequence numbers to expect.
//! - `NAME.rK`: worker K → collector, one [`Outcome`] per frame the worker ran.

/// Bytes of one record slot in the event and result segments.
pub const RECORD_BYTES: u32 = 256;

/// Flag of a record in the collector's ordered output (`NAME.out`) whose frame has no result
/// (dropped by the producer, or given up); the record's `seq` names it, the rest is zero.
pub const OUT_SKIPPED: u32 = 1;

/// The content checksum both ends of a frame compute: the layout's own
/// ([`content_checksum`](framebus_platform::core::segment::content_checksum), documented in
/// `docs/LAYOUT.md` §4). The stub accelerator runtime (`snpe-sys`, C) computes the same function
/// over the slot in place; a unit test there checks both agree.
pub use framebus_platform::core::segment::content_checksum as checksum;

/// Why the producer did not deliver a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropCause {
    /// `drop-oldest`: a newer frame took the slot of this unclaimed one.
    Oldest,
    /// `drop-newest`: no slot was free, so this frame was not published.
    Newest,
}

/// One producer event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Frame `seq` was published at `publish_ns`.
    Published {
        /// sequence number
        seq: u64,
        /// when it was due (the simulated camera's capture instant)
        capture_ns: u64,
        /// when `publish` was called
        publish_ns: u64,
        /// decode + convert time of this frame
        decode_ns: u64,
        /// the content checksum the producer computed over the slot
        checksum: u64,
    },
    /// Frame `seq` will never reach a worker.
    Dropped {
        /// sequence number
        seq: u64,
        /// when it was due
        capture_ns: u64,
        /// why
        cause: DropCause,
    },
    /// The producer is done: `next_seq` sequence numbers were issued in all.
    End {
        /// first sequence number never issued
        next_seq: u64,
    },
}

impl Event {
    /// Encodes into the first 48 bytes of `out`.
    pub fn encode(&self, out: &mut [u8]) {
        let words: [u64; 6] = match *self {
            Event::Published { seq, capture_ns, publish_ns, decode_ns, checksum } => {
                [1, seq, capture_ns, publish_ns, decode_ns, checksum]
            }
            Event::Dropped { seq, capture_ns, cause } => {
                [if cause == DropCause::Oldest { 2 } else { 3 }, seq, capture_ns, 0, 0, 0]
            }
            Event::End { next_seq } => [4, next_seq, 0, 0, 0, 0],
        };
        put(out, &words);
    }

    /// Decodes what [`Event::encode`] wrote; `None` for an unknown kind.
    #[must_use]
    pub fn decode(b: &[u8]) -> Option<Event> {
        let w = get::<6>(b)?;
        Some(match w[0] {
            1 => Event::Published { seq: w[1], capture_ns: w[2], publish_ns: w[3], decode_ns: w[4], checksum: w[5] },
            2 => Event::Dropped { seq: w[1], capture_ns: w[2], cause: DropCause::Oldest },
            3 => Event::Dropped { seq: w[1], capture_ns: w[2], cause: DropCause::Newest },
            4 => Event::End { next_seq: w[1] },
            _ => return None,
        })
    }
}

/// What a worker reports for one frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// sequence number of the frame
    pub seq: u64,
    /// which worker (0-based)
    pub worker: u32,
    /// when the worker started waiting for a frame
    pub claim_start_ns: u64,
    /// when `claim` returned it
    pub claim_ns: u64,
    /// when the worker was done with the frame (model call and its own pre/post-processing)
    pub done_ns: u64,
    /// duration of the model call alone
    pub call_ns: u64,
    /// the producer's checksum from the frame descriptor
    pub sent_checksum: u64,
    /// the checksum the accelerator runtime computed over the slot in place
    pub seen_checksum: u64,
    /// the model's coarse result: changed grid cells against this worker's previous frame
    pub changed_cells: u32,
    /// mean luminance (0–255) of the frame
    pub mean_luma: u32,
}

impl Outcome {
    /// Encodes into the first 80 bytes of `out`.
    pub fn encode(&self, out: &mut [u8]) {
        put(
            out,
            &[
                self.seq,
                u64::from(self.worker),
                self.claim_start_ns,
                self.claim_ns,
                self.done_ns,
                self.sent_checksum,
                self.seen_checksum,
                u64::from(self.changed_cells),
                u64::from(self.mean_luma),
                self.call_ns,
            ],
        );
    }

    /// Decodes what [`Outcome::encode`] wrote.
    #[must_use]
    pub fn decode(b: &[u8]) -> Option<Outcome> {
        let w = get::<10>(b)?;
        Some(Outcome {
            seq: w[0],
            worker: u32::try_from(w[1]).ok()?,
            claim_start_ns: w[2],
            claim_ns: w[3],
            done_ns: w[4],
            sent_checksum: w[5],
            seen_checksum: w[6],
            changed_cells: u32::try_from(w[7]).ok()?,
            mean_luma: u32::try_from(w[8]).ok()?,
            call_ns: w[9],
        })
    }
}

fn put(out: &mut [u8], words: &[u64]) {
    for (chunk, w) in out.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
}

fn get<const N: usize>(b: &[u8]) -> Option<[u64; N]> {
    if b.len() < N * 8 {
        return None;
    }
    let mut w = [0u64; N];
    for (i, v) in w.iter_mut().enumerate() {
        *v = u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().ok()?);
    }
    Some(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_fnv1a_per_word_then_tail_then_length() {
        assert_eq!(checksum(&[]), 0xcbf2_9ce4_8422_2325);
        // One byte: FNV-1a of that byte, then the length.
        let one = (0xcbf2_9ce4_8422_2325u64 ^ 0x61).wrapping_mul(0x100_0000_01b3) ^ 1;
        assert_eq!(checksum(b"a"), one);
        assert_ne!(checksum(b"abcdefgh"), checksum(b"abcdefgi"), "a changed byte changes it");
        assert_ne!(checksum(&[0; 8]), checksum(&[0; 16]), "the length counts");
    }

    #[test]
    fn records_round_trip() {
        let mut b = [0u8; RECORD_BYTES as usize];
        for e in [
            Event::Published { seq: 7, capture_ns: 1, publish_ns: 2, decode_ns: 3, checksum: 6 },
            Event::Dropped { seq: 8, capture_ns: 4, cause: DropCause::Oldest },
            Event::Dropped { seq: 9, capture_ns: 5, cause: DropCause::Newest },
            Event::End { next_seq: 10 },
        ] {
            e.encode(&mut b);
            assert_eq!(Event::decode(&b), Some(e));
        }
        let o = Outcome {
            seq: 3,
            worker: 2,
            claim_start_ns: 10,
            claim_ns: 11,
            done_ns: 12,
            sent_checksum: 13,
            seen_checksum: 14,
            changed_cells: 5,
            mean_luma: 100,
            call_ns: 9,
        };
        o.encode(&mut b);
        assert_eq!(Outcome::decode(&b), Some(o));
        b[..8].copy_from_slice(&99u64.to_le_bytes());
        assert_eq!(Event::decode(&b), None, "an unknown kind is refused");
    }
}
