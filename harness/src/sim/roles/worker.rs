//! The worker role: claims frames from the work queue and runs the accelerator on each slot in
//! place (the SNPE input user buffer is pointed at the slot), posts the outcome as the frame's
//! result (the ordered reader gets it in frame order) and releases the slot; it exits at the
//! stream's end.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use framebus_platform::core::{ConsumerKind, PixelFormat, PostError, Posted};
use framebus_platform::wait::WaitError;
use framebus_platform::{now_ns, wait, Access, SharedSegment};
use serde::{Deserialize, Serialize};

use crate::sim::accel::Accelerator;
use crate::sim::profile::Profile;
use crate::sim::wire::{Outcome, Sidecar, OUTCOME_BYTES};
use crate::sim::{open_segment, peak_rss_bytes, Res};

/// Role: claim frames and run the accelerator on each slot in place (started by `simulate`).
#[derive(Clone, Debug, PartialEq, clap::Args, Serialize)]
pub struct Args {
    /// Frames segment (a name, or `unix:PATH` to receive its descriptor).
    #[arg(long)]
    pub segment: String,
    /// Worker number (0-based).
    #[arg(long)]
    pub index: u32,
    /// Model container the stub SNPE runtime opens.
    #[arg(long)]
    pub dlc: PathBuf,
    /// Runtime profile (selects the SNPE runtime).
    #[arg(long, value_parser = Profile::parse)]
    #[serde(serialize_with = "Profile::ser_name")]
    pub profile: Profile,
    /// Worker-side work around each call (pre/post-processing), % of the call; modelled as time.
    #[arg(long, default_value_t = 0.0)]
    pub overhead: f64,
    /// Do not register the slots with the runtime by (fd, offset); only move the buffer address
    /// per frame (the path for runtimes or platforms without fd import).
    #[arg(long)]
    pub no_register: bool,
    /// Write the report (JSON) here instead of stdout.
    #[arg(long)]
    pub report: Option<PathBuf>,
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
    /// results posted after the reader had given their frame up (counted in the segment too)
    pub late_posts: u64,
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

/// Runs the worker until the stream ends (the producer finished and the queue is empty).
///
/// # Errors
/// Segment and accelerator failures, each with what to do.
pub fn run(a: &Args) -> Res<WorkerReport> {
    let frames_seg = open_segment(&a.segment)?;
    let seg = frames_seg.segment();
    if !seg.has_results() {
        return Err(format!("segment {} has no results area: create it with results", a.segment).into());
    }
    let g = seg.layout().spec.geometry;
    let channels = match g.format {
        PixelFormat::Bgr24 | PixelFormat::Rgb24 => 3,
        PixelFormat::Gray8 => 1,
        f => return Err(format!("the stub model takes packed BGR/RGB/GRAY frames, not {f:?}").into()),
    };
    let mut worker = frames_seg.register(ConsumerKind::Worker)?;
    let frame_bytes = g.planes().map_err(|e| e.to_string())?.frame_size;
    // The network is built over slot 0 and re-pointed at each claimed slot before every run.
    let slot0 = seg.region().base().as_ptr().wrapping_add(seg.layout().slot_offset(0) as usize);
    // SAFETY: slot 0 is inside the mapping, which outlives `accel` (dropped first, below);
    // the runtime reads only during `run`, and `run` is only called with a claimed slot.
    let mut accel =
        unsafe { Accelerator::new(&a.dlc, a.profile.runtime, g.height as usize, g.width as usize, channels, slot0) }?;
    let mut r = WorkerReport { index: a.index, ..WorkerReport::default() };
    // Registering by fd needs Linux; elsewhere the address path is the only one.
    if !a.no_register && cfg!(target_os = "linux") {
        register_slots(&frames_seg, &mut accel)?;
        r.registered = true;
    }
    let start = Instant::now();
    super::ready();
    loop {
        let claim_start_ns = now_ns();
        // A dead producer is not the end: the runtime restarts it, or ends the stream itself.
        let frame = match wait::claim(&mut worker, Duration::from_millis(100)) {
            Ok(f) => f,
            Err(WaitError::TimedOut) => continue,
            Err(WaitError::Ended) => break,
            Err(e) => return Err(format!("worker {}: {e}", a.index).into()),
        };
        let claim_ns = now_ns();
        // The producer's sidecar after the frame, when the slot has room for it.
        let mut side = [0u8; 16];
        let sidecar = if seg.layout().spec.slot_payload_size >= frame_bytes + 16 {
            worker.read(&frame, frame_bytes, &mut side)?;
            Sidecar::decode(&side).unwrap_or_default()
        } else {
            Sidecar::default()
        };
        let ptr = worker.payload_ptr(&frame)?;
        let t = Instant::now();
        // SAFETY: we hold `frame` (checked by `payload_ptr`), so the producer does not write the
        // slot until we release it, and the slot has a whole frame (`frame_bytes`) in the mapping.
        // A dma-buf backing brackets the runtime's CPU reads with sync ioctls.
        let result = frames_seg.cpu_access(Access::Read, || unsafe { accel.run(ptr) })??;
        let call = t.elapsed();
        if a.overhead > 0.0 {
            // The CPU work a real worker does around the call (resize, quantise, decode the
            // outputs), with the slot still held, as on the board.
            std::thread::sleep(call.mul_f64(a.overhead / 100.0));
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
            capture_ns: frame.meta.capture_ns,
            publish_ns: sidecar.publish_ns,
            redelivered: frame.redelivered,
        };
        let mut b = [0u8; OUTCOME_BYTES as usize];
        outcome.encode(&mut b);
        // Post before release: the result is the frame's, tagged with its (epoch, seq).
        match wait::post(&mut worker, &frame, &b, Duration::from_secs(5)) {
            Ok(Posted::Ready) => {}
            // Given up on by the reader (its deadline), or the reader a window behind: both
            // counted in the segment, the frame reported skipped; the worker goes on.
            Ok(Posted::Late) | Err(PostError::WindowFull) => r.late_posts += 1,
            Err(e) => return Err(format!("worker {}: posting the result of frame {}: {e}", a.index, frame.seq).into()),
        }
        wait::release(&mut worker, frame)?;
        r.frames += 1;
    }
    if let Some((reg, unreg)) = accel.run_counts() {
        (r.registered_runs, r.unregistered_runs, r.run_counts_known) = (reg, unreg, true);
    }
    drop(accel);
    r.wall_ms = start.elapsed().as_secs_f64() * 1e3;
    r.peak_rss_bytes = peak_rss_bytes();
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orchestrators_command_line_parses_back_to_the_same_args() {
        let mut a = Args {
            segment: "sim1".into(),
            index: 2,
            dlc: "/tmp/model.dlc".into(),
            profile: Profile::parse("custom:20,5,0.1").unwrap(),
            overhead: 15.0,
            no_register: false,
            report: Some("/tmp/worker-2.json".into()),
        };
        super::super::round_trip(&a);
        a = Args { profile: Profile::parse("dsp").unwrap(), overhead: 0.0, no_register: true, report: None, ..a };
        super::super::round_trip(&a);
    }
}
