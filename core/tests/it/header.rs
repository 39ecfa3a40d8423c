//! Header encoding and validation: every failure has its own error; arbitrary bytes never panic.
use framebus_core::layout::{hdr, HEADER_USED, LAYOUT_VERSION};
use framebus_core::*;
use proptest::prelude::*;

fn good() -> (Layout, [u8; HEADER_USED]) {
    let spec = SegmentSpec::new(FrameGeometry::new(1920, 1080, PixelFormat::Nv12), 6).with_max_consumers(4);
    let l = Layout::compute(&spec).unwrap();
    (l, l.encode_header(&Creator { id: 0xABCD, created_ns: 99 }))
}

fn reseal(b: &mut [u8; HEADER_USED]) {
    let sum = framebus_core::layout::fnv1a64(&b[..hdr::CHECKSUM]);
    b[hdr::CHECKSUM..hdr::CHECKSUM + 8].copy_from_slice(&sum.to_le_bytes());
}

fn set32(b: &mut [u8; HEADER_USED], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    reseal(b);
}
fn set64(b: &mut [u8; HEADER_USED], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    reseal(b);
}

#[test]
fn roundtrip() {
    let (l, b) = good();
    let (back, creator) = Layout::decode_header(&b, l.total_size).unwrap();
    assert_eq!(back, l);
    assert_eq!(creator, Creator { id: 0xABCD, created_ns: 99 });
}

#[test]
fn layout_places_hot_words_on_own_lines_and_slots_on_pages() {
    let (l, _) = good();
    assert_eq!(l.control_offset, 4096);
    assert_eq!(l.ctl_slots % 128, 0);
    assert_eq!(l.ctl_consumers % 128, 0);
    assert_eq!(l.slots_offset % 4096, 0);
    assert_eq!(l.slot_stride % 4096, 0);
    assert!(l.slot_stride >= 1920 * 1080 * 3 / 2);
    assert!(l.ring_capacity >= 2 * 6 && l.ring_capacity.is_power_of_two());
    let big = Layout::compute(&l.spec.with_slot_align(1 << 21)).unwrap();
    assert_eq!(big.slots_offset % (1 << 21), 0);
    assert_eq!(big.slot_stride % (1 << 21), 0);
}

#[test]
fn each_failure_has_its_error() {
    let (l, good) = good();
    let total = l.total_size;
    let mut b = good;
    b[0] = b'X';
    assert!(matches!(Layout::decode_header(&b, total), Err(HeaderError::BadMagic { .. })));
    assert!(Layout::decode_header(&[0; HEADER_USED], total)
        .unwrap_err()
        .to_string()
        .contains("not finished initialising"));

    for other in [LAYOUT_VERSION - 1, LAYOUT_VERSION + 1] {
        let mut b = good;
        set32(&mut b, hdr::VERSION, other);
        let e = Layout::decode_header(&b, total).unwrap_err();
        assert_eq!(e, HeaderError::UnsupportedVersion { found: other });
        let says = if other < LAYOUT_VERSION { "older framebus" } else { "newer framebus" };
        assert!(e.to_string().contains(says), "{e}");
    }

    let mut b = good;
    set32(&mut b, hdr::HEADER_SIZE, 512);
    assert_eq!(Layout::decode_header(&b, total), Err(HeaderError::BadHeaderSize { found: 512 }));

    let mut b = good;
    b[hdr::WIDTH] ^= 1; // not resealed
    assert!(matches!(Layout::decode_header(&b, total), Err(HeaderError::Checksum { .. })));

    assert_eq!(
        Layout::decode_header(&good, total - 4096),
        Err(HeaderError::SizeMismatch { header_total: total, region_len: total - 4096 })
    );

    let mut b = good;
    set32(&mut b, hdr::SLOT_COUNT, 0);
    assert_eq!(Layout::decode_header(&b, total), Err(HeaderError::Spec(SpecError::SlotCount { found: 0 })));
    let mut b = good;
    set32(&mut b, hdr::MAX_CONSUMERS, 17);
    assert_eq!(Layout::decode_header(&b, total), Err(HeaderError::Spec(SpecError::Consumers { found: 17 })));
    let mut b = good;
    set32(&mut b, hdr::PIXEL_FORMAT, 77);
    assert_eq!(Layout::decode_header(&b, total), Err(HeaderError::Spec(SpecError::UnknownPixelFormat(77))));
    let mut b = good;
    set32(&mut b, hdr::SLOT_ALIGN, 3000);
    assert_eq!(Layout::decode_header(&b, total), Err(HeaderError::Spec(SpecError::BadAlign { found: 3000 })));
    let mut b = good;
    set32(&mut b, hdr::WIDTH, 1921);
    assert!(matches!(Layout::decode_header(&b, total), Err(HeaderError::Spec(SpecError::OddDimensions { .. }))));

    let mut b = good;
    set64(&mut b, hdr::SLOTS_SIZE, u64::MAX);
    assert_eq!(Layout::decode_header(&b, total), Err(HeaderError::OutOfRange { field: "slot area" }));
    let mut b = good;
    set64(&mut b, hdr::CONTROL_OFFSET, total);
    assert_eq!(Layout::decode_header(&b, total), Err(HeaderError::OutOfRange { field: "control area" }));
    let mut b = good;
    set64(&mut b, hdr::SLOTS_OFFSET, l.control_offset);
    assert_eq!(Layout::decode_header(&b, total), Err(HeaderError::Overlap));
    let mut b = good;
    set64(&mut b, hdr::SLOTS_OFFSET, l.slots_offset + 8);
    set64(&mut b, hdr::SLOTS_SIZE, l.slots_size - 8);
    assert!(matches!(Layout::decode_header(&b, total), Err(HeaderError::Misaligned { field: "slots_offset", .. })));
    let mut b = good;
    set64(&mut b, hdr::SLOT_STRIDE, 4096);
    assert!(matches!(Layout::decode_header(&b, total), Err(HeaderError::Field { field: "slot_stride", .. })));
    let mut b = good;
    set32(&mut b, hdr::CTL_RING, 0);
    assert!(matches!(Layout::decode_header(&b, total), Err(HeaderError::Field { field: "ctl_ring", .. })));
    for at in [hdr::RESERVED, hdr::RESERVED_TAIL, hdr::CHECKSUM - 1] {
        let mut b = good;
        b[at] = 1;
        reseal(&mut b);
        assert!(matches!(Layout::decode_header(&b, total), Err(HeaderError::Field { field: "reserved", .. })), "{at}");
    }
    // v3's results fields are recomputed like every derived field.
    let mut b = good;
    set64(&mut b, hdr::RESULTS_OFFSET, 4096);
    assert!(matches!(Layout::decode_header(&b, total), Err(HeaderError::Field { field: "results_offset", .. })));
    let mut b = good;
    set32(&mut b, hdr::RESULT_MAX, 64);
    assert!(matches!(Layout::decode_header(&b, total), Err(HeaderError::Spec(SpecError::BadResults { .. }))));
}

#[test]
fn spec_limits_are_refused_before_anything_is_mapped() {
    let g = FrameGeometry::new(64, 64, PixelFormat::Bgr24);
    assert_eq!(Layout::compute(&SegmentSpec::new(g, 0)), Err(SpecError::SlotCount { found: 0 }));
    assert_eq!(Layout::compute(&SegmentSpec::new(g, 5000)), Err(SpecError::SlotCount { found: 5000 }));
    assert_eq!(Layout::compute(&SegmentSpec::new(g, 2).with_max_consumers(0)), Err(SpecError::Consumers { found: 0 }));
    assert_eq!(
        Layout::compute(&SegmentSpec::new(g, 2).with_max_consumers(17)),
        Err(SpecError::Consumers { found: 17 })
    );
    assert!(matches!(
        Layout::compute(&SegmentSpec::new(g, 2).with_slot_payload_size(10)),
        Err(SpecError::PayloadTooSmall { .. })
    ));
    let huge = FrameGeometry::new(1 << 15, 1 << 15, PixelFormat::Bgr24);
    assert!(matches!(Layout::compute(&SegmentSpec::new(huge, 2)), Err(SpecError::PayloadTooLarge { .. })));
    let big =
        SegmentSpec::new(FrameGeometry::new(16384, 16384, PixelFormat::Gray8), 1024).with_slot_payload_size(1 << 30);
    assert!(matches!(Layout::compute(&big), Err(SpecError::TooLarge { .. })));
    assert_eq!(
        Layout::compute(&SegmentSpec::new(FrameGeometry::new(0, 4, PixelFormat::Raw), 2)),
        Err(SpecError::ZeroGeometry)
    );
    // Errors explain what to do.
    assert!(SpecError::SlotCount { found: 0 }.to_string().contains("choose a count"));
}

#[test]
fn open_rejects_truncated_and_garbage_regions() {
    let heap = HeapRegion::zeroed(1000);
    assert_eq!(Segment::open(heap.region()).unwrap_err(), HeaderError::TooSmall { len: 1000 });
    let garbage = HeapRegion::zeroed(8192);
    assert!(matches!(Segment::open(garbage.region()), Err(HeaderError::BadMagic { .. })));
    // A real segment opened through a shorter view (a truncated file) is refused.
    let spec = SegmentSpec::new(FrameGeometry::new(64, 2, PixelFormat::Gray8), 2);
    let l = Layout::compute(&spec).unwrap();
    let heap = HeapRegion::for_layout(&l);
    Segment::create(heap.region(), &spec, Creator::default()).unwrap();
    // SAFETY: a prefix of a live heap allocation, used only within this test.
    let short = unsafe { Region::from_raw(heap.region().base(), l.total_size as usize - 4096) };
    assert!(matches!(Segment::open(short), Err(HeaderError::SizeMismatch { .. })));
    // Wrong region size at creation.
    assert!(matches!(Segment::create(short, &spec, Creator::default()), Err(segment::CreateError::RegionSize { .. })));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 8 } else { 2000 }, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic, and anything accepted re-encodes to the same bytes.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), HEADER_USED), len in any::<u64>()) {
        let b: [u8; HEADER_USED] = bytes.try_into().unwrap();
        if let Ok((l, c)) = Layout::decode_header(&b, len) {
            prop_assert_eq!(l.encode_header(&c), b);
        }
    }

    /// Mutating one byte of a valid header is always detected.
    #[test]
    fn any_single_byte_change_is_detected(pos in 0usize..HEADER_USED, x in 1u8..=255) {
        let (l, mut b) = good();
        b[pos] ^= x;
        prop_assert!(Layout::decode_header(&b, l.total_size).is_err());
    }

    /// Every computable spec round-trips through its header.
    #[test]
    fn computable_specs_roundtrip(w in 1u32..5000, h in 1u32..3000, fmt in 0u32..6, slots in 1u32..64, cons in 1u32..=16, pat in 0u32..2, pol in 0u32..3) {
        let format = PixelFormat::from_u32(fmt).unwrap();
        let pattern = if pat == 0 { Pattern::WorkQueue } else { Pattern::Broadcast };
        let policy = [OverflowPolicy::Block, OverflowPolicy::DropOldest, OverflowPolicy::DropNewest][pol as usize];
        let spec = SegmentSpec::new(FrameGeometry::new(w, h, format), slots).with_max_consumers(cons).with_pattern(pattern).with_policy(policy);
        if let Ok(l) = Layout::compute(&spec) {
            let b = l.encode_header(&Creator::default());
            prop_assert_eq!(Layout::decode_header(&b, l.total_size).unwrap().0, l);
        }
    }
}
