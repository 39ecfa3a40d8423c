//! Segments: the default spec, create, open, close, and what a segment says about itself.

use super::*;

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
        result_cells: 0,
        result_max: 0,
    }
}

pub(crate) fn spec_from_c(s: &fb_spec) -> Result<SegmentSpec, Failure> {
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
    if s.result_cells != 0 || s.result_max != 0 {
        spec = spec.with_results(s.result_cells, s.result_max);
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
