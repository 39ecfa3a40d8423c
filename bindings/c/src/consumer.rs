//! Consumers: register as a worker, subscriber or latest reader, claim, release, count.

use super::*;

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

pub(crate) fn frame_to_c(f: &HeldFrame) -> fb_frame {
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
/// `FB_TIMED_OUT` when none did; `FB_END` once the producer finished the stream
/// (`fb_producer_finish`) and every frame was given out. The frame stays yours, unchanged, until
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
            Err(WaitError::Ended) => Ok(FB_END),
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
