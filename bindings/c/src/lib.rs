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
use framebus_core::{BeginError, ConsumerKind, FrameGeometry, OverflowPolicy, Pattern, PixelFormat, SegmentSpec};
use framebus_platform::owned::{HeldFrame, OwnedConsumer, OwnedProducer, ProduceError};
use framebus_platform::wait::WaitError;
use framebus_platform::{CreateOptions, Error as PlatformError, SharedSegment};

/// What a call did: `FB_OK`, a positive outcome, or a negative error (see `fb_last_error`).
pub type fb_status = i32;

/// Success.
pub const FB_OK: fb_status = 0;
/// The timeout passed before a frame (claim) or a free slot (begin under Block) came.
pub const FB_TIMED_OUT: fb_status = 1;
/// `fb_producer_begin`/`fb_producer_write`: this frame was dropped by the overflow policy and
/// counted; `slot.seq` / `*seq_out` names it. Go on with the next frame.
pub const FB_DROPPED: fb_status = 2;
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

/// Version of this C ABI; it changes when a signature or struct changes.
pub const FB_ABI_VERSION: u32 = 1;

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
}

/// Frame metadata a producer attaches and a consumer reads.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct fb_frame_meta {
    /// Capture time in ns (the source's clock).
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

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// An error on its way to C: its status and its message.
struct Failure(fb_status, String);

impl Failure {
    fn arg(msg: impl Into<String>) -> Self {
        Failure(FB_ERR_INVALID_ARGUMENT, msg.into())
    }
}

impl From<PlatformError> for Failure {
    fn from(e: PlatformError) -> Self {
        let code = match &e {
            PlatformError::InvalidName { .. } | PlatformError::Spec(_) => FB_ERR_INVALID_ARGUMENT,
            PlatformError::NotFound { .. } => FB_ERR_NOT_FOUND,
            PlatformError::AlreadyExists { .. } => FB_ERR_EXISTS,
            PlatformError::PermissionDenied { .. } => FB_ERR_PERMISSION,
            PlatformError::NoSpace { .. } => FB_ERR_NO_SPACE,
            PlatformError::Header { .. } => FB_ERR_BAD_SEGMENT,
            PlatformError::Unsupported { .. } | PlatformError::DeviceMissing { .. } => FB_ERR_UNSUPPORTED,
            _ => FB_ERR_IO,
        };
        Failure(code, e.to_string())
    }
}

impl From<AttachError> for Failure {
    fn from(e: AttachError) -> Self {
        Failure(FB_ERR_BUSY, e.to_string())
    }
}

impl From<RegisterError> for Failure {
    fn from(e: RegisterError) -> Self {
        let code = match e {
            // Both mean "no room for this process's consumer"; the message says which.
            RegisterError::TableFull { .. } | RegisterError::TooManyProcesses { .. } => FB_ERR_TABLE_FULL,
            RegisterError::WrongPattern { .. } => FB_ERR_WRONG_PATTERN,
            RegisterError::ZeroToken => FB_ERR_INTERNAL,
        };
        Failure(code, e.to_string())
    }
}

impl From<ClaimError> for Failure {
    fn from(e: ClaimError) -> Self {
        let code = match e {
            ClaimError::Evicted => FB_ERR_EVICTED,
            ClaimError::NotHeld => FB_ERR_NOT_HELD,
            ClaimError::Empty | ClaimError::Contended => FB_TIMED_OUT,
            ClaimError::Corrupt => FB_ERR_CORRUPT,
        };
        Failure(code, e.to_string())
    }
}

impl From<ProduceError> for Failure {
    fn from(e: ProduceError) -> Self {
        let code = match e {
            ProduceError::Begin(BeginError::Superseded) => FB_ERR_SUPERSEDED,
            ProduceError::Begin(BeginError::DroppedNewest { .. }) => FB_DROPPED,
            ProduceError::Begin(BeginError::Full) | ProduceError::TimedOut => FB_TIMED_OUT,
            ProduceError::NoSlot | ProduceError::SlotPending => FB_ERR_INVALID_ARGUMENT,
        };
        Failure(code, e.to_string())
    }
}

/// Runs `f`, turning a `Failure` or a panic into a status and this thread's last error.
fn guard(f: impl FnOnce() -> Result<fb_status, Failure>) -> fb_status {
    let outcome = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Failure(FB_ERR_INTERNAL, format!("internal error (a framebus bug; please report it): {what}")))
    });
    match outcome {
        Ok(status) => status,
        Err(Failure(status, msg)) => {
            set_last_error(&msg);
            status
        }
    }
}

fn set_last_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Borrows a handle, or fails with a message naming the argument.
///
/// # Safety
/// `p` is null or a pointer this library returned and the caller has not closed.
unsafe fn handle<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: per the contract above.
    unsafe { p.as_mut() }.ok_or_else(|| Failure::arg(format!("{what} is NULL")))
}

/// Reads a C string argument.
///
/// # Safety
/// `p` is null or a NUL-terminated string.
unsafe fn string<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
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
unsafe fn put<T>(p: *mut T, v: T, what: &str) -> Result<(), Failure> {
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
unsafe fn free_handle<T>(p: *mut T) {
    let _ = guard(|| {
        if !p.is_null() {
            // SAFETY: per the contract, a live handle from Box::into_raw, freed once.
            drop(unsafe { Box::from_raw(p) });
        }
        Ok(FB_OK)
    });
}

fn ms(timeout_ms: u32) -> Duration {
    Duration::from_millis(u64::from(timeout_ms))
}

fn meta_from_c(m: &fb_frame_meta) -> FrameMeta {
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

fn meta_to_c(m: &FrameMeta) -> fb_frame_meta {
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
fn default_meta(shared: &SharedSegment) -> FrameMeta {
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

/// The message of the last error on the calling thread ("" before any). Valid until the next
/// failing call on this thread; copy it to keep it. Never NULL.
#[no_mangle]
pub extern "C" fn fb_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// A short name for a status code (`"FB_ERR_NOT_FOUND"`), static, never NULL.
#[no_mangle]
pub extern "C" fn fb_status_name(status: fb_status) -> *const c_char {
    let s: &'static CStr = match status {
        FB_OK => c"FB_OK",
        FB_TIMED_OUT => c"FB_TIMED_OUT",
        FB_DROPPED => c"FB_DROPPED",
        FB_ERR_INVALID_ARGUMENT => c"FB_ERR_INVALID_ARGUMENT",
        FB_ERR_NOT_FOUND => c"FB_ERR_NOT_FOUND",
        FB_ERR_EXISTS => c"FB_ERR_EXISTS",
        FB_ERR_PERMISSION => c"FB_ERR_PERMISSION",
        FB_ERR_NO_SPACE => c"FB_ERR_NO_SPACE",
        FB_ERR_BAD_SEGMENT => c"FB_ERR_BAD_SEGMENT",
        FB_ERR_BUSY => c"FB_ERR_BUSY",
        FB_ERR_TABLE_FULL => c"FB_ERR_TABLE_FULL",
        FB_ERR_WRONG_PATTERN => c"FB_ERR_WRONG_PATTERN",
        FB_ERR_EVICTED => c"FB_ERR_EVICTED",
        FB_ERR_CORRUPT => c"FB_ERR_CORRUPT",
        FB_ERR_NOT_HELD => c"FB_ERR_NOT_HELD",
        FB_ERR_SUPERSEDED => c"FB_ERR_SUPERSEDED",
        FB_ERR_UNSUPPORTED => c"FB_ERR_UNSUPPORTED",
        FB_ERR_IO => c"FB_ERR_IO",
        FB_ERR_INTERNAL => c"FB_ERR_INTERNAL",
        _ => c"FB_UNKNOWN_STATUS",
    };
    s.as_ptr()
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

/// A spec with the defaults: work queue, Block, 8 consumers, mode 0600.
#[no_mangle]
pub extern "C" fn fb_spec_default(width: u32, height: u32, pixel_format: u32, slots: u32) -> fb_spec {
    fb_spec {
        width,
        height,
        pixel_format,
        slots,
        pattern: FB_PATTERN_WORK_QUEUE,
        policy: FB_POLICY_BLOCK,
        max_consumers: 0,
        mode: 0,
    }
}

fn spec_from_c(s: &fb_spec) -> Result<SegmentSpec, Failure> {
    let format = PixelFormat::from_u32(s.pixel_format)
        .ok_or_else(|| Failure::arg(format!("unknown pixel_format {} (use FB_FORMAT_*)", s.pixel_format)))?;
    let pattern = Pattern::from_u32(s.pattern)
        .ok_or_else(|| Failure::arg(format!("unknown pattern {} (use FB_PATTERN_*)", s.pattern)))?;
    let policy = OverflowPolicy::from_u32(s.policy)
        .ok_or_else(|| Failure::arg(format!("unknown policy {} (use FB_POLICY_*)", s.policy)))?;
    let mut spec = SegmentSpec::new(FrameGeometry::new(s.width, s.height, format), s.slots)
        .with_pattern(pattern)
        .with_policy(policy);
    if s.max_consumers != 0 {
        spec = spec.with_max_consumers(s.max_consumers);
    }
    Ok(spec)
}

/// Creates the named segment `name` (1-64 of `[A-Za-z0-9._-]`; Linux: `/dev/shm/framebus.NAME`)
/// and maps it. The name is removed when this handle (and every endpoint made from it) is
/// closed. A segment of that name left by a dead creator is replaced.
///
/// # Safety
/// `name` is a NUL-terminated string, `spec` points to an `fb_spec`, `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn fb_segment_create(
    name: *const c_char,
    spec: *const fb_spec,
    out: *mut *mut fb_segment,
) -> fb_status {
    guard(|| {
        // SAFETY: the caller passes a string or NULL (checked).
        let name = unsafe { string(name, "name") }?;
        // SAFETY: the caller passes an fb_spec or NULL (checked).
        let spec = unsafe { spec.as_ref() }.ok_or_else(|| Failure::arg("spec is NULL"))?;
        let mode = if spec.mode == 0 { 0o600 } else { spec.mode };
        let opts = CreateOptions { mode, ..CreateOptions::default() };
        let shared = SharedSegment::create(name, &spec_from_c(spec)?, opts)?;
        let seg = Box::into_raw(Box::new(fb_segment { shared: Arc::new(shared) }));
        // SAFETY: the caller passes a writable pointer or NULL (checked; on NULL the handle
        // is reclaimed below).
        if let Err(e) = unsafe { put(out, seg, "out") } {
            // SAFETY: `seg` came from Box::into_raw just above and was not handed out.
            drop(unsafe { Box::from_raw(seg) });
            return Err(e);
        }
        Ok(FB_OK)
    })
}

/// Opens the existing segment `name`, validating its header and size (a truncated, garbage or
/// foreign object is `FB_ERR_BAD_SEGMENT`; a missing one `FB_ERR_NOT_FOUND`).
///
/// # Safety
/// `name` is a NUL-terminated string, `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn fb_segment_open(name: *const c_char, out: *mut *mut fb_segment) -> fb_status {
    guard(|| {
        // SAFETY: the caller passes a string or NULL (checked).
        let name = unsafe { string(name, "name") }?;
        if out.is_null() {
            return Err(Failure::arg("out is NULL"));
        }
        let shared = SharedSegment::open(name)?;
        let seg = Box::into_raw(Box::new(fb_segment { shared: Arc::new(shared) }));
        // SAFETY: `out` is non-null (checked) and writable per the contract.
        unsafe { out.write(seg) };
        Ok(FB_OK)
    })
}

/// Releases this handle's reference to the segment. Producers and consumers made from it keep
/// it mapped until they are closed. NULL is ignored.
///
/// # Safety
/// `seg` is NULL or a handle from `fb_segment_create`/`fb_segment_open` not closed before.
#[no_mangle]
pub unsafe extern "C" fn fb_segment_close(seg: *mut fb_segment) {
    // SAFETY: the caller's contract is `free_handle`'s.
    unsafe { free_handle(seg) }
}

/// Fills `out` with the segment's geometry and its counters now.
///
/// # Safety
/// `seg` is a live segment handle, `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn fb_segment_get_info(seg: *const fb_segment, out: *mut fb_segment_info) -> fb_status {
    guard(|| {
        // SAFETY: a live handle or NULL (checked).
        let seg = unsafe { seg.as_ref() }.ok_or_else(|| Failure::arg("seg is NULL"))?;
        let s = seg.shared.segment();
        let layout = s.layout();
        let stats = s.stats();
        let info = fb_segment_info {
            width: layout.spec.geometry.width,
            height: layout.spec.geometry.height,
            pixel_format: layout.spec.geometry.format as u32,
            slots: layout.spec.slot_count,
            pattern: layout.spec.pattern as u32,
            policy: layout.spec.policy as u32,
            max_consumers: layout.spec.max_consumers,
            frame_size: layout.planes.frame_size,
            slot_capacity: layout.spec.slot_payload_size,
            total_size: layout.total_size,
            published: stats.write_pos,
            next_seq: stats.next_seq,
            dropped_oldest: stats.dropped_oldest,
            dropped_newest: stats.dropped_newest,
            delivered: stats.delivered,
            epoch: stats.epoch,
        };
        // SAFETY: writable or NULL (checked) per the contract.
        unsafe { put(out, info, "out") }?;
        Ok(FB_OK)
    })
}

/// Attaches as the segment's only producer (taking over from a dead one; consumers see the
/// epoch move). `FB_ERR_BUSY` while another live producer is attached.
///
/// # Safety
/// `seg` is a live segment handle, `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn fb_producer_attach(seg: *const fb_segment, out: *mut *mut fb_producer) -> fb_status {
    guard(|| {
        // SAFETY: a live handle or NULL (checked); shared, never `&mut`: other threads may use
        // the same segment handle at the same time.
        let seg = unsafe { seg.as_ref() }.ok_or_else(|| Failure::arg("seg is NULL"))?;
        if out.is_null() {
            return Err(Failure::arg("out is NULL"));
        }
        let inner = OwnedProducer::attach(seg.shared.clone())?;
        // SAFETY: non-null (checked), writable per the contract.
        unsafe { out.write(Box::into_raw(Box::new(fb_producer { inner }))) };
        Ok(FB_OK)
    })
}

/// Detaches the producer (a slot being written is given back unpublished) and frees the
/// handle. NULL is ignored.
///
/// # Safety
/// `p` is NULL or a producer handle not closed before.
#[no_mangle]
pub unsafe extern "C" fn fb_producer_close(p: *mut fb_producer) {
    // SAFETY: the caller's contract is `free_handle`'s.
    unsafe { free_handle(p) }
}

/// Acquires the slot for the next frame and fills `out` (`out->data` is writable for
/// `out->capacity` bytes). Under Block it waits up to `timeout_ms` for a consumer to free a
/// slot (`FB_TIMED_OUT`); under the drop policies it never waits, and `FB_DROPPED` means this
/// frame was dropped and counted (`out->seq` names it; no slot is held). Then write the frame
/// and call `fb_producer_publish` (or `fb_producer_abandon`).
///
/// # Safety
/// `p` is a live producer handle, `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn fb_producer_begin(p: *mut fb_producer, timeout_ms: u32, out: *mut fb_slot) -> fb_status {
    guard(|| {
        // SAFETY: a live handle or NULL (checked).
        let p = unsafe { handle(p, "producer") }?;
        if out.is_null() {
            return Err(Failure::arg("out is NULL"));
        }
        let (status, slot) = match p.inner.begin(ms(timeout_ms)) {
            Ok(v) => (
                FB_OK,
                fb_slot {
                    data: v.ptr,
                    capacity: v.capacity,
                    seq: v.seq,
                    slot: v.slot,
                    dropped: u32::from(v.dropped_seq.is_some()),
                    dropped_seq: v.dropped_seq.unwrap_or(0),
                },
            ),
            Err(ProduceError::Begin(BeginError::DroppedNewest { seq })) => (
                FB_DROPPED,
                fb_slot { data: std::ptr::null_mut(), capacity: 0, seq, slot: 0, dropped: 0, dropped_seq: 0 },
            ),
            Err(e) => return Err(e.into()),
        };
        // SAFETY: non-null (checked), writable per the contract.
        unsafe { out.write(slot) };
        Ok(status)
    })
}

/// Publishes the slot from `fb_producer_begin` with `meta` (NULL: a whole frame of the
/// segment's geometry) and wakes sleeping consumers. `*seq_out` (if not NULL) receives the
/// frame's sequence number. `meta->payload_len` larger than the slot is refused.
///
/// # Safety
/// `p` is a live producer handle; `meta` is NULL or an `fb_frame_meta`; `seq_out` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn fb_producer_publish(
    p: *mut fb_producer,
    meta: *const fb_frame_meta,
    seq_out: *mut u64,
) -> fb_status {
    guard(|| {
        // SAFETY: a live handle or NULL (checked).
        let p = unsafe { handle(p, "producer") }?;
        let slot = p.inner.slot().ok_or(Failure::from(ProduceError::NoSlot))?;
        // SAFETY: NULL or an fb_frame_meta per the contract.
        let meta = match unsafe { meta.as_ref() } {
            Some(m) => meta_from_c(m),
            None => default_meta(p.inner.shared()),
        };
        if meta.payload_len > slot.capacity {
            return Err(Failure::arg(format!(
                "meta.payload_len {} exceeds the slot capacity {}; the slot stays yours: fix the length or abandon it",
                meta.payload_len, slot.capacity
            )));
        }
        let published = p.inner.publish(meta)?;
        if !seq_out.is_null() {
            // SAFETY: non-null and writable per the contract.
            unsafe { seq_out.write(published.seq) };
        }
        Ok(FB_OK)
    })
}

/// Gives the slot from `fb_producer_begin` back unpublished (no sequence number is used).
/// `FB_ERR_INVALID_ARGUMENT` when no slot is being written.
///
/// # Safety
/// `p` is a live producer handle.
#[no_mangle]
pub unsafe extern "C" fn fb_producer_abandon(p: *mut fb_producer) -> fb_status {
    guard(|| {
        // SAFETY: a live handle or NULL (checked).
        let p = unsafe { handle(p, "producer") }?;
        if p.inner.abandon() {
            Ok(FB_OK)
        } else {
            Err(ProduceError::NoSlot.into())
        }
    })
}

/// Copies `len` bytes from `data` into the next slot and publishes it: the one-call form for a
/// callback that already holds a filled buffer (a GStreamer appsink). Waits under Block as
/// `fb_producer_begin` does; `FB_DROPPED` when the policy dropped this frame (`*seq_out` names
/// it). `meta` NULL: a whole frame of the segment's geometry with `payload_len = len`;
/// `meta->payload_len` 0 also means `len`, and more than `len` is refused.
///
/// # Safety
/// `p` is a live producer handle; `data` is readable for `len` bytes; `meta` is NULL or an
/// `fb_frame_meta`; `seq_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn fb_producer_write(
    p: *mut fb_producer,
    data: *const u8,
    len: usize,
    meta: *const fb_frame_meta,
    timeout_ms: u32,
    seq_out: *mut u64,
) -> fb_status {
    guard(|| {
        // SAFETY: a live handle or NULL (checked).
        let p = unsafe { handle(p, "producer") }?;
        if data.is_null() && len != 0 {
            return Err(Failure::arg("data is NULL"));
        }
        // SAFETY: NULL or an fb_frame_meta per the contract.
        let mut meta = match unsafe { meta.as_ref() } {
            Some(m) => meta_from_c(m),
            None => FrameMeta { payload_len: len as u64, ..default_meta(p.inner.shared()) },
        };
        if meta.payload_len == 0 {
            meta.payload_len = len as u64;
        }
        let capacity = p.inner.shared().segment().layout().spec.slot_payload_size;
        if len as u64 > capacity {
            return Err(Failure::arg(format!("{len} bytes do not fit a slot of {capacity} bytes")));
        }
        if meta.payload_len > len as u64 {
            return Err(Failure::arg(format!(
                "meta.payload_len {} is more than the {len} bytes given: the rest of the slot would be stale; pass payload_len <= len (0 means len)",
                meta.payload_len
            )));
        }
        let slot = match p.inner.begin(ms(timeout_ms)) {
            Ok(s) => s,
            Err(ProduceError::Begin(BeginError::DroppedNewest { seq })) => {
                if !seq_out.is_null() {
                    // SAFETY: non-null and writable per the contract.
                    unsafe { seq_out.write(seq) };
                }
                return Ok(FB_DROPPED);
            }
            Err(e) => return Err(e.into()),
        };
        if len != 0 {
            // SAFETY: `data` is readable for `len` bytes (contract); the slot is ours and
            // `len <= capacity` (checked); the two cannot overlap unless the caller passes a
            // pointer into this very slot, which it does not have yet.
            unsafe { std::ptr::copy_nonoverlapping(data, slot.ptr, len) };
        }
        let published = p.inner.publish(meta)?;
        if !seq_out.is_null() {
            // SAFETY: non-null and writable per the contract.
            unsafe { seq_out.write(published.seq) };
        }
        Ok(FB_OK)
    })
}

/// Registers a consumer of `kind` (`FB_KIND_*`): workers need a work-queue segment,
/// subscribers a broadcast one, latest readers fit either. Dead consumers are reaped when the
/// table is full.
///
/// # Safety
/// `seg` is a live segment handle, `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn fb_consumer_register(
    seg: *const fb_segment,
    kind: u32,
    out: *mut *mut fb_consumer,
) -> fb_status {
    guard(|| {
        // SAFETY: a live handle or NULL (checked); shared, never `&mut`: other threads may use
        // the same segment handle at the same time.
        let seg = unsafe { seg.as_ref() }.ok_or_else(|| Failure::arg("seg is NULL"))?;
        if out.is_null() {
            return Err(Failure::arg("out is NULL"));
        }
        let kind = ConsumerKind::from_u32(kind)
            .ok_or_else(|| Failure::arg(format!("unknown consumer kind {kind} (use FB_KIND_*)")))?;
        let inner = OwnedConsumer::register(seg.shared.clone(), kind)?;
        // SAFETY: non-null (checked), writable per the contract.
        unsafe { out.write(Box::into_raw(Box::new(fb_consumer { inner }))) };
        Ok(FB_OK)
    })
}

/// Releases every frame the consumer still holds, leaves the consumer table and frees the
/// handle. NULL is ignored.
///
/// # Safety
/// `c` is NULL or a consumer handle not closed before; no `frame.data` of it is used after.
#[no_mangle]
pub unsafe extern "C" fn fb_consumer_close(c: *mut fb_consumer) {
    // SAFETY: the caller's contract is `free_handle`'s.
    unsafe { free_handle(c) }
}

fn frame_to_c(f: &HeldFrame) -> fb_frame {
    fb_frame {
        data: f.ptr,
        capacity: f.capacity,
        seq: f.seq,
        epoch: f.epoch,
        meta: meta_to_c(&f.meta),
        slot: f.slot,
        gen: f.gen,
    }
}

/// Claims the next frame, sleeping up to `timeout_ms` (0: do not sleep) until one arrives;
/// `FB_TIMED_OUT` when none did. The frame stays yours, unchanged, until
/// `fb_consumer_release`; hold as many as you need (each keeps one slot from the producer).
///
/// # Safety
/// `c` is a live consumer handle, `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn fb_consumer_claim(c: *mut fb_consumer, timeout_ms: u32, out: *mut fb_frame) -> fb_status {
    guard(|| {
        // SAFETY: a live handle or NULL (checked).
        let c = unsafe { handle(c, "consumer") }?;
        if out.is_null() {
            return Err(Failure::arg("out is NULL"));
        }
        match c.inner.claim(ms(timeout_ms)) {
            Ok(f) => {
                // SAFETY: non-null (checked), writable per the contract.
                unsafe { out.write(frame_to_c(&f)) };
                Ok(FB_OK)
            }
            Err(WaitError::TimedOut) => Ok(FB_TIMED_OUT),
            Err(WaitError::Claim(e)) => Err(e.into()),
        }
    })
}

/// Gives a claimed frame back (its `data` must not be used afterwards) and wakes a producer
/// waiting for space. `FB_ERR_NOT_HELD` for a frame this consumer does not hold.
///
/// # Safety
/// `c` is a live consumer handle; `frame` points to an `fb_frame`.
#[no_mangle]
pub unsafe extern "C" fn fb_consumer_release(c: *mut fb_consumer, frame: *const fb_frame) -> fb_status {
    guard(|| {
        // SAFETY: a live handle or NULL (checked).
        let c = unsafe { handle(c, "consumer") }?;
        // SAFETY: NULL or an fb_frame per the contract.
        let frame = unsafe { frame.as_ref() }.ok_or_else(|| Failure::arg("frame is NULL"))?;
        c.inner.release(frame.slot, frame.gen)?;
        Ok(FB_OK)
    })
}

/// Frames this consumer has been given and frames it skipped (a subscriber or latest reader
/// that fell behind); either pointer may be NULL.
///
/// # Safety
/// `c` is a live consumer handle; the outputs are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn fb_consumer_counts(
    c: *const fb_consumer,
    delivered: *mut u64,
    skipped: *mut u64,
) -> fb_status {
    guard(|| {
        // SAFETY: a live handle or NULL (checked).
        let c = unsafe { c.as_ref() }.ok_or_else(|| Failure::arg("consumer is NULL"))?;
        let (d, s) = c.inner.counts();
        if !delivered.is_null() {
            // SAFETY: non-null and writable per the contract.
            unsafe { delivered.write(d) };
        }
        if !skipped.is_null() {
            // SAFETY: non-null and writable per the contract.
            unsafe { skipped.write(s) };
        }
        Ok(FB_OK)
    })
}
