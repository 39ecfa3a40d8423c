//! The header (the first 256 bytes of a segment): writing a [`Layout`] as one, and validating
//! arbitrary bytes as one ([`HeaderError`], one variant per failure); the FNV-1a checksum.

use super::*;

impl Layout {
    /// Encodes the header (the first [`HEADER_USED`] bytes of the segment), checksum included.
    ///
    /// # Examples
    /// ```
    /// use framebus_core::{FrameGeometry, Layout, PixelFormat, SegmentSpec};
    /// let l = Layout::compute(&SegmentSpec::new(FrameGeometry::new(8, 8, PixelFormat::Gray8), 2)).unwrap();
    /// let bytes = l.encode_header(&framebus_core::Creator { id: 7, created_ns: 1 });
    /// let (back, creator) = Layout::decode_header(&bytes, l.total_size).unwrap();
    /// assert_eq!((back, creator.id), (l, 7));
    /// ```
    pub fn encode_header(&self, creator: &Creator) -> [u8; HEADER_USED] {
        let mut b = [0u8; HEADER_USED];
        let s = &self.spec;
        put(&mut b, hdr::MAGIC, &MAGIC);
        put32(&mut b, hdr::VERSION, LAYOUT_VERSION);
        put32(&mut b, hdr::HEADER_SIZE, HEADER_SIZE as u32);
        put64(&mut b, hdr::TOTAL_SIZE, self.total_size);
        put64(&mut b, hdr::CREATOR_ID, creator.id);
        put64(&mut b, hdr::CREATED_NS, creator.created_ns);
        put32(&mut b, hdr::SLOT_COUNT, s.slot_count);
        put32(&mut b, hdr::MAX_CONSUMERS, s.max_consumers);
        put64(&mut b, hdr::SLOT_STRIDE, self.slot_stride);
        put64(&mut b, hdr::SLOT_PAYLOAD, s.slot_payload_size);
        put32(&mut b, hdr::SLOT_ALIGN, s.slot_align);
        put32(&mut b, hdr::CACHE_LINE, LINE as u32);
        put32(&mut b, hdr::PATTERN, s.pattern as u32);
        put32(&mut b, hdr::POLICY, s.policy as u32);
        put32(&mut b, hdr::WIDTH, s.geometry.width);
        put32(&mut b, hdr::HEIGHT, s.geometry.height);
        put32(&mut b, hdr::PIXEL_FORMAT, s.geometry.format as u32);
        put32(&mut b, hdr::PLANE_COUNT, self.planes.count);
        for (i, p) in self.planes.planes.iter().enumerate() {
            // Offsets and strides fit in u32: a frame is at most MAX_SLOT_PAYLOAD (1 GiB).
            put32(&mut b, hdr::PLANES + i * 8, p.offset as u32);
            put32(&mut b, hdr::PLANES + i * 8 + 4, p.stride as u32);
        }
        put64(&mut b, hdr::FRAME_SIZE, self.planes.frame_size);
        put32(&mut b, hdr::RING_CAPACITY, self.ring_capacity);
        put64(&mut b, hdr::CONTROL_OFFSET, self.control_offset);
        put64(&mut b, hdr::CONTROL_SIZE, self.control_size);
        put64(&mut b, hdr::SLOTS_OFFSET, self.slots_offset);
        put64(&mut b, hdr::SLOTS_SIZE, self.slots_size);
        put32(&mut b, hdr::CTL_SLOTS, self.ctl_slots as u32);
        put32(&mut b, hdr::CTL_RING, self.ctl_ring as u32);
        put32(&mut b, hdr::CTL_CONSUMERS, self.ctl_consumers as u32);
        put32(&mut b, hdr::FLAGS, if s.lost_on_death { hdr::FLAG_LOST_ON_DEATH } else { 0 });
        put32(&mut b, hdr::RESULT_CELLS, s.result_cells);
        put32(&mut b, hdr::RESULT_MAX, s.result_max);
        put64(&mut b, hdr::RESULTS_OFFSET, self.results_offset);
        put64(&mut b, hdr::RESULTS_SIZE, self.results_size);
        put64(&mut b, hdr::RESULT_STRIDE, self.result_stride);
        let sum = fnv1a64(&b[..hdr::CHECKSUM]);
        put64(&mut b, hdr::CHECKSUM, sum);
        b
    }

    /// Validates `bytes` (the first [`HEADER_USED`] bytes of a region of `region_len` bytes) as a
    /// header and returns the layout it describes. Every field is checked; nothing is trusted.
    ///
    /// # Errors
    /// One [`HeaderError`] variant per kind of failure, in the order: magic, version, header
    /// size, checksum, limits, sizes against the region, offsets, overlap, alignment, and
    /// finally agreement with the layout recomputed from the spec fields.
    pub fn decode_header(bytes: &[u8; HEADER_USED], region_len: u64) -> Result<(Layout, Creator), HeaderError> {
        let magic: [u8; 8] = bytes[..8].try_into().expect("8 bytes");
        if magic != MAGIC {
            return Err(HeaderError::BadMagic { found: magic });
        }
        let version = get32(bytes, hdr::VERSION);
        if version != LAYOUT_VERSION {
            return Err(HeaderError::UnsupportedVersion { found: version });
        }
        let header_size = get32(bytes, hdr::HEADER_SIZE);
        if u64::from(header_size) != HEADER_SIZE {
            return Err(HeaderError::BadHeaderSize { found: header_size });
        }
        let stored = get64(bytes, hdr::CHECKSUM);
        let computed = fnv1a64(&bytes[..hdr::CHECKSUM]);
        if stored != computed {
            return Err(HeaderError::Checksum { stored, computed });
        }
        let total = get64(bytes, hdr::TOTAL_SIZE);
        if total != region_len {
            return Err(HeaderError::SizeMismatch { header_total: total, region_len });
        }
        let line = get32(bytes, hdr::CACHE_LINE);
        if u64::from(line) != LINE {
            return Err(HeaderError::Field { field: "cache_line", found: line.into(), expected: LINE });
        }
        let format = get32(bytes, hdr::PIXEL_FORMAT);
        let format = PixelFormat::from_u32(format).ok_or(HeaderError::Spec(SpecError::UnknownPixelFormat(format)))?;
        let pattern = get32(bytes, hdr::PATTERN);
        let pattern = Pattern::from_u32(pattern).ok_or(HeaderError::Spec(SpecError::UnknownPattern(pattern)))?;
        let policy = get32(bytes, hdr::POLICY);
        let policy = OverflowPolicy::from_u32(policy).ok_or(HeaderError::Spec(SpecError::UnknownPolicy(policy)))?;
        let align = get32(bytes, hdr::SLOT_ALIGN);
        let spec = SegmentSpec {
            slot_count: get32(bytes, hdr::SLOT_COUNT),
            geometry: FrameGeometry::new(get32(bytes, hdr::WIDTH), get32(bytes, hdr::HEIGHT), format),
            // 0 would mean "derive"; a stored header always carries the real size.
            slot_payload_size: get64(bytes, hdr::SLOT_PAYLOAD).max(1),
            slot_align: align.max(1),
            max_consumers: get32(bytes, hdr::MAX_CONSUMERS),
            pattern,
            policy,
            result_cells: get32(bytes, hdr::RESULT_CELLS),
            // Stored resolved: a header with cells never has 0 here (compute checks the rest).
            result_max: get32(bytes, hdr::RESULT_MAX),
            lost_on_death: get32(bytes, hdr::FLAGS) & hdr::FLAG_LOST_ON_DEATH != 0,
        };
        let l = Layout::compute(&spec).map_err(HeaderError::Spec)?;
        // Independent range checks first, so a corrupt header gets the most telling error.
        let ctl_off = get64(bytes, hdr::CONTROL_OFFSET);
        let ctl_size = get64(bytes, hdr::CONTROL_SIZE);
        let slots_off = get64(bytes, hdr::SLOTS_OFFSET);
        let slots_size = get64(bytes, hdr::SLOTS_SIZE);
        let end = |o: u64, s: u64| o.checked_add(s).filter(|&e| e <= total);
        if end(ctl_off, ctl_size).is_none() {
            return Err(HeaderError::OutOfRange { field: "control area" });
        }
        if end(slots_off, slots_size).is_none() {
            return Err(HeaderError::OutOfRange { field: "slot area" });
        }
        if ctl_off < HEADER_SIZE || slots_off < ctl_off + ctl_size {
            return Err(HeaderError::Overlap);
        }
        if slots_off % u64::from(l.spec.slot_align) != 0 {
            return Err(HeaderError::Misaligned { field: "slots_offset", align: l.spec.slot_align.into() });
        }
        if ctl_off % LINE != 0 {
            return Err(HeaderError::Misaligned { field: "control_offset", align: LINE });
        }
        let checks: [(&'static str, u64, u64); 16] = [
            ("total_size", total, l.total_size),
            ("slot_stride", get64(bytes, hdr::SLOT_STRIDE), l.slot_stride),
            ("frame_size", get64(bytes, hdr::FRAME_SIZE), l.planes.frame_size),
            ("plane_count", get32(bytes, hdr::PLANE_COUNT).into(), l.planes.count.into()),
            ("ring_capacity", get32(bytes, hdr::RING_CAPACITY).into(), l.ring_capacity.into()),
            ("control_offset", ctl_off, l.control_offset),
            ("control_size", ctl_size, l.control_size),
            ("slots_offset", slots_off, l.slots_offset),
            ("slots_size", slots_size, l.slots_size),
            ("ctl_slots", get32(bytes, hdr::CTL_SLOTS).into(), l.ctl_slots),
            ("ctl_ring", get32(bytes, hdr::CTL_RING).into(), l.ctl_ring),
            ("ctl_consumers", get32(bytes, hdr::CTL_CONSUMERS).into(), l.ctl_consumers),
            ("result_max", get32(bytes, hdr::RESULT_MAX).into(), l.spec.result_max.into()),
            ("results_offset", get64(bytes, hdr::RESULTS_OFFSET), l.results_offset),
            ("results_size", get64(bytes, hdr::RESULTS_SIZE), l.results_size),
            ("result_stride", get64(bytes, hdr::RESULT_STRIDE), l.result_stride),
        ];
        for (field, found, expected) in checks {
            if found != expected {
                return Err(HeaderError::Field { field, found, expected });
            }
        }
        for (i, p) in l.planes.planes.iter().enumerate() {
            let (o, s) = (get32(bytes, hdr::PLANES + i * 8), get32(bytes, hdr::PLANES + i * 8 + 4));
            if u64::from(o) != p.offset || u64::from(s) != p.stride {
                return Err(HeaderError::Field { field: "planes", found: o.into(), expected: p.offset });
            }
        }
        if get32(bytes, hdr::FLAGS) & !hdr::FLAG_LOST_ON_DEATH != 0
            || get32(bytes, hdr::RESERVED) != 0
            || bytes[hdr::RESERVED_TAIL..hdr::CHECKSUM].iter().any(|&b| b != 0)
            || bytes[hdr::CHECKSUM + 8..].iter().any(|&b| b != 0)
        {
            return Err(HeaderError::Field { field: "reserved", found: 1, expected: 0 });
        }
        Ok((l, Creator { id: get64(bytes, hdr::CREATOR_ID), created_ns: get64(bytes, hdr::CREATED_NS) }))
    }

    /// Byte offset (from the region start) of slot `slot`'s payload.
    pub const fn slot_offset(&self, slot: u32) -> u64 {
        self.slots_offset + slot as u64 * self.slot_stride
    }
}

/// Who created a segment: an opaque platform id (e.g. pid and process start time) and a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Creator {
    /// Platform-defined creator identity.
    pub id: u64,
    /// Creation time in ns (platform clock).
    pub created_ns: u64,
}

/// Why bytes are not a valid segment header. Each names what to do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The region is smaller than a header page.
    TooSmall {
        /// region bytes
        len: u64,
    },
    /// The first 8 bytes are not `FRAMEBUS` (not a framebus segment, or not initialised yet).
    BadMagic {
        /// the bytes found
        found: [u8; 8],
    },
    /// Written by an incompatible framebus version.
    UnsupportedVersion {
        /// version found
        found: u32,
    },
    /// The header-size field is not 4096.
    BadHeaderSize {
        /// value found
        found: u32,
    },
    /// The static part was altered after creation.
    Checksum {
        /// stored checksum
        stored: u64,
        /// checksum of the bytes
        computed: u64,
    },
    /// The header's total size differs from the region's (a truncated or resized segment).
    SizeMismatch {
        /// size the header claims
        header_total: u64,
        /// size of the region
        region_len: u64,
    },
    /// The spec fields break a limit.
    Spec(SpecError),
    /// An area extends past the end of the segment.
    OutOfRange {
        /// which area
        field: &'static str,
    },
    /// Areas overlap each other or the header.
    Overlap,
    /// An offset is not aligned as required.
    Misaligned {
        /// which field
        field: &'static str,
        /// the required alignment
        align: u64,
    },
    /// A derived field disagrees with the layout recomputed from the spec fields.
    Field {
        /// which field
        field: &'static str,
        /// value in the header
        found: u64,
        /// value the layout requires
        expected: u64,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooSmall { len } => write!(f, "region of {len} bytes is smaller than a {HEADER_SIZE}-byte segment header; the name points at something that is not a framebus segment"),
            Self::BadMagic { found } if found.iter().all(|&b| b == 0) => {
                write!(f, "segment header is all zero: the creator has not finished initialising it (retry shortly) or it died while creating it (remove the segment and recreate it)")
            }
            Self::BadMagic { found } => write!(f, "not a framebus segment: magic is {found:02x?}, expected \"FRAMEBUS\"; check the segment name"),
            Self::UnsupportedVersion { found } if *found < LAYOUT_VERSION => write!(f, "segment layout version {found} was written by an older framebus (this build reads version {LAYOUT_VERSION}; version 2 changed the consumer-table protocol and version 3 added the results area and moved the header checksum, and versions must never share a segment): stop the processes still on the old version, remove the segment (`framebus gc`, or delete it) and create it again"),
            Self::UnsupportedVersion { found } => write!(f, "segment layout version {found} was written by a newer framebus (this build reads version {LAYOUT_VERSION}): upgrade this program, or create the segment with the version every process uses"),
            Self::BadHeaderSize { found } => write!(f, "header size field is {found}, expected {HEADER_SIZE}: corrupt header; recreate the segment"),
            Self::Checksum { stored, computed } => write!(f, "header checksum mismatch (stored {stored:#018x}, computed {computed:#018x}): the header was overwritten after creation; recreate the segment"),
            Self::SizeMismatch { header_total, region_len } => write!(f, "header says the segment has {header_total} bytes but {region_len} are mapped: the segment was truncated or resized; recreate it"),
            Self::Spec(e) => write!(f, "header describes an invalid segment: {e}"),
            Self::OutOfRange { field } => write!(f, "header places the {field} past the end of the segment: corrupt header; recreate the segment"),
            Self::Overlap => write!(f, "header places areas on top of each other: corrupt header; recreate the segment"),
            Self::Misaligned { field, align } => write!(f, "header field {field} is not aligned to {align}: corrupt header; recreate the segment"),
            Self::Field { field, found, expected } => write!(f, "header field {field} is {found}, layout v{LAYOUT_VERSION} requires {expected}: corrupt header or another implementation's bug; recreate the segment"),
        }
    }
}

impl core::error::Error for HeaderError {}

/// 64-bit FNV-1a, the header checksum (simple to implement in any language; not a MAC).
///
/// # Examples
/// ```
/// assert_eq!(framebus_core::layout::fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
/// ```
pub const fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

fn put(b: &mut [u8], off: usize, v: &[u8]) {
    b[off..off + v.len()].copy_from_slice(v);
}
fn put32(b: &mut [u8], off: usize, v: u32) {
    put(b, off, &v.to_le_bytes());
}
fn put64(b: &mut [u8], off: usize, v: u64) {
    put(b, off, &v.to_le_bytes());
}
fn get32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}
fn get64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}
