//! Helpers shared by the integration tests.
use framebus_core::segment::FrameMeta;
use framebus_core::*;

/// Owns a test segment's memory; keep it alive while the segment is used.
pub struct Memory(#[allow(dead_code)] std::sync::Arc<HeapRegion>);

/// A fresh segment over a heap region. The `'static` lifetime is upheld by the test: the
/// returned [`Memory`] stays alive until every thread using the segment has been joined.
pub fn segment(spec: SegmentSpec) -> (Memory, Segment<'static>) {
    let layout = Layout::compute(&spec).expect("valid spec");
    let heap = std::sync::Arc::new(HeapRegion::for_layout(&layout));
    let seg = Segment::create(heap.region(), &spec, Creator { id: 1, created_ns: 0 }).expect("create");
    // SAFETY: see above; every test binds `Memory` for the whole test body.
    let seg: Segment<'static> = unsafe { std::mem::transmute::<Segment<'_>, Segment<'static>>(seg) };
    (Memory(heap), seg)
}

/// Cases per proptest state machine (a handful under Miri, which is slow).
pub fn cases() -> u32 {
    if cfg!(miri) {
        4
    } else {
        1000
    }
}

/// Small gray frames: `bytes` bytes each.
pub fn spec(slots: u32, bytes: u32) -> SegmentSpec {
    SegmentSpec::new(FrameGeometry::new(bytes, 1, PixelFormat::Gray8), slots)
}

/// Payload pattern for a frame: every byte is derived from `seq` and its index.
pub fn pattern(seq: u64, i: usize) -> u8 {
    (seq.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8
}

/// Writes the pattern of `seq` and publishes; returns the published seq, or the begin error.
pub fn publish(p: &mut Producer<'_>, len: usize) -> Result<u64, BeginError> {
    let seq_hint = p.segment().stats().next_seq;
    let mut slot = p.begin()?;
    let buf: Vec<u8> = (0..len).map(|i| pattern(seq_hint, i)).collect();
    slot.write(0, &buf);
    let published = slot.publish(FrameMeta { payload_len: len as u64, ..FrameMeta::default() });
    assert_eq!(published.seq, seq_hint, "sequence numbers are assigned in order");
    Ok(published.seq)
}

/// Reads `frame` and asserts its content is the pattern of its seq (no torn frame).
pub fn check(c: &Consumer<'_>, frame: &Frame, len: usize) {
    let mut buf = vec![0u8; len];
    c.read(frame, 0, &mut buf).expect("consumer holds the frame it reads");
    for (i, b) in buf.iter().enumerate() {
        assert_eq!(*b, pattern(frame.seq, i), "torn frame: seq {} byte {i}", frame.seq);
    }
}
