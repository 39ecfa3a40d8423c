//! Shared pieces of the fuzz targets: a heap-backed segment built from fuzzer-chosen geometry,
//! the payload pattern, and raw writes into the control area (what a hostile peer can do).

use arbitrary::Arbitrary;
use framebus_core::segment::FrameMeta;
use framebus_core::*;

/// Geometry and policy of the segment a run uses (small: the fuzzer explores protocol states,
/// not sizes).
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct Config {
    slots: u8,
    consumers: u8,
    bytes: u8,
    broadcast: bool,
    policy: u8,
}

impl Config {
    /// The spec: 1–8 slots, 1–6 consumers, 1–64 payload bytes.
    pub fn spec(&self) -> SegmentSpec {
        let policy = match self.policy % 3 {
            0 => OverflowPolicy::Block,
            1 => OverflowPolicy::DropOldest,
            _ => OverflowPolicy::DropNewest,
        };
        SegmentSpec::new(
            FrameGeometry::new(u32::from(self.bytes % 64) + 1, 1, PixelFormat::Gray8),
            u32::from(self.slots % 8) + 1,
        )
        .with_pattern(if self.broadcast { Pattern::Broadcast } else { Pattern::WorkQueue })
        .with_policy(policy)
        .with_max_consumers(u32::from(self.consumers % 6) + 1)
    }
}

/// A segment over heap memory that lives as long as this value.
pub struct Heap {
    mem: HeapRegion,
    layout: Layout,
}

impl Heap {
    /// Allocates and initialises a segment for `spec`.
    pub fn new(spec: &SegmentSpec) -> Heap {
        let layout = Layout::compute(spec).expect("fuzz specs are valid");
        let mem = HeapRegion::for_layout(&layout);
        Segment::create(mem.region(), spec, Creator { id: 1, created_ns: 0 }).expect("create");
        Heap { mem, layout }
    }

    /// The segment, opened (and so validated) from the memory.
    pub fn segment(&self) -> Segment<'_> {
        Segment::open(self.mem.region()).expect("a freshly created segment opens")
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Writes `v` into the control area's word `index` (modulo its size): a peer scribbling.
    pub fn scribble(&self, index: u32, v: u64) {
        let words = self.layout.control_size / 8;
        let off = self.layout.control_offset + u64::from(index) % words * 8;
        let p = self.mem.region().base().as_ptr().wrapping_add(off as usize).cast::<u64>();
        // SAFETY: an 8-aligned word inside the live allocation (control area, checked by the
        // modulo above); the run is single-threaded, and the protocol reads control words only
        // atomically, so a plain volatile store is what a peer process's store looks like.
        unsafe { p.write_volatile(v) };
    }
}

/// Payload byte `i` of the frame with sequence number `seq`.
pub fn pattern(seq: u64, i: usize) -> u8 {
    (seq.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8
}

/// Begins, fills with `seq`'s pattern and publishes; returns the sequence number.
pub fn publish(p: &mut Producer<'_>, len: usize) -> Result<u64, BeginError> {
    let seq = p.segment().stats().next_seq;
    let mut slot = p.begin()?;
    let len = len.min(slot.capacity() as usize);
    let buf: Vec<u8> = (0..len).map(|i| pattern(seq, i)).collect();
    slot.write(0, &buf);
    Ok(slot.publish(FrameMeta { payload_len: len as u64, ..FrameMeta::default() }).seq)
}
