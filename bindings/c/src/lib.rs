//! The C ABI of framebus: `libframebus.so` / `libframebus.a` with `include/framebus.h`.
//!
//! The same segments as the Rust API, for decoders and pipelines written in C and C++ (a
//! GStreamer appsink callback, an OpenCV capture loop). A producer writes straight into the
//! slot (`fb_producer_begin` → fill `slot.data` → `fb_producer_publish`), or hands over a
//! buffer it already has (`fb_producer_write`, one copy: the appsink case); a consumer reads
//! the frame where it lies (`fb_consumer_claim` → `frame.data` → `fb_consumer_release`).
//!
//! # Rules for every function
//! - Returns an `fb_status`: `FB_OK` (0); a positive outcome that is not an error
//!   (`FB_TIMED_OUT`, `FB_DROPPED`); or a negative error, after which `fb_last_error()` holds a
//!   message for this thread saying what happened and what to do.
//! - Output parameters are written only on `FB_OK` (and `FB_DROPPED` where noted).
//! - A null pointer where a handle or output is required is `FB_ERR_INVALID_ARGUMENT`.
//! - No Rust panic crosses the boundary: one is caught and returned as `FB_ERR_INTERNAL`.
//!
//! # Ownership and threads
//! - `fb_segment*` is reference counted: producers and consumers keep their segment mapped,
//!   so `fb_segment_close` may come before or after closing them. A segment handle may be
//!   used from several threads at once.
//! - `fb_producer*` and `fb_consumer*` belong to their creator: use each from one thread at
//!   a time (moving it to another thread is fine), and close it exactly once.
//! - `slot.data` is writable until publish or abandon; `frame.data` is readable until that
//!   frame is released. Both point into the shared mapping: nothing is copied.
//!
//! # Example (C)
//! ```c
//! fb_segment *seg; fb_consumer *worker; fb_frame frame;
//! if (fb_segment_open("cam0", &seg) != FB_OK) { fprintf(stderr, "%s\n", fb_last_error()); return 1; }
//! fb_consumer_register(seg, FB_KIND_WORKER, &worker);
//! while (fb_consumer_claim(worker, 1000, &frame) == FB_OK) {
//!     infer(frame.data, frame.meta.width, frame.meta.height);  /* in place, no copy */
//!     fb_consumer_release(worker, &frame);
//! }
//! fb_consumer_close(worker);
//! fb_segment_close(seg);
//! ```
//!
//! The files: `lib.rs` (status codes, the vocabulary's constants, the ABI structs and handles,
//! versions, pointer helpers), `error.rs` (status + message, the panic guard), `segment.rs`,
//! `producer.rs`, `consumer.rs` (the calls on each handle). A new call goes into the file of its
//! handle, inside `guard`; `cargo xtask cheader` regenerates the header.
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
// The exported names follow C conventions (`fb_segment`, `FB_OK`).
#![allow(non_camel_case_types)]

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use framebus_core::segment::{AttachError, ClaimError, FrameMeta, RegisterError, FLAG_CHECKSUM};
use framebus_core::{
    BeginError, ConsumerKind, FrameGeometry, OverflowPolicy, Pattern, PixelFormat, SegmentSpec, SkipCause,
};
use framebus_platform::owned::{HeldFrame, OwnedConsumer, OwnedProducer, ProduceError};
use framebus_platform::wait::WaitError;
use framebus_platform::{CreateOptions, Error as PlatformError, SharedSegment};

mod consumer;
mod error;
mod producer;
mod reader;
mod segment;

pub use consumer::*;
pub use error::*;
pub use producer::*;
pub use reader::*;
pub use segment::*;

/// What a call did: `FB_OK`, a positive outcome, or a negative error (see `fb_last_error`).
pub type fb_status = i32;

/// Success.
pub const FB_OK: fb_status = 0;
/// The timeout passed before a frame (claim) or a free slot (begin under Block) came.
pub const FB_TIMED_OUT: fb_status = 1;
/// `fb_producer_begin`/`fb_producer_write`: this frame was dropped by the overflow policy and
/// counted; `slot.seq` / `*seq_out` names it. Go on with the next frame.
pub const FB_DROPPED: fb_status = 2;
/// `fb_consumer_post`: the frame was already given up on (its deadline passed, or the reader
/// has moved past it); the result is counted as late and dropped.
pub const FB_LATE: fb_status = 3;
/// `fb_reader_next`: the producer finished; every result has been delivered.
/// `fb_consumer_claim`: the producer finished; every frame has been given out.
pub const FB_END: fb_status = 4;
/// A null pointer, an unknown enum value, a bad spec, or a call out of order.
pub const FB_ERR_INVALID_ARGUMENT: fb_status = -1;
/// No segment has that name.
pub const FB_ERR_NOT_FOUND: fb_status = -2;
/// A segment with that name exists already.
pub const FB_ERR_EXISTS: fb_status = -3;
/// The OS refused access (segments are owner-only by default).
pub const FB_ERR_PERMISSION: fb_status = -4;
/// Not enough shared memory for the segment.
pub const FB_ERR_NO_SPACE: fb_status = -5;
/// The object is not a valid framebus segment (truncated, garbage, other layout version).
pub const FB_ERR_BAD_SEGMENT: fb_status = -6;
/// Another live producer is attached.
pub const FB_ERR_BUSY: fb_status = -7;
/// Every consumer entry is in use.
pub const FB_ERR_TABLE_FULL: fb_status = -8;
/// The consumer kind does not fit the segment's pattern.
pub const FB_ERR_WRONG_PATTERN: fb_status = -9;
/// This consumer was reclaimed as dead; close it and register again.
pub const FB_ERR_EVICTED: fb_status = -10;
/// Shared memory holds impossible values (corrupt segment or hostile peer).
pub const FB_ERR_CORRUPT: fb_status = -11;
/// Release of a frame this consumer does not hold (double release, stale frame).
pub const FB_ERR_NOT_HELD: fb_status = -12;
/// Another producer took over the segment; this producer must stop.
pub const FB_ERR_SUPERSEDED: fb_status = -13;
/// Not available on this platform.
pub const FB_ERR_UNSUPPORTED: fb_status = -14;
/// Another operating-system error.
pub const FB_ERR_IO: fb_status = -15;
/// A bug in framebus (a caught panic); the message says where.
pub const FB_ERR_INTERNAL: fb_status = -16;

/// Pixel format: opaque bytes (`width` bytes per row).
pub const FB_FORMAT_RAW: u32 = 0;
/// Pixel format: packed 8-bit B, G, R (OpenCV's default).
pub const FB_FORMAT_BGR24: u32 = 1;
/// Pixel format: packed 8-bit R, G, B.
pub const FB_FORMAT_RGB24: u32 = 2;
/// Pixel format: 8-bit luma.
pub const FB_FORMAT_GRAY8: u32 = 3;
/// Pixel format: NV12 (Y plane, interleaved UV plane).
pub const FB_FORMAT_NV12: u32 = 4;
/// Pixel format: I420 (Y, U, V planes).
pub const FB_FORMAT_I420: u32 = 5;

/// Pattern: each frame goes to exactly one worker.
pub const FB_PATTERN_WORK_QUEUE: u32 = 0;
/// Pattern: each frame goes to every subscriber.
pub const FB_PATTERN_BROADCAST: u32 = 1;

/// Overflow policy: wait for a free slot (nothing is lost).
pub const FB_POLICY_BLOCK: u32 = 0;
/// Overflow policy: reuse the oldest unclaimed frame (live camera); counted.
pub const FB_POLICY_DROP_OLDEST: u32 = 1;
/// Overflow policy: skip the incoming frame; counted.
pub const FB_POLICY_DROP_NEWEST: u32 = 2;

/// Consumer kind: a work-queue worker.
pub const FB_KIND_WORKER: u32 = 1;
/// Consumer kind: a broadcast subscriber.
pub const FB_KIND_SUBSCRIBER: u32 = 2;
/// Consumer kind: reads the newest frame, skipping older ones (either pattern).
pub const FB_KIND_LATEST: u32 = 3;

// The codes above are the core's (`framebus_core::vocab`, the one definition). cbindgen can
// only copy literals into the header, so each literal is checked against the core here, at
// compile time; `tests/c_api.rs` checks that the header names every value of every vocabulary.
const _: () = {
    assert!(FB_FORMAT_RAW == PixelFormat::Raw as u32);
    assert!(FB_FORMAT_BGR24 == PixelFormat::Bgr24 as u32);
    assert!(FB_FORMAT_RGB24 == PixelFormat::Rgb24 as u32);
    assert!(FB_FORMAT_GRAY8 == PixelFormat::Gray8 as u32);
    assert!(FB_FORMAT_NV12 == PixelFormat::Nv12 as u32);
    assert!(FB_FORMAT_I420 == PixelFormat::I420 as u32);
    assert!(FB_PATTERN_WORK_QUEUE == Pattern::WorkQueue as u32);
    assert!(FB_PATTERN_BROADCAST == Pattern::Broadcast as u32);
    assert!(FB_POLICY_BLOCK == OverflowPolicy::Block as u32);
    assert!(FB_POLICY_DROP_OLDEST == OverflowPolicy::DropOldest as u32);
    assert!(FB_POLICY_DROP_NEWEST == OverflowPolicy::DropNewest as u32);
    assert!(FB_KIND_WORKER == ConsumerKind::Worker as u32);
    assert!(FB_KIND_SUBSCRIBER == ConsumerKind::Subscriber as u32);
    assert!(FB_KIND_LATEST == ConsumerKind::Latest as u32);
};

/// Skip cause: the producer reused the frame's slot before any worker claimed it.
pub const FB_SKIP_DROPPED_OLDEST: u32 = 1;
/// Skip cause: the producer never published the frame (no slot was free).
pub const FB_SKIP_DROPPED_NEWEST: u32 = 2;
/// Skip cause: the worker holding the frame died before posting.
pub const FB_SKIP_WORKER_DIED: u32 = 3;
/// Skip cause: no result came within the reader's deadline (`fb_reader_skip_head`).
pub const FB_SKIP_DEADLINE: u32 = 4;
/// Skip cause: the worker released the frame without posting.
pub const FB_SKIP_NO_RESULT: u32 = 5;
/// Skip cause: the reader was a whole results window behind when the frame's fate was decided.
pub const FB_SKIP_OVERFLOW: u32 = 6;

const _: () = {
    assert!(FB_SKIP_DROPPED_OLDEST == SkipCause::DroppedOldest as u32);
    assert!(FB_SKIP_DROPPED_NEWEST == SkipCause::DroppedNewest as u32);
    assert!(FB_SKIP_WORKER_DIED == SkipCause::WorkerDied as u32);
    assert!(FB_SKIP_DEADLINE == SkipCause::Deadline as u32);
    assert!(FB_SKIP_NO_RESULT == SkipCause::NoResult as u32);
    assert!(FB_SKIP_OVERFLOW == SkipCause::Overflow as u32);
};

/// `fb_result.kind`: a result, its bytes in the caller's buffer.
pub const FB_RESULT_READY: u32 = 0;
/// `fb_result.kind`: the frame has no result; `fb_result.cause` says why (`FB_SKIP_*`).
pub const FB_RESULT_SKIPPED: u32 = 1;

/// Version of this C ABI; it changes when a signature or struct changes (2: results, and
/// `fb_spec.result_cells` / `result_max`).
pub const FB_ABI_VERSION: u32 = 2;

/// What to create: frame geometry, slot count, pattern and policy.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct fb_spec {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// `FB_FORMAT_*`.
    pub pixel_format: u32,
    /// Number of frame slots (the memory is fixed at slots × frame size).
    pub slots: u32,
    /// `FB_PATTERN_*`.
    pub pattern: u32,
    /// `FB_POLICY_*`.
    pub policy: u32,
    /// Consumer table size; 0 means 8.
    pub max_consumers: u32,
    /// Permission bits of the shared-memory object; 0 means 0600 (owner only).
    pub mode: u32,
    /// Result cells for ordered results (0: none; else a power of two; work queue only).
    pub result_cells: u32,
    /// Bytes per result; 0 means 4096.
    pub result_max: u32,
}

/// One step of the ordered results reader (`fb_reader_next`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct fb_result {
    /// Sequence number of the frame.
    pub seq: u64,
    /// Producer epoch of the frame (results only).
    pub epoch: u64,
    /// `FB_RESULT_READY` or `FB_RESULT_SKIPPED`.
    pub kind: u32,
    /// `FB_SKIP_*` when skipped, else 0.
    pub cause: u32,
    /// Bytes copied into the caller's buffer (results only).
    pub len: usize,
}

/// Frame metadata a producer attaches and a consumer reads.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct fb_frame_meta {
    /// Capture time in ns, on the producer's clock: framebus does not read it. Its own
    /// producers stamp CLOCK_MONOTONIC (`clock_gettime(CLOCK_MONOTONIC)`), which every process
    /// of a boot shares; use the same to compare times across processes.
    pub capture_ns: u64,
    /// Presentation time in ns.
    pub pts_ns: u64,
    /// Width of this frame.
    pub width: u32,
    /// Height of this frame.
    pub height: u32,
    /// `FB_FORMAT_*` of this frame.
    pub pixel_format: u32,
    /// Application flags (bit 31 is reserved and ignored).
    pub flags: u32,
    /// Bytes of payload used (at most the slot capacity).
    pub payload_len: u64,
    /// Content checksum, when `has_checksum` is non-zero.
    pub checksum: u64,
    /// Non-zero when `checksum` is set.
    pub has_checksum: u32,
}

/// The slot a producer is writing (from `fb_producer_begin`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct fb_slot {
    /// The payload, writable for `capacity` bytes until publish or abandon.
    pub data: *mut u8,
    /// Bytes in the slot.
    pub capacity: u64,
    /// The sequence number the frame gets when published (on `FB_DROPPED`: the dropped one).
    pub seq: u64,
    /// Slot index.
    pub slot: u32,
    /// Non-zero when taking this slot dropped an unclaimed frame (`dropped_seq` names it).
    pub dropped: u32,
    /// The frame that taking this slot dropped (DropOldest), when `dropped` is non-zero.
    pub dropped_seq: u64,
}

/// A frame a consumer holds (from `fb_consumer_claim`). Pass it back unchanged to release it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct fb_frame {
    /// The payload, readable for `meta.payload_len` bytes until released. Do not write.
    pub data: *const u8,
    /// Bytes in the slot.
    pub capacity: u64,
    /// Sequence number; a gap from the previous one is frames this consumer did not get.
    pub seq: u64,
    /// Producer epoch (it moves when a producer takes over from a dead one).
    pub epoch: u64,
    /// The producer's metadata.
    pub meta: fb_frame_meta,
    /// Slot index (identity, with `gen`).
    pub slot: u32,
    /// Slot generation at claim (identity, with `slot`).
    pub gen: u64,
}

/// A segment's geometry and counters (from `fb_segment_get_info`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct fb_segment_info {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// `FB_FORMAT_*`.
    pub pixel_format: u32,
    /// Slot count.
    pub slots: u32,
    /// `FB_PATTERN_*`.
    pub pattern: u32,
    /// `FB_POLICY_*`.
    pub policy: u32,
    /// Consumer table size.
    pub max_consumers: u32,
    /// Bytes of one tightly packed frame.
    pub frame_size: u64,
    /// Bytes per slot.
    pub slot_capacity: u64,
    /// Bytes of the whole segment.
    pub total_size: u64,
    /// Frames published.
    pub published: u64,
    /// The next sequence number.
    pub next_seq: u64,
    /// Unclaimed frames overwritten (DropOldest).
    pub dropped_oldest: u64,
    /// Incoming frames skipped (DropNewest, or nothing droppable).
    pub dropped_newest: u64,
    /// Frames claimed by workers.
    pub delivered: u64,
    /// Producer epoch.
    pub epoch: u64,
}

/// An open segment (opaque; reference counted).
pub struct fb_segment {
    shared: Arc<SharedSegment>,
}

/// The producer of a segment (opaque).
pub struct fb_producer {
    inner: OwnedProducer,
}

/// A worker, subscriber or latest reader (opaque).
pub struct fb_consumer {
    inner: OwnedConsumer,
}

/// The ordered results reader of a segment (opaque).
pub struct fb_reader {
    inner: framebus_platform::OwnedReader,
}

/// Borrows a handle, or fails with a message naming the argument.
///
/// # Safety
/// `p` is null or a pointer this library returned and the caller has not closed.
pub(crate) unsafe fn handle<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: per the contract above.
    unsafe { p.as_mut() }.ok_or_else(|| Failure::arg(format!("{what} is NULL")))
}

/// Reads a C string argument.
///
/// # Safety
/// `p` is null or a NUL-terminated string.
pub(crate) unsafe fn string<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(Failure::arg(format!("{what} is NULL")));
    }
    // SAFETY: non-null and NUL-terminated per the contract above.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| Failure::arg(format!("{what} is not valid UTF-8")))
}

/// Writes an output parameter.
///
/// # Safety
/// `p` is null or valid for writing a `T`.
pub(crate) unsafe fn put<T>(p: *mut T, v: T, what: &str) -> Result<(), Failure> {
    if p.is_null() {
        return Err(Failure::arg(format!("{what} is NULL")));
    }
    // SAFETY: non-null and writable per the contract above.
    unsafe { p.write(v) };
    Ok(())
}

/// Frees a handle this library made with `Box::into_raw` (NULL is ignored), inside the panic
/// guard.
///
/// # Safety
/// `p` is NULL or a live handle of type `T` from this library, not freed before.
pub(crate) unsafe fn free_handle<T>(p: *mut T) {
    let _ = guard(|| {
        if !p.is_null() {
            // SAFETY: per the contract, a live handle from Box::into_raw, freed once.
            drop(unsafe { Box::from_raw(p) });
        }
        Ok(FB_OK)
    });
}

pub(crate) fn ms(timeout_ms: u32) -> Duration {
    Duration::from_millis(u64::from(timeout_ms))
}

pub(crate) fn meta_from_c(m: &fb_frame_meta) -> FrameMeta {
    FrameMeta {
        capture_ns: m.capture_ns,
        pts_ns: m.pts_ns,
        width: m.width,
        height: m.height,
        pixel_format: m.pixel_format,
        flags: m.flags & !FLAG_CHECKSUM,
        payload_len: m.payload_len,
        checksum: (m.has_checksum != 0).then_some(m.checksum),
    }
}

pub(crate) fn meta_to_c(m: &FrameMeta) -> fb_frame_meta {
    fb_frame_meta {
        capture_ns: m.capture_ns,
        pts_ns: m.pts_ns,
        width: m.width,
        height: m.height,
        pixel_format: m.pixel_format,
        flags: m.flags & !FLAG_CHECKSUM,
        payload_len: m.payload_len,
        checksum: m.checksum.unwrap_or(0),
        has_checksum: u32::from(m.checksum.is_some()),
    }
}

/// The metadata of a full frame of the segment's geometry (what a NULL `meta` means).
pub(crate) fn default_meta(shared: &SharedSegment) -> FrameMeta {
    let layout = *shared.segment().layout();
    let g = layout.spec.geometry;
    FrameMeta {
        width: g.width,
        height: g.height,
        pixel_format: g.format as u32,
        payload_len: layout.planes.frame_size,
        ..FrameMeta::default()
    }
}

/// The C ABI version (`FB_ABI_VERSION` of the library actually loaded). Compare it with the
/// header's `FB_ABI_VERSION` at start-up.
#[no_mangle]
pub extern "C" fn fb_abi_version() -> u32 {
    FB_ABI_VERSION
}

/// The shared-memory layout version this library reads and writes (see docs/LAYOUT.md).
#[no_mangle]
pub extern "C" fn fb_layout_version() -> u32 {
    framebus_core::layout::LAYOUT_VERSION
}

/// The library's version ("0.1.0"), static, never NULL.
#[no_mangle]
pub extern "C" fn fb_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
