//! The worker role: claims frames from the work queue and runs the accelerator on each slot in
//! place (the SNPE input user buffer is pointed at the slot), then reports the outcome to the
//! collector and releases the slot.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use framebus_platform::core::segment::FrameMeta;
use framebus_platform::core::{ConsumerKind, PixelFormat};
use framebus_platform::wait::WaitError;
use framebus_platform::{is_alive, now_ns, wait, Access, SharedSegment};
use serde::{Deserialize, Serialize};

use super::accel::Accelerator;
use super::profile::Profile;
use super::wire::{Outcome, RECORD_BYTES};
use super::{peak_rss_bytes, Res};

/// What the worker is asked to do.
#[derive(Clone, Debug)]
pub struct WorkerArgs {
    /// frames segment
    pub segment: String,
    /// this worker's results segment (to the collector)
    pub results: String,
    /// worker number (0-based)
    pub index: u32,
    /// the model container the stub runtime opens
    pub dlc: PathBuf,
    /// runtime profile (for the SNPE runtime to ask for)
    pub profile: Profile,
    /// worker-side work around each call (pre/post-processing), % of the call; modelled as time
    pub overhead_pct: f64,
    /// register every slot with the runtime by (fd, offset) at start (Linux), as an
    /// accelerator imports a dma-buf; otherwise only the buffer address moves per frame
    pub register: bool,
}

/// What the worker reports at exit.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkerReport {
    /// worker number
    pub index: u32,
    /// frames run
    pub frames: u64,
    /// time inside the model call, ms
    pub busy_ms: f64,
    /// wall time from the first claim attempt to exit, ms
    pub wall_ms: f64,
    /// model calls whose checksum differed from the producer's (counted here too)
    pub integrity_failures: u64,
    /// peak resident memory of this process
    pub peak_rss_bytes: u64,
    /// every slot was registered with the runtime by (fd, offset)
    pub registered: bool,
    /// runs that read a registered slot through the runtime's own mapping of the segment's fd,
    /// each checked against the bytes at the slot's address (stub runtime; 0 with a real SDK)
    pub registered_runs: u64,
    /// runs on an address the runtime did not have registered (a real runtime copies those)
    pub unregistered_runs: u64,
    /// the runtime reported the two counts above (the stub does; a real SDK does not)
    pub run_counts_known: bool,
}

/// Registers every slot of the frames segment with the accelerator by the segment's fd and the
/// slot's offset, once; from then on a frame is only a buffer address switch.
#[cfg(target_os = "linux")]
fn register_slots(frames: &SharedSegment, accel: &mut Accelerator) -> Res<()> {
    use std::os::fd::AsRawFd;
    let seg = frames.segment();
    let layout = seg.layout();
    let offsets: Vec<u64> = (0..layout.spec.slot_count).map(|k| layout.slot_offset(k)).collect();
    accel.register(seg.region().base().as_ptr(), layout.total_size as usize, frames.fd().as_raw_fd(), &offsets)?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn register_slots(_: &SharedSegment, _: &mut Accelerator) -> Res<()> {
    Err("registering slots by fd needs Linux: run the worker with --no-register".into())
}

/// Runs the worker until the producer has gone and the queue is empty.
///
/// # Errors
/// Segment and accelerator failures, each with what to do.
pub fn run(a: &WorkerArgs) -> Res<WorkerReport> {
    let frames_seg = super::open_segment(&a.segment)?;
    let results_seg = SharedSegment::open(&a.results)?;
    let seg = frames_seg.segment();
    let rseg = results_seg.segment();
    let g = seg.layout().spec.geometry;
    let channels = match g.format {
        PixelFormat::Bgr24 | PixelFormat::Rgb24 => 3,
        PixelFormat::Gray8 => 1,
        f => return Err(format!("the stub model takes packed BGR/RGB/GRAY frames, not {f:?}").into()),
    };
    let mut worker = frames_seg.register(ConsumerKind::Worker)?;
    let mut out = results_seg.attach_producer()?;
    // The network is built over slot 0 and re-pointed at each claimed slot before every run.
    let slot0 = seg.region().base().as_ptr().wrapping_add(seg.layout().slot_offset(0) as usize);
    // SAFETY: slot 0 is inside the mapping, which outlives `accel` (dropped first, below);
    // the runtime reads only during `run`, and `run` is only called with a claimed slot.
    let mut accel =
        unsafe { Accelerator::new(&a.dlc, a.profile.runtime, g.height as usize, g.width as usize, channels, slot0) }?;
    let mut r = WorkerReport { index: a.index, ..WorkerReport::default() };
    if a.register {
        register_slots(&frames_seg, &mut accel)?;
        r.registered = true;
    }
    let start = Instant::now();
    let mut seen_producer = false;
    println!("ready");
    loop {
        let claim_start_ns = now_ns();
        let frame = match wait::claim(&mut worker, Duration::from_millis(100)) {
            Ok(f) => f,
            Err(WaitError::TimedOut) => {
                // Done when the producer has come, then detached (or died), and nothing is left.
                let owner = seg.producer_token();
                // The epoch counts attaches: a producer that came and went between two looks
                // still counts as seen.
                seen_producer |= owner != 0 || seg.stats().epoch > 0;
                let gone = owner == 0 || !is_alive(owner);
                if seen_producer && gone && !worker.might_have_frame() {
                    break;
                }
                if !seen_producer && start.elapsed() > Duration::from_secs(60) {
                    return Err(format!("worker {}: no producer attached to {} in 60 s", a.index, a.segment).into());
                }
                continue;
            }
            Err(e) => return Err(format!("worker {}: {e}", a.index).into()),
        };
        let claim_ns = now_ns();
        seen_producer = true;
        let ptr = worker.payload_ptr(&frame)?;
        let t = Instant::now();
        // SAFETY: we hold `frame` (checked by `payload_ptr`), so the producer does not write the
        // slot until we release it, and the slot has a whole frame (`frame_bytes`) in the mapping.
        // A dma-buf backing brackets the runtime's CPU reads with sync ioctls.
        let result = frames_seg.cpu_access(Access::Read, || unsafe { accel.run(ptr) })??;
        let call = t.elapsed();
        if a.overhead_pct > 0.0 {
            // The CPU work a real worker does around the call (resize, quantise, decode the
            // outputs), with the slot still held, as on the board.
            std::thread::sleep(call.mul_f64(a.overhead_pct / 100.0));
        }
        r.busy_ms += t.elapsed().as_secs_f64() * 1e3;
        let done_ns = now_ns();
        let sent = frame.meta.checksum.unwrap_or(0);
        if result.checksum != sent {
            r.integrity_failures += 1;
        }
        let outcome = Outcome {
            seq: frame.seq,
            worker: a.index,
            claim_start_ns,
            claim_ns,
            done_ns,
            sent_checksum: sent,
            seen_checksum: result.checksum,
            changed_cells: result.changed_cells,
            mean_luma: result.mean_luma,
            call_ns: call.as_nanos() as u64,
        };
        wait::release(&mut worker, frame)?;
        r.frames += 1;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !out.has_space() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("worker {}: the collector stopped reading results for 10 s", a.index).into());
            }
            wait::wait_for_space(&out, left)
                .map_err(|_| format!("worker {}: the collector stopped reading results for 10 s", a.index))?;
        }
        // Only this process produces on its results segment: the free slot is still free.
        let mut slot = out.begin().map_err(|e| format!("worker {} results: {e}", a.index))?;
        let mut b = [0u8; RECORD_BYTES as usize];
        outcome.encode(&mut b);
        slot.write(0, &b);
        wait::publish(slot, FrameMeta { payload_len: u64::from(RECORD_BYTES), ..FrameMeta::default() }, &rseg);
    }
    if let Some((reg, unreg)) = accel.run_counts() {
        (r.registered_runs, r.unregistered_runs, r.run_counts_known) = (reg, unreg, true);
    }
    drop(accel);
    r.wall_ms = start.elapsed().as_secs_f64() * 1e3;
    r.peak_rss_bytes = peak_rss_bytes();
    Ok(r)
}
