//! Ordered results: a worker posts a result for a frame it holds; the one reader gets every
//! frame's result, or its skip with a cause, strictly in frame order, then `FB_END`.

use super::*;

/// Posts `len` bytes at `bytes` as the result of `frame`, which `c` holds (post, then release).
/// Waits up to `timeout_ms` while the reader is a whole results window behind. `FB_OK`;
/// `FB_LATE` when the frame was already given up on (counted, dropped); `FB_TIMED_OUT` when the
/// window stayed full (the loss is counted); `FB_ERR_UNSUPPORTED` without a results area;
/// `FB_ERR_INVALID_ARGUMENT` for a result above the segment's maximum, or a second post.
///
/// # Safety
/// `c` is a live consumer handle; `frame` points to an `fb_frame` from `fb_consumer_claim`;
/// `bytes` is readable for `len` bytes (or NULL with `len` 0).
#[no_mangle]
pub unsafe extern "C" fn fb_consumer_post(
    c: *mut fb_consumer,
    frame: *const fb_frame,
    bytes: *const u8,
    len: usize,
    timeout_ms: u32,
) -> fb_status {
    guard(|| {
        // SAFETY: a live handle or NULL (checked).
        let c = unsafe { handle(c, "consumer") }?;
        // SAFETY: NULL or an fb_frame per the contract.
        let frame = unsafe { frame.as_ref() }.ok_or_else(|| Failure::arg("frame is NULL"))?;
        let bytes: &[u8] = if len == 0 {
            &[]
        } else if bytes.is_null() {
            return Err(Failure::arg("bytes is NULL"));
        } else {
            // SAFETY: readable for `len` bytes per the contract; caller memory, not the segment.
            unsafe { std::slice::from_raw_parts(bytes, len) }
        };
        match c.inner.post(frame.slot, frame.gen, bytes, ms(timeout_ms))? {
            framebus_core::Posted::Ready => Ok(FB_OK),
            framebus_core::Posted::Late => Ok(FB_LATE),
        }
    })
}

/// Attaches as the segment's ordered results reader (taking over from a dead one; it goes on
/// where that one stopped). `FB_ERR_BUSY` while a live reader is attached;
/// `FB_ERR_UNSUPPORTED` for a segment without a results area.
///
/// # Safety
/// `seg` is a live segment handle; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn fb_reader_open(seg: *const fb_segment, out: *mut *mut fb_reader) -> fb_status {
    guard(|| {
        // SAFETY: a live handle or NULL (checked); shared, never `&mut`.
        let seg = unsafe { seg.as_ref() }.ok_or_else(|| Failure::arg("seg is NULL"))?;
        if out.is_null() {
            return Err(Failure::arg("out is NULL"));
        }
        let inner = framebus_platform::OwnedReader::attach(seg.shared.clone()).map_err(|e| match e {
            framebus_core::AttachError::NoResults => Failure(FB_ERR_UNSUPPORTED, e.to_string()),
            e => Failure::from(e),
        })?;
        // SAFETY: non-null (checked), writable per the contract.
        unsafe { out.write(Box::into_raw(Box::new(fb_reader { inner }))) };
        Ok(FB_OK)
    })
}

/// Detaches and frees the reader. NULL is ignored.
///
/// # Safety
/// `r` is NULL or a live reader handle, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn fb_reader_close(r: *mut fb_reader) {
    // SAFETY: per the contract.
    unsafe { free_handle(r) }
}

/// The next frame in order, waiting up to `timeout_ms` for its fate: `FB_OK` with `*out` filled
/// (a result, its bytes copied into `buf`, or a skip with its cause); `FB_TIMED_OUT` while the
/// head frame has no fate yet (call again, or give up on it with `fb_reader_skip_head`);
/// `FB_END` after the last frame of a finished stream. `FB_ERR_INVALID_ARGUMENT` when `cap` is
/// smaller than the result (nothing is consumed: call again with a bigger buffer).
///
/// # Safety
/// `r` is a live reader handle; `buf` is writable for `cap` bytes; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn fb_reader_next(
    r: *mut fb_reader,
    buf: *mut u8,
    cap: usize,
    timeout_ms: u32,
    out: *mut fb_result,
) -> fb_status {
    guard(|| {
        // SAFETY: a live handle or NULL (checked).
        let r = unsafe { handle(r, "reader") }?;
        if out.is_null() || (buf.is_null() && cap > 0) {
            return Err(Failure::arg("buf or out is NULL"));
        }
        let dst: &mut [u8] = if cap == 0 {
            &mut []
        } else {
            // SAFETY: writable for `cap` bytes per the contract; caller memory, not the segment.
            unsafe { std::slice::from_raw_parts_mut(buf, cap) }
        };
        let (status, res) = match r.inner.next(dst, ms(timeout_ms))? {
            framebus_core::Next::Result { seq, epoch, len } => {
                (FB_OK, fb_result { seq, epoch, kind: FB_RESULT_READY, cause: 0, len })
            }
            framebus_core::Next::Skipped { seq, cause } => {
                (FB_OK, fb_result { seq, epoch: 0, kind: FB_RESULT_SKIPPED, cause: cause as u32, len: 0 })
            }
            framebus_core::Next::Pending { seq, .. } => {
                (FB_TIMED_OUT, fb_result { seq, kind: FB_RESULT_SKIPPED, ..fb_result::default() })
            }
            framebus_core::Next::End { seq } => {
                (FB_END, fb_result { seq, kind: FB_RESULT_SKIPPED, ..fb_result::default() })
            }
        };
        // SAFETY: non-null (checked), writable per the contract.
        unsafe { out.write(res) };
        Ok(status)
    })
}

/// Gives up on the head frame with `cause` (normally `FB_SKIP_DEADLINE`): `FB_OK` when it is now
/// skipped (the next `fb_reader_next` delivers the skip); `FB_ERR_BUSY` when it could not be (a
/// result is being written, or the frame already has its fate).
///
/// # Safety
/// `r` is a live reader handle.
#[no_mangle]
pub unsafe extern "C" fn fb_reader_skip_head(r: *mut fb_reader, cause: u32) -> fb_status {
    guard(|| {
        // SAFETY: a live handle or NULL (checked).
        let r = unsafe { handle(r, "reader") }?;
        let cause = SkipCause::from_u32(cause)
            .ok_or_else(|| Failure::arg(format!("unknown skip cause {cause} (use FB_SKIP_*)")))?;
        if r.inner.skip_head(cause) {
            Ok(FB_OK)
        } else {
            Err(Failure(FB_ERR_BUSY, "the head frame has a result being written, or already has its fate".into()))
        }
    })
}
