//! The producer: attach, begin a slot, publish it (or abandon it), and the one-call write.

use super::*;

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

/// Ends the stream after the last frame issued, then closes the producer: the results reader
/// gets `FB_END` once it has delivered every frame, and sleeping consumers wake. NULL is
/// ignored.
///
/// # Safety
/// `p` is NULL or a live producer handle, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn fb_producer_finish(p: *mut fb_producer) {
    let _ = guard(|| {
        if !p.is_null() {
            // SAFETY: per the contract, a live handle from Box::into_raw, freed once.
            let p = unsafe { Box::from_raw(p) };
            p.inner.finish();
        }
        Ok(FB_OK)
    });
}
