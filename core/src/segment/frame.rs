//! What travels with a frame: the producer's metadata, the content checksum that is part of
//! the layout (`docs/LAYOUT.md` §4), and the frame a consumer holds.

/// Metadata a producer attaches to a frame. Sequence and position are assigned at publish.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameMeta {
    /// Capture time in ns (source clock).
    pub capture_ns: u64,
    /// Presentation time in ns.
    pub pts_ns: u64,
    /// Width of this frame in pixels.
    pub width: u32,
    /// Height of this frame.
    pub height: u32,
    /// Pixel format code ([`crate::PixelFormat`] as `u32`).
    pub pixel_format: u32,
    /// Application flags ([`FLAG_CHECKSUM`] is reserved).
    pub flags: u32,
    /// Bytes of payload used.
    pub payload_len: u64,
    /// Optional content checksum (sets [`FLAG_CHECKSUM`]).
    pub checksum: Option<u64>,
}

/// Descriptor flag: the `checksum` field is valid (bit 31 of the 32-bit flags, i.e. bit 63 of
/// the descriptor's `format_flags` word). The checksum is [`content_checksum`] of the payload's
/// first `payload_len` bytes.
pub const FLAG_CHECKSUM: u32 = 1 << 31;

/// The content checksum of a frame (layout v2, `docs/LAYOUT.md` §4): FNV-1a over the bytes taken
/// as little-endian 64-bit words — `h = 0xcbf29ce484222325`, then for each whole word
/// `h = (h ^ word) * 0x100000001b3` (mod 2⁶⁴) —, then each tail byte the same way, then
/// `h ^ len`. One multiply per 8 bytes: a 1080p BGR frame costs about a millisecond. It detects
/// torn or overwritten frames, not tampering.
///
/// # Examples
/// ```
/// use framebus_core::segment::content_checksum;
/// assert_eq!(content_checksum(b""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(content_checksum(b"framebus"), 0xd266_b9bf_5d63_14d1);
/// ```
#[must_use]
pub fn content_checksum(bytes: &[u8]) -> u64 {
    pub(super) const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h = (h ^ u64::from_le_bytes(w.try_into().expect("8-byte chunk"))).wrapping_mul(PRIME);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(PRIME);
    }
    h ^ bytes.len() as u64
}

/// A frame held by a consumer: its slot, identity and metadata. Give it back with
/// [`Consumer::release`](super::Consumer::release); until then the producer cannot touch the slot.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a claimed frame holds its slot until released"]
pub struct Frame {
    /// Slot index.
    pub slot: u32,
    /// Slot generation at claim (identifies this frame in the slot).
    pub gen: u64,
    /// Publish position (dense count of published frames).
    pub pos: u64,
    /// Sequence number (never reused; gaps are drops).
    pub seq: u64,
    /// Producer epoch that published it.
    pub epoch: u64,
    /// Metadata.
    pub meta: FrameMeta,
    /// This frame was held by a worker that died, and came back to the workers (once; it is
    /// the same frame: frames are read-only). Claims of redelivered frames do not follow publish
    /// order.
    pub redelivered: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vectors of `docs/LAYOUT.md` §4 are what `content_checksum` computes: the doc
    /// an outside implementer follows cannot drift from the code.
    #[test]
    fn content_checksum_matches_the_layout_doc_vectors() {
        let doc = include_str!("../../../docs/LAYOUT.md");
        let mut checked = 0;
        for line in doc.lines().filter(|l| l.starts_with("| checksum vector |")) {
            let cells: heapless::Vec<&str, 8> = line.split('|').map(str::trim).collect();
            let (input, want) = (cells[2], cells[3]);
            let bytes: heapless::Vec<u8, 64> = match input.strip_prefix("bytes ") {
                // "bytes 0..10 (…)": the bytes 0, 1, ..., 9
                Some(rest) => {
                    let range = rest.split_whitespace().next().expect("a range");
                    let (a, b) = range.split_once("..").expect("a..b");
                    (a.parse::<u8>().unwrap()..b.parse::<u8>().unwrap()).collect()
                }
                // "`\"text\"` (…)": the text between the quotes inside the backticks
                None => input.split('`').nth(1).expect("`\"…\"`").trim_matches('"').bytes().collect(),
            };
            let want = u64::from_str_radix(want.trim_matches('`').trim_start_matches("0x"), 16).unwrap();
            assert_eq!(content_checksum(&bytes), want, "vector {input}");
            checked += 1;
        }
        assert_eq!(checked, 4, "LAYOUT.md lists four checksum vectors");
    }
}
