//! Segment layout v3: a [`SegmentSpec`] becomes a [`Layout`] (header page, control area, slot
//! area, results area), the layout is written as a header, and arbitrary bytes are validated as a header.
//!
//! Every number here is documented field by field in `docs/LAYOUT.md`; a C or Python program
//! implements the same layout from that document. All fields are little-endian.

use core::fmt;

/// First eight bytes of every segment: `b"FRAMEBUS"`.
pub const MAGIC: [u8; 8] = *b"FRAMEBUS";
/// The layout version this crate writes and reads.
pub const LAYOUT_VERSION: u32 = 3;
/// Size of the header page; the control area starts after it.
pub const HEADER_SIZE: u64 = 4096;
/// Bytes of the header page that carry fields (the rest is zero).
pub const HEADER_USED: usize = 256;
/// Cache-line size used for padding hot words (128 bytes: x86 adjacent-line prefetch pairs and
/// most ARM big cores). Fixed for all processes by the layout.
pub const LINE: u64 = 128;
/// Smallest (and default) slot alignment: one 4 KiB page.
pub const MIN_SLOT_ALIGN: u32 = 4096;
/// Largest slot alignment accepted (2 MiB, a huge page).
pub const MAX_SLOT_ALIGN: u32 = 2 << 20;
/// Most slots a segment can have (slot indices travel in 16 bits).
pub const MAX_SLOTS: u32 = 1024;
/// Most consumers a segment can have (holders are a 16-bit mask in the slot state word).
pub const MAX_CONSUMERS: u32 = 16;
/// Largest slot payload (1 GiB).
pub const MAX_SLOT_PAYLOAD: u64 = 1 << 30;
/// Most result cells a segment can have.
pub const MAX_RESULT_CELLS: u32 = 1 << 16;
/// Largest result payload per cell (1 MiB).
pub const MAX_RESULT_BYTES: u32 = 1 << 20;
/// Result payload per cell when a spec asks for results without saying (4 KiB).
pub const DEFAULT_RESULT_BYTES: u32 = 4096;
/// Largest whole segment (1 TiB); real limits come from the platform.
pub const MAX_TOTAL_SIZE: u64 = 1 << 40;

/// Byte offsets of header fields (see `docs/LAYOUT.md`).
#[allow(missing_docs)]
pub mod hdr {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const HEADER_SIZE: usize = 12;
    pub const TOTAL_SIZE: usize = 16;
    pub const CREATOR_ID: usize = 24;
    pub const CREATED_NS: usize = 32;
    pub const SLOT_COUNT: usize = 40;
    pub const MAX_CONSUMERS: usize = 44;
    pub const SLOT_STRIDE: usize = 48;
    pub const SLOT_PAYLOAD: usize = 56;
    pub const SLOT_ALIGN: usize = 64;
    pub const CACHE_LINE: usize = 68;
    pub const PATTERN: usize = 72;
    pub const POLICY: usize = 76;
    pub const WIDTH: usize = 80;
    pub const HEIGHT: usize = 84;
    pub const PIXEL_FORMAT: usize = 88;
    pub const PLANE_COUNT: usize = 92;
    /// Four planes of (offset u32, stride u32).
    pub const PLANES: usize = 96;
    pub const FRAME_SIZE: usize = 128;
    pub const RING_CAPACITY: usize = 136;
    pub const FLAGS: usize = 140;
    /// Bit of `flags`: [`SegmentSpec::lost_on_death`](super::SegmentSpec::lost_on_death).
    pub const FLAG_LOST_ON_DEATH: u32 = 1;
    pub const CONTROL_OFFSET: usize = 144;
    pub const CONTROL_SIZE: usize = 152;
    pub const SLOTS_OFFSET: usize = 160;
    pub const SLOTS_SIZE: usize = 168;
    pub const CTL_SLOTS: usize = 176;
    pub const CTL_RING: usize = 180;
    pub const CTL_CONSUMERS: usize = 184;
    /// Layout v3: the results area (all zero when the segment has none).
    pub const RESULT_CELLS: usize = 188;
    pub const RESULT_MAX: usize = 192;
    pub const RESERVED: usize = 196;
    pub const RESULTS_OFFSET: usize = 200;
    pub const RESULTS_SIZE: usize = 208;
    pub const RESULT_STRIDE: usize = 216;
    /// Bytes 224..248 are reserved (zero).
    pub const RESERVED_TAIL: usize = 224;
    /// FNV-1a 64 of bytes `0..CHECKSUM`.
    pub const CHECKSUM: usize = 248;
}

/// Offsets inside the control area, relative to its start (see `docs/LAYOUT.md`).
#[allow(missing_docs)]
pub mod ctl {
    use super::LINE;
    /// Line 0, written only by the producer.
    pub const PRODUCER_OWNER: u64 = 0;
    pub const EPOCH: u64 = 8;
    pub const WRITE_POS: u64 = 16;
    pub const NEXT_SEQ: u64 = 24;
    pub const DROPPED_OLDEST: u64 = 32;
    pub const DROPPED_NEWEST: u64 = 40;
    /// Line 1: consumers sleep here waiting for frames.
    pub const FRAME_WAKE: u64 = LINE;
    pub const FRAME_WAITERS: u64 = LINE + 8;
    /// Line 2: the producer sleeps here waiting for a free slot (Block policy).
    pub const SPACE_WAKE: u64 = 2 * LINE;
    pub const SPACE_WAITERS: u64 = 2 * LINE + 8;
    /// Line 3: the work-queue claim cursor, shared by workers.
    pub const CLAIM_CURSOR: u64 = 3 * LINE;
    pub const DELIVERED: u64 = 3 * LINE + 8;
    /// Line 4: reclaim statistics, and redelivery.
    pub const RECLAIMED: u64 = 4 * LINE;
    /// A hint: non-zero while a redelivered frame may wait (bumped by each redelivery, set back
    /// to 0 by a worker that looked and found none).
    pub const REDELIVER: u64 = 4 * LINE + 8;
    /// Frames redelivered (statistics).
    pub const REDELIVERED: u64 = 4 * LINE + 16;
    /// Line 5 (layout v3): the ordered results reader.
    pub const READER_OWNER: u64 = 5 * LINE;
    pub const READ_HEAD: u64 = 5 * LINE + 8;
    pub const LATE_RESULTS: u64 = 5 * LINE + 16;
    pub const RESULT_OVERFLOW: u64 = 5 * LINE + 24;
    /// Line 6 (layout v3): the reader sleeps here; the end of the stream.
    pub const RESULTS_WAKE: u64 = 6 * LINE;
    pub const RESULTS_WAITERS: u64 = 6 * LINE + 8;
    pub const END: u64 = 6 * LINE + 16;
    /// First slot line.
    pub const SLOTS: u64 = 7 * LINE;
    /// Within a slot line.
    pub mod slot {
        pub const STATE: u64 = 0;
        pub const POS: u64 = 8;
        pub const SEQ: u64 = 16;
        pub const CAPTURE_NS: u64 = 24;
        pub const PTS_NS: u64 = 32;
        /// width (low 32 bits) | height (high 32 bits)
        pub const WIDTH_HEIGHT: u64 = 40;
        /// pixel format (low 32 bits) | flags (high 32 bits)
        pub const FORMAT_FLAGS: u64 = 48;
        pub const PAYLOAD_LEN: u64 = 56;
        pub const CHECKSUM: u64 = 64;
        pub const EPOCH: u64 = 72;
        /// The generation of the frame that was redelivered from this slot (0: none): a frame
        /// goes back to the workers once.
        pub const REDELIVERED_GEN: u64 = 80;
    }
    /// Within a consumer line.
    pub mod consumer {
        pub const STATE: u64 = 0;
        /// Process slot *j* (line *j*): the token of a process with consumers here, 0 when free.
        pub const PROCESS: u64 = 8;
        pub const LEASE_NS: u64 = 16;
        pub const CURSOR: u64 = 24;
        pub const DELIVERED: u64 = 32;
        pub const SKIPPED: u64 = 40;
        pub const JOINED_POS: u64 = 48;
    }
}

mod header;

pub use crate::vocab::{OverflowPolicy, Pattern, PixelFormat};
pub use header::{fnv1a64, Creator, HeaderError};

/// Frame geometry: width and height in pixels and the pixel format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameGeometry {
    /// Width in pixels (bytes per row for [`PixelFormat::Raw`]).
    pub width: u32,
    /// Height in rows.
    pub height: u32,
    /// Pixel format.
    pub format: PixelFormat,
}

impl FrameGeometry {
    /// A geometry.
    ///
    /// # Examples
    /// ```
    /// use framebus_core::{FrameGeometry, PixelFormat};
    /// let g = FrameGeometry::new(1920, 1080, PixelFormat::Bgr24);
    /// assert_eq!(g.planes().unwrap().frame_size, 1920 * 1080 * 3);
    /// ```
    pub const fn new(width: u32, height: u32, format: PixelFormat) -> Self {
        FrameGeometry { width, height, format }
    }

    /// The tightly packed planes of one frame.
    ///
    /// # Errors
    /// [`SpecError::ZeroGeometry`] for a zero dimension, [`SpecError::OddDimensions`] for a 4:2:0
    /// format with odd width or height, [`SpecError::PayloadTooLarge`] when a frame exceeds
    /// [`MAX_SLOT_PAYLOAD`].
    pub const fn planes(&self) -> Result<Planes, SpecError> {
        let (w, h) = (self.width as u64, self.height as u64);
        if w == 0 || h == 0 {
            return Err(SpecError::ZeroGeometry);
        }
        let mut p = Planes { count: 1, planes: [Plane { offset: 0, stride: 0 }; 4], frame_size: 0 };
        let size = match self.format {
            PixelFormat::Raw | PixelFormat::Gray8 => {
                p.planes[0].stride = w;
                w * h
            }
            PixelFormat::Bgr24 | PixelFormat::Rgb24 => {
                p.planes[0].stride = w * 3;
                w * 3 * h
            }
            PixelFormat::Nv12 | PixelFormat::I420 => {
                if w % 2 != 0 || h % 2 != 0 {
                    return Err(SpecError::OddDimensions { width: self.width, height: self.height });
                }
                p.planes[0].stride = w;
                p.planes[1].offset = w * h;
                if let PixelFormat::Nv12 = self.format {
                    p.count = 2;
                    p.planes[1].stride = w;
                    w * h + w * (h / 2)
                } else {
                    p.count = 3;
                    p.planes[1].stride = w / 2;
                    p.planes[2].offset = w * h + (w / 2) * (h / 2);
                    p.planes[2].stride = w / 2;
                    w * h + 2 * (w / 2) * (h / 2)
                }
            }
        };
        if size > MAX_SLOT_PAYLOAD {
            return Err(SpecError::PayloadTooLarge { payload: size, max: MAX_SLOT_PAYLOAD });
        }
        p.frame_size = size;
        Ok(p)
    }
}

/// One plane of a frame inside a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plane {
    /// Offset of the plane from the start of the slot.
    pub offset: u64,
    /// Bytes per row.
    pub stride: u64,
}

/// The planes of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planes {
    /// How many of `planes` are used (1 to 3).
    pub count: u32,
    /// The planes; unused ones are zero.
    pub planes: [Plane; 4],
    /// Bytes of one tightly packed frame.
    pub frame_size: u64,
}

/// What a segment is asked to hold. [`Layout::compute`] turns it into byte offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SegmentSpec {
    /// Number of frame slots (1 to [`MAX_SLOTS`]).
    pub slot_count: u32,
    /// Geometry of the frames.
    pub geometry: FrameGeometry,
    /// Bytes reserved per slot; 0 means exactly one frame of `geometry`.
    pub slot_payload_size: u64,
    /// Alignment of every slot; 0 means [`MIN_SLOT_ALIGN`]. A power of two ≥ 4096.
    pub slot_align: u32,
    /// Consumer table size (1 to [`MAX_CONSUMERS`]).
    pub max_consumers: u32,
    /// Delivery pattern.
    pub pattern: Pattern,
    /// Overflow policy.
    pub policy: OverflowPolicy,
    /// Result cells (0: no results area; else a power of two ≤ [`MAX_RESULT_CELLS`]). Results
    /// need a work queue.
    pub result_cells: u32,
    /// Result payload bytes per cell (0 with cells: [`DEFAULT_RESULT_BYTES`]).
    pub result_max: u32,
    /// A frame held by a worker whose process dies is reported lost (`worker-died`) instead of
    /// going back, once, to the other workers (the default). Header `flags` bit 0.
    pub lost_on_death: bool,
}

impl SegmentSpec {
    /// A spec with `slot_count` slots of `geometry`, 8 consumers, work queue, `Block`.
    ///
    /// # Examples
    /// ```
    /// use framebus_core::{FrameGeometry, OverflowPolicy, PixelFormat, SegmentSpec};
    /// let spec = SegmentSpec::new(FrameGeometry::new(1280, 720, PixelFormat::Bgr24), 8)
    ///     .with_policy(OverflowPolicy::DropOldest)
    ///     .with_max_consumers(6);
    /// assert_eq!(spec.max_consumers, 6);
    /// ```
    pub const fn new(geometry: FrameGeometry, slot_count: u32) -> Self {
        SegmentSpec {
            slot_count,
            geometry,
            slot_payload_size: 0,
            slot_align: 0,
            max_consumers: 8,
            pattern: Pattern::WorkQueue,
            policy: OverflowPolicy::Block,
            result_cells: 0,
            result_max: 0,
            lost_on_death: false,
        }
    }
    /// A frame whose worker dies is reported lost (`worker-died`) instead of redelivered once
    /// to another worker (`docs/design/RESULTS.md`, *Redelivery*).
    pub const fn with_lost_on_death(mut self, lost: bool) -> Self {
        self.lost_on_death = lost;
        self
    }
    /// Gives the segment a results area of `cells` cells of up to `max_bytes` bytes each
    /// (0: [`DEFAULT_RESULT_BYTES`]); see `docs/design/RESULTS.md`.
    pub const fn with_results(mut self, cells: u32, max_bytes: u32) -> Self {
        self.result_cells = cells;
        self.result_max = max_bytes;
        self
    }
    /// Sets the delivery pattern.
    pub const fn with_pattern(mut self, pattern: Pattern) -> Self {
        self.pattern = pattern;
        self
    }
    /// Sets the overflow policy.
    pub const fn with_policy(mut self, policy: OverflowPolicy) -> Self {
        self.policy = policy;
        self
    }
    /// Sets the consumer table size.
    pub const fn with_max_consumers(mut self, n: u32) -> Self {
        self.max_consumers = n;
        self
    }
    /// Sets the bytes reserved per slot (≥ one frame).
    pub const fn with_slot_payload_size(mut self, bytes: u64) -> Self {
        self.slot_payload_size = bytes;
        self
    }
    /// Sets the slot alignment (a power of two ≥ 4096).
    pub const fn with_slot_align(mut self, align: u32) -> Self {
        self.slot_align = align;
        self
    }
}

/// Why a spec cannot become a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecError {
    /// Slot count is 0 or above [`MAX_SLOTS`].
    SlotCount {
        /// requested
        found: u32,
    },
    /// Consumer count is 0 or above [`MAX_CONSUMERS`].
    Consumers {
        /// requested
        found: u32,
    },
    /// Width or height is zero.
    ZeroGeometry,
    /// A 4:2:0 format needs even width and height.
    OddDimensions {
        /// width
        width: u32,
        /// height
        height: u32,
    },
    /// The slot payload is smaller than one frame.
    PayloadTooSmall {
        /// bytes per slot
        payload: u64,
        /// bytes per frame
        frame: u64,
    },
    /// The slot payload exceeds the limit.
    PayloadTooLarge {
        /// bytes per slot
        payload: u64,
        /// the limit
        max: u64,
    },
    /// Slot alignment is not a power of two in `4096..=2 MiB`.
    BadAlign {
        /// requested
        found: u32,
    },
    /// The whole segment would exceed [`MAX_TOTAL_SIZE`].
    TooLarge {
        /// bytes
        total: u64,
    },
    /// Unknown pixel format code.
    UnknownPixelFormat(u32),
    /// Unknown pattern code.
    UnknownPattern(u32),
    /// Unknown overflow policy code.
    UnknownPolicy(u32),
    /// Result cells are not 0 or a power of two up to [`MAX_RESULT_CELLS`], or the result size
    /// is above [`MAX_RESULT_BYTES`] (or set without cells).
    BadResults {
        /// cells requested
        cells: u32,
        /// bytes per result requested
        max_bytes: u32,
    },
    /// Results were asked for on a broadcast segment (they are a work-queue feature).
    ResultsNeedWorkQueue,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::SlotCount { found } => write!(f, "slot count {found} is outside 1..={MAX_SLOTS}; choose a count in that range (2-3 frames per consumer is usual)"),
            Self::Consumers { found } => write!(f, "consumer count {found} is outside 1..={MAX_CONSUMERS}"),
            Self::ZeroGeometry => write!(f, "frame width and height must be non-zero"),
            Self::OddDimensions { width, height } => write!(f, "{width}x{height}: 4:2:0 formats (NV12, I420) need even width and height"),
            Self::PayloadTooSmall { payload, frame } => write!(f, "slot payload of {payload} bytes cannot hold a {frame}-byte frame; use 0 to size slots to the frame"),
            Self::PayloadTooLarge { payload, max } => write!(f, "slot payload of {payload} bytes exceeds the {max}-byte limit"),
            Self::BadAlign { found } => write!(f, "slot alignment {found} must be a power of two between {MIN_SLOT_ALIGN} and {MAX_SLOT_ALIGN}"),
            Self::TooLarge { total } => write!(f, "segment of {total} bytes exceeds the {MAX_TOTAL_SIZE}-byte limit; use fewer or smaller slots"),
            Self::UnknownPixelFormat(v) => write!(f, "unknown pixel format code {v}"),
            Self::UnknownPattern(v) => write!(f, "unknown delivery pattern code {v}"),
            Self::UnknownPolicy(v) => write!(f, "unknown overflow policy code {v}"),
            Self::BadResults { cells, max_bytes } => write!(f, "results area of {cells} cell(s) of {max_bytes} bytes: use 0 cells (no results), or a power of two up to {MAX_RESULT_CELLS} cells of at most {MAX_RESULT_BYTES} bytes"),
            Self::ResultsNeedWorkQueue => write!(f, "results are posted by work-queue workers: create the segment with the work-queue pattern, or without results"),
        }
    }
}

impl core::error::Error for SpecError {}

/// Byte offsets of everything in a segment, computed from a [`SegmentSpec`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The spec, with defaults filled in (payload size and alignment never 0).
    pub spec: SegmentSpec,
    /// Planes of one frame inside a slot.
    pub planes: Planes,
    /// Distance between slot starts (payload rounded up to the alignment).
    pub slot_stride: u64,
    /// Cells of the publish ring: the next power of two ≥ 2 × slot count.
    pub ring_capacity: u32,
    /// Start of the control area (= [`HEADER_SIZE`]).
    pub control_offset: u64,
    /// Size of the control area (a multiple of the slot alignment).
    pub control_size: u64,
    /// Start of the slot area.
    pub slots_offset: u64,
    /// Size of the slot area.
    pub slots_size: u64,
    /// Size of the whole segment.
    pub total_size: u64,
    /// Slot lines, relative to the control area.
    pub ctl_slots: u64,
    /// Publish ring, relative to the control area.
    pub ctl_ring: u64,
    /// Consumer table, relative to the control area.
    pub ctl_consumers: u64,
    /// Start of the results area (right after the slots; its size is 0 without results).
    pub results_offset: u64,
    /// Size of the results area: `result_cells × result_stride`.
    pub results_size: u64,
    /// Distance between result cells: a 128-byte header line, then the payload rounded up to
    /// 128 (0 without results).
    pub result_stride: u64,
}

const fn round_up(v: u64, to: u64) -> Option<u64> {
    match v.checked_add(to - 1) {
        Some(x) => Some(x / to * to),
        None => None,
    }
}

impl Layout {
    /// Computes the layout of `spec`.
    ///
    /// # Examples
    /// ```
    /// use framebus_core::{FrameGeometry, Layout, PixelFormat, SegmentSpec};
    /// let spec = SegmentSpec::new(FrameGeometry::new(1920, 1080, PixelFormat::Bgr24), 6);
    /// let l = Layout::compute(&spec).unwrap();
    /// assert_eq!(l.slots_offset % 4096, 0);
    /// assert_eq!(l.slot_stride, 6_221_824); // 6 220 800 rounded up to 4 KiB
    /// ```
    ///
    /// # Errors
    /// A [`SpecError`] naming the first limit the spec breaks.
    pub const fn compute(spec: &SegmentSpec) -> Result<Layout, SpecError> {
        if spec.slot_count == 0 || spec.slot_count > MAX_SLOTS {
            return Err(SpecError::SlotCount { found: spec.slot_count });
        }
        if spec.max_consumers == 0 || spec.max_consumers > MAX_CONSUMERS {
            return Err(SpecError::Consumers { found: spec.max_consumers });
        }
        let planes = match spec.geometry.planes() {
            Ok(p) => p,
            Err(e) => return Err(e),
        };
        let payload = if spec.slot_payload_size == 0 { planes.frame_size } else { spec.slot_payload_size };
        if payload < planes.frame_size {
            return Err(SpecError::PayloadTooSmall { payload, frame: planes.frame_size });
        }
        if payload > MAX_SLOT_PAYLOAD {
            return Err(SpecError::PayloadTooLarge { payload, max: MAX_SLOT_PAYLOAD });
        }
        let align = if spec.slot_align == 0 { MIN_SLOT_ALIGN } else { spec.slot_align };
        if !align.is_power_of_two() || align < MIN_SLOT_ALIGN || align > MAX_SLOT_ALIGN {
            return Err(SpecError::BadAlign { found: spec.slot_align });
        }
        let align64 = align as u64;
        let slot_stride = match round_up(payload, align64) {
            Some(s) => s,
            None => return Err(SpecError::TooLarge { total: u64::MAX }),
        };
        let ring_capacity = (spec.slot_count * 2).next_power_of_two();
        let ctl_slots = ctl::SLOTS;
        let ctl_ring = ctl_slots + spec.slot_count as u64 * LINE;
        let ring_bytes = ring_capacity as u64 * 8;
        let ctl_consumers = match round_up(ctl_ring + ring_bytes, LINE) {
            Some(v) => v,
            None => return Err(SpecError::TooLarge { total: u64::MAX }),
        };
        let ctl_end = ctl_consumers + spec.max_consumers as u64 * LINE;
        let control_offset = HEADER_SIZE;
        // The control area is padded so that the slot area starts aligned.
        let slots_offset = match round_up(control_offset + ctl_end, align64) {
            Some(v) => v,
            None => return Err(SpecError::TooLarge { total: u64::MAX }),
        };
        let slots_size = match slot_stride.checked_mul(spec.slot_count as u64) {
            Some(v) => v,
            None => return Err(SpecError::TooLarge { total: u64::MAX }),
        };
        let cells = spec.result_cells;
        let result_max = if cells != 0 && spec.result_max == 0 { DEFAULT_RESULT_BYTES } else { spec.result_max };
        if (cells != 0 && (!cells.is_power_of_two() || cells > MAX_RESULT_CELLS || result_max > MAX_RESULT_BYTES))
            || (cells == 0 && spec.result_max != 0)
        {
            return Err(SpecError::BadResults { cells, max_bytes: spec.result_max });
        }
        if cells != 0 && !matches!(spec.pattern, Pattern::WorkQueue) {
            return Err(SpecError::ResultsNeedWorkQueue);
        }
        let result_stride = if cells == 0 {
            0
        } else {
            match round_up(result_max as u64, LINE) {
                Some(v) => LINE + v,
                None => return Err(SpecError::TooLarge { total: u64::MAX }),
            }
        };
        let results_offset = match slots_offset.checked_add(slots_size) {
            Some(v) => v,
            None => return Err(SpecError::TooLarge { total: u64::MAX }),
        };
        let results_size = result_stride * cells as u64;
        let total_size = match results_offset.checked_add(results_size) {
            Some(v) => v,
            None => return Err(SpecError::TooLarge { total: u64::MAX }),
        };
        if total_size > MAX_TOTAL_SIZE {
            return Err(SpecError::TooLarge { total: total_size });
        }
        let mut spec = *spec;
        spec.slot_payload_size = payload;
        spec.slot_align = align;
        spec.result_max = result_max;
        Ok(Layout {
            spec,
            planes,
            slot_stride,
            ring_capacity,
            control_offset,
            control_size: slots_offset - control_offset,
            slots_offset,
            slots_size,
            total_size,
            ctl_slots,
            ctl_ring,
            ctl_consumers,
            results_offset,
            results_size,
            result_stride,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example in docs/LAYOUT.md §2.
    #[test]
    fn layout_doc_example_matches() {
        let spec = SegmentSpec::new(FrameGeometry::new(1920, 1080, PixelFormat::Bgr24), 6);
        let l = Layout::compute(&spec).unwrap();
        assert_eq!(l.planes.frame_size, 6_220_800);
        assert_eq!(l.slot_stride, 6_221_824);
        assert_eq!(l.ring_capacity, 16);
        assert_eq!((l.ctl_slots, l.ctl_ring, l.ctl_consumers), (896, 1664, 1792));
        assert_eq!(l.slots_offset, 8192);
        assert_eq!(l.total_size, 37_339_136);
        assert_eq!((l.results_offset, l.results_size, l.result_stride), (37_339_136, 0, 0));
        // The same with 64 results of up to 4 KiB (the doc's second example).
        let l = Layout::compute(&spec.with_results(64, 0)).unwrap();
        assert_eq!((l.spec.result_max, l.result_stride, l.results_size), (4096, 4224, 270_336));
        assert_eq!((l.results_offset, l.total_size), (37_339_136, 37_609_472));
    }

    #[test]
    fn results_specs_outside_the_limits_are_refused() {
        let base = SegmentSpec::new(FrameGeometry::new(8, 8, PixelFormat::Gray8), 2);
        for (cells, bytes) in [(3, 0), (MAX_RESULT_CELLS * 2, 0), (8, MAX_RESULT_BYTES + 1), (0, 16)] {
            assert_eq!(
                Layout::compute(&base.with_results(cells, bytes)),
                Err(SpecError::BadResults { cells, max_bytes: bytes }),
                "{cells} x {bytes}"
            );
        }
        assert_eq!(
            Layout::compute(&base.with_pattern(Pattern::Broadcast).with_results(8, 0)),
            Err(SpecError::ResultsNeedWorkQueue)
        );
        let l = Layout::compute(&base.with_results(8, 65_536)).unwrap();
        let bytes = l.encode_header(&Creator::default());
        assert_eq!(Layout::decode_header(&bytes, l.total_size).map(|r| r.0), Ok(l), "a results header round-trips");
    }

    #[test]
    fn planes_of_each_format() {
        let p = FrameGeometry::new(4, 2, PixelFormat::I420).planes().unwrap();
        assert_eq!(p.count, 3);
        assert_eq!((p.planes[1].offset, p.planes[1].stride, p.planes[2].offset), (8, 2, 10));
        assert_eq!(p.frame_size, 12);
        let p = FrameGeometry::new(4, 2, PixelFormat::Nv12).planes().unwrap();
        assert_eq!((p.count, p.planes[1].offset, p.planes[1].stride, p.frame_size), (2, 8, 4, 12));
        assert_eq!(FrameGeometry::new(3, 2, PixelFormat::Rgb24).planes().unwrap().frame_size, 18);
    }

    #[test]
    fn round_up_handles_overflow() {
        assert_eq!(round_up(1, 4096), Some(4096));
        assert_eq!(round_up(4096, 4096), Some(4096));
        assert_eq!(round_up(u64::MAX, 4096), None);
    }
}
