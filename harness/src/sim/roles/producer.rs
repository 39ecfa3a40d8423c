//! The producer role: decodes a recorded video straight into the segment's slots, paced at the
//! video's frame rate (a camera), and ends the stream when done. A producer attaching to a
//! segment whose producer died resumes at the next sequence number, at the same place of the
//! clip and on the same schedule (`--start-ns`), so a restart loses only the frame being
//! written.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use framebus_platform::core::segment::{BeginError, FrameMeta, WriteSlot};
use framebus_platform::core::{FrameGeometry, OverflowPolicy, Pattern, PixelFormat, SegmentSpec};
use framebus_platform::{now_ns, wait, Access, CreateOptions, SharedSegment};
use serde::{Deserialize, Serialize};

use crate::sim::wire::{checksum, Sidecar};
use crate::sim::{open_segment, peak_rss_bytes, Res};
use crate::video;
use crate::vocab;

/// Decode a video into a segment's slots at its frame rate: the producer `simulate` starts, and
/// a camera stand-in on its own (`--create`) for your own consumers, e.g. Python:
/// `framebus producer --video clip.mp4 --segment cam0 --create` then `framebus.open("cam0")`.
#[derive(Clone, Debug, PartialEq, clap::Args, Serialize)]
pub struct Args {
    /// Frames segment (opened; with --create, created for the video's size and removed at exit).
    #[arg(long)]
    pub segment: String,
    /// Create the segment instead of opening an existing one.
    #[arg(long)]
    pub create: bool,
    /// With --create: pixel format of the slots [default: bgr24].
    #[arg(long, value_parser = vocab::parser::<PixelFormat>(), requires = "create")]
    #[serde(serialize_with = "vocab::ser_opt")]
    pub format: Option<PixelFormat>,
    /// With --create: number of slots [default: 8].
    #[arg(long, requires = "create")]
    pub slots: Option<u32>,
    /// With --create: overflow policy [default: drop-oldest].
    #[arg(long, value_parser = vocab::parser::<OverflowPolicy>(), requires = "create")]
    #[serde(serialize_with = "vocab::ser_opt")]
    pub policy: Option<OverflowPolicy>,
    /// With --create: broadcast to subscribers instead of a work queue for workers.
    #[arg(long, requires = "create")]
    pub broadcast: bool,
    /// Origin of the pacing schedule on the platform's monotonic clock (ns): frame `i` is due
    /// at `start_ns + i / fps`. A restarted producer keeps its predecessor's schedule this way
    /// [default: when this producer starts].
    #[arg(long)]
    pub start_ns: Option<u64>,
    /// Video file (MP4/H.264 or Y4M).
    #[arg(long)]
    pub video: PathBuf,
    /// Frames per second [default: the file's].
    #[arg(long)]
    pub fps: Option<f64>,
    /// Frames to produce (the clip loops) [default: until Ctrl-C].
    #[arg(long)]
    pub frames: Option<u64>,
    /// Do not pace: produce as fast as decoding allows.
    #[arg(long)]
    pub max_speed: bool,
    /// Write the report (JSON) here instead of stdout.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

impl Args {
    /// The spec of the segment `--create` makes for frames of `width` × `height`.
    fn create_spec(&self, width: u32, height: u32) -> SegmentSpec {
        let format = self.format.unwrap_or(PixelFormat::Bgr24);
        SegmentSpec::new(FrameGeometry::new(width, height, format), self.slots.unwrap_or(8))
            .with_policy(self.policy.unwrap_or(OverflowPolicy::DropOldest))
            .with_pattern(if self.broadcast { Pattern::Broadcast } else { Pattern::WorkQueue })
    }
}

/// What the producer reports at exit (this process's part of the stream; a restarted producer
/// reports only its own frames).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProducerReport {
    /// frames offered (sequence numbers issued)
    pub frames: u64,
    /// the first sequence number this producer issued (above 0: it resumed a dead one's stream)
    pub first_seq: u64,
    /// frames published
    pub published: u64,
    /// frames dropped by `drop-oldest` (their slots reused)
    pub dropped_oldest: u64,
    /// frames dropped by `drop-newest` (never published)
    pub dropped_newest: u64,
    /// frames that could not be published on time (Block: waiting for a slot)
    pub late: u64,
    /// worst lag of a frame's decoding start behind its due time, ms (decoding slower than the
    /// frame rate, or waiting under Block)
    pub behind_ms_max: f64,
    /// time spent waiting for a free slot (Block), ms
    pub blocked_ms: f64,
    /// decode + colour conversion per frame, ms (mean)
    pub decode_ms_mean: f64,
    /// wall time, s
    pub wall_s: f64,
    /// frame rate used
    pub fps: f64,
    /// peak resident memory of this process
    pub peak_rss_bytes: u64,
}

/// Decodes the next video frame into `out`, looping the clip at its end.
fn decode(src: &mut video::Source, out: &mut [u8], fmt: PixelFormat) -> Res<()> {
    if !src.next_frame(out, fmt)? {
        src.rewind()?;
        if !src.next_frame(out, fmt)? {
            return Err("the video has no decodable frame".into());
        }
    }
    Ok(())
}

/// Runs the producer until `frames` were offered; returns its report.
///
/// # Errors
/// Segment and video failures, each with what to do.
pub fn run(a: &Args) -> Res<ProducerReport> {
    let mut src = video::open(&a.video)?;
    let info = src.info();
    let frames_seg = if a.create {
        SharedSegment::create(&a.segment, &a.create_spec(info.width, info.height), CreateOptions::default())?
    } else {
        open_segment(&a.segment)?
    };
    let seg = frames_seg.segment();
    let mut p = frames_seg.attach_producer()?;
    let spec = seg.layout().spec;
    let g = spec.geometry;
    if (g.width, g.height) != (info.width, info.height) {
        return Err(format!(
            "segment {} is {}x{} but {} is {}x{}: create the segment with the video's size",
            a.segment,
            g.width,
            g.height,
            a.video.display(),
            info.width,
            info.height
        )
        .into());
    }
    // On its own (no orchestrator), Ctrl-C ends the loop so that the segment it created is
    // removed on the way out.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if a.create {
        let s = stop.clone();
        let _ = ctrlc::set_handler(move || s.store(true, std::sync::atomic::Ordering::SeqCst));
    }
    let frame_bytes = g.planes().map_err(|e| e.to_string())?.frame_size as usize;
    let fps = a.fps.unwrap_or(info.fps);
    let period = Duration::from_secs_f64(1.0 / fps);
    let mut scratch = Vec::new();
    // Resume where a dead predecessor stopped: the sequence number is the frame's index.
    let first = p.next_seq();
    let mut r = ProducerReport { fps, first_seq: first, ..ProducerReport::default() };
    if first > 0 {
        let skip = if info.frames > 0 { first % u64::from(info.frames) } else { first };
        eprintln!(
            "framebus producer: resuming the stream of {} at seq {first} (frame {skip} of {})",
            a.segment,
            a.video.display()
        );
        scratch.resize(frame_bytes, 0);
        for _ in 0..skip {
            decode(&mut src, &mut scratch, g.format)?;
        }
    }
    let (mut decode_total, start) = (Duration::ZERO, Instant::now());
    let start_ns = a.start_ns.unwrap_or_else(now_ns);
    super::ready();
    for i in first..a.frames.unwrap_or(u64::MAX) {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let due_ns = start_ns.saturating_add((i as f64 * 1e9 / fps) as u64);
        let now = now_ns();
        if !a.max_speed && due_ns > now {
            std::thread::sleep(Duration::from_nanos(due_ns - now));
        }
        let capture_ns = if a.max_speed { now_ns() } else { due_ns };
        if !a.max_speed {
            r.behind_ms_max = r.behind_ms_max.max(now_ns().saturating_sub(due_ns) as f64 / 1e6);
        }
        // A slot to decode into: wait for one under Block, count the drop otherwise.
        let blocked_at = Instant::now();
        let slot: Option<WriteSlot<'_, '_>> = loop {
            if spec.policy == OverflowPolicy::Block && !p.has_space() {
                wait::wait_for_space(&p, Duration::from_secs(30)).map_err(|e| {
                    format!(
                        "no slot became free in 30 s ({e}): are the workers alive? (`framebus inspect {}`)",
                        a.segment
                    )
                })?;
                continue;
            }
            break match p.begin() {
                Ok(slot) => Some(slot),
                Err(BeginError::DroppedNewest { .. }) => {
                    r.dropped_newest += 1;
                    None
                }
                Err(e) => return Err(format!("segment {}: {e}", a.segment).into()),
            };
        };
        // Every wait counts towards blocked_ms (short ones add up under a slow Block consumer);
        // a frame is late when its wait alone took more than half a frame period.
        let waited = blocked_at.elapsed();
        r.blocked_ms += waited.as_secs_f64() * 1e3;
        if waited > period / 2 {
            r.late += 1;
        }
        let t = Instant::now();
        match slot {
            None => {
                // The camera's frame is lost, but the decoder still has to get through it.
                scratch.resize(frame_bytes, 0);
                decode(&mut src, &mut scratch, g.format)?;
                decode_total += t.elapsed();
            }
            Some(mut slot) => {
                if slot.dropped_seq().is_some() {
                    r.dropped_oldest += 1;
                }
                assert!(slot.capacity() as usize >= frame_bytes, "layout gives every slot a whole frame");
                // SAFETY: the slot is WRITING and owned by this producer until publish; it holds
                // `capacity() >= frame_bytes` bytes (asserted) inside the live mapping, and no
                // consumer reads a WRITING slot, so this is the only reference to those bytes.
                let bytes = unsafe { std::slice::from_raw_parts_mut(slot.as_mut_ptr(), frame_bytes) };
                // A dma-buf backing brackets the CPU's writes with sync ioctls.
                frames_seg.cpu_access(Access::Write, || decode(&mut src, bytes, g.format))??;
                let sum = checksum(bytes);
                let decode_ns = t.elapsed().as_nanos() as u64;
                decode_total += t.elapsed();
                let meta = FrameMeta {
                    capture_ns,
                    pts_ns: (i as f64 * 1e9 / fps) as u64,
                    width: g.width,
                    height: g.height,
                    pixel_format: g.format as u32,
                    flags: 0,
                    payload_len: frame_bytes as u64,
                    checksum: Some(sum),
                };
                // The sidecar after the frame (outside payload_len and the checksum), where the
                // slot has room for it (`simulate` makes it).
                if slot.capacity() as usize >= frame_bytes + 16 {
                    let mut b = [0u8; 16];
                    Sidecar { publish_ns: now_ns(), decode_ns }.encode(&mut b);
                    slot.write(frame_bytes as u64, &b);
                }
                wait::publish(slot, meta, &seg);
                r.published += 1;
            }
        }
        r.frames += 1;
    }
    // The explicit end: workers' claims and the ordered reader see it at once.
    p.finish();
    r.decode_ms_mean = decode_total.as_secs_f64() * 1e3 / r.frames.max(1) as f64;
    r.wall_s = start.elapsed().as_secs_f64();
    r.peak_rss_bytes = peak_rss_bytes();
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orchestrators_command_line_parses_back_to_the_same_args() {
        let mut a = Args {
            segment: "unix:/tmp/x.sock".into(),
            create: false,
            format: None,
            slots: None,
            policy: None,
            broadcast: false,
            start_ns: Some(123_456_789),
            video: "/media/clip.mp4".into(),
            fps: Some(29.97),
            frames: Some(600),
            max_speed: true,
            report: Some("/tmp/producer.json".into()),
        };
        super::super::round_trip(&a);
        a = Args {
            create: true,
            format: Some(PixelFormat::Nv12),
            slots: Some(5),
            policy: Some(OverflowPolicy::DropNewest),
            broadcast: true,
            start_ns: None,
            fps: None,
            frames: None,
            max_speed: false,
            report: None,
            ..a
        };
        super::super::round_trip(&a);
    }
}
