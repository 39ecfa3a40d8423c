//! What the simulation's processes tell each other, as fixed little-endian words:
//!
//! - a worker's result for a frame, posted through the frames segment's results area
//!   (`docs/LAYOUT.md` §6b): one [`Outcome`] ([`OUTCOME_BYTES`]) per frame it ran; the ordered
//!   reader gets them, and every frame without one, in frame order;
//! - the producer's [`Sidecar`] in each slot, after the frame's bytes: when it was published;
//! - the ordered output for viewers (`NAME.out`, [`super::channel`]): one [`RECORD_BYTES`]
//!   record per frame, in order, skips included.

/// Bytes of one record slot in the ordered output (`NAME.out`).
pub const RECORD_BYTES: u32 = 256;

/// Bytes of an encoded [`Outcome`]: the frames segment's `result_max` in a simulation.
pub const OUTCOME_BYTES: u32 = 13 * 8;

/// Bytes the simulation reserves in each slot after the frame for the [`Sidecar`].
pub const SIDECAR_BYTES: u32 = 64;

/// What the producer writes after a frame's bytes in its slot (outside `payload_len` and the
/// checksum): the frame's publish time, so the collector can tell queueing from transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sidecar {
    /// when the producer called `publish` (the platform's monotonic clock, `now_ns`)
    pub publish_ns: u64,
    /// decode and colour conversion of this frame, ns
    pub decode_ns: u64,
}

impl Sidecar {
    /// Writes the sidecar into `out` (at least 16 bytes).
    pub fn encode(&self, out: &mut [u8]) {
        put(out, &[self.publish_ns, self.decode_ns]);
    }

    /// Reads a sidecar (None when `b` is too short).
    #[must_use]
    pub fn decode(b: &[u8]) -> Option<Sidecar> {
        let w = get::<2>(b)?;
        Some(Sidecar { publish_ns: w[0], decode_ns: w[1] })
    }
}

/// Flag of a record in the collector's ordered output (`NAME.out`) whose frame has no result
/// (dropped by the producer, or given up); the record's `seq` names it, the rest is zero.
pub const OUT_SKIPPED: u32 = 1;

/// The content checksum both ends of a frame compute: the layout's own
/// ([`content_checksum`](framebus_platform::core::segment::content_checksum), documented in
/// `docs/LAYOUT.md` §4). The stub accelerator runtime (`snpe-sys`, C) computes the same function
/// over the slot in place; a unit test there checks both agree.
pub use framebus_platform::core::segment::content_checksum as checksum;

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
    /// the frame's capture time, from its descriptor
    pub capture_ns: u64,
    /// when the producer published it, from its [`Sidecar`]
    pub publish_ns: u64,
    /// the frame came back from a worker that died (its claim is out of publish order)
    pub redelivered: bool,
}

impl Outcome {
    /// Encodes into the first [`OUTCOME_BYTES`] of `out`.
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
                self.capture_ns,
                self.publish_ns,
                u64::from(self.redelivered),
            ],
        );
    }

    /// Decodes what [`Outcome::encode`] wrote.
    #[must_use]
    pub fn decode(b: &[u8]) -> Option<Outcome> {
        let w = get::<13>(b)?;
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
            capture_ns: w[10],
            publish_ns: w[11],
            redelivered: w[12] != 0,
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
        let mut b = [0u8; OUTCOME_BYTES as usize];
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
            capture_ns: 15,
            publish_ns: 16,
            redelivered: true,
        };
        o.encode(&mut b);
        assert_eq!(Outcome::decode(&b), Some(o));
        assert_eq!(Outcome::decode(&b[..OUTCOME_BYTES as usize - 1]), None, "a short record is refused");
        b[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(Outcome::decode(&b), None, "a worker number out of range is refused");
        let sc = Sidecar { publish_ns: 5, decode_ns: 6 };
        sc.encode(&mut b);
        assert_eq!(Sidecar::decode(&b), Some(sc));
    }
}
