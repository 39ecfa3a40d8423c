//! The producer role: decodes a recorded video straight into the segment's slots, paced at the
//! video's frame rate (a camera), and tells the collector about every frame it published or
//! dropped.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use framebus_platform::core::segment::{BeginError, FrameMeta, WriteSlot};
use framebus_platform::core::{FrameGeometry, OverflowPolicy, Pattern, PixelFormat, Producer, Segment, SegmentSpec};
use framebus_platform::{now_ns, wait, Access, CreateOptions, SharedSegment};
use serde::{Deserialize, Serialize};

use super::wire::{checksum, DropCause, Event, RECORD_BYTES};
use super::{peak_rss_bytes, Res};
use crate::video::Source;

/// What the producer is asked to do.
#[derive(Clone, Debug)]
pub struct ProducerArgs {
    /// frames segment
    pub segment: String,
    /// events segment (to the collector); None: a producer on its own, telling nobody
    pub events: Option<String>,
    /// create the frames segment for the video (instead of opening it): None opens
    pub create: Option<CreateArgs>,
    /// video file
    pub video: PathBuf,
    /// frames per second (None: the file's)
    pub fps: Option<f64>,
    /// frames to produce (the clip loops); None: until Ctrl-C
    pub frames: Option<u64>,
    /// do not pace: produce as fast as decoding allows
    pub max_speed: bool,
}

/// How a producer on its own creates its segment (`framebus producer --create`).
#[derive(Clone, Copy, Debug)]
pub struct CreateArgs {
    /// pixel format of the slots
    pub format: PixelFormat,
    /// slot count
    pub slots: u32,
    /// overflow policy
    pub policy: OverflowPolicy,
    /// delivery pattern
    pub pattern: Pattern,
}

/// Parses `framebus producer`'s creation flags (None without `--create`).
///
/// # Errors
/// An unknown format, with the accepted values.
pub fn create_args(
    create: bool,
    format: &str,
    slots: u32,
    policy: super::run::PolicyArg,
    broadcast: bool,
) -> Res<Option<CreateArgs>> {
    if !create {
        return Ok(None);
    }
    let format = match format {
        "bgr24" => PixelFormat::Bgr24,
        "rgb24" => PixelFormat::Rgb24,
        "gray8" => PixelFormat::Gray8,
        "nv12" => PixelFormat::Nv12,
        "i420" => PixelFormat::I420,
        f => return Err(format!("unknown --format {f:?}: use bgr24, rgb24, gray8, nv12 or i420").into()),
    };
    let policy = policy.into();
    let pattern = if broadcast { Pattern::Broadcast } else { Pattern::WorkQueue };
    Ok(Some(CreateArgs { format, slots, policy, pattern }))
}

/// What the producer reports at exit.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProducerReport {
    /// frames offered (sequence numbers issued)
    pub frames: u64,
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

fn send(events: &mut Option<(Producer<'_>, Segment<'_>)>, e: Event) -> Res<()> {
    let Some((events, seg)) = events.as_mut() else { return Ok(()) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !events.has_space() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("the collector stopped reading events for 10 s (is it alive?)".into());
        }
        wait::wait_for_space(events, left)
            .map_err(|_| "the collector stopped reading events for 10 s (is it alive?)".to_string())?;
    }
    // Only this process produces events, so the free slot seen above is still free.
    let mut slot = events.begin().map_err(|e| format!("events segment: {e}"))?;
    let mut b = [0u8; RECORD_BYTES as usize];
    e.encode(&mut b);
    slot.write(0, &b);
    wait::publish(slot, FrameMeta { payload_len: u64::from(RECORD_BYTES), ..FrameMeta::default() }, &*seg);
    Ok(())
}

/// Decodes the next video frame into `out`, looping the clip at its end.
fn decode(src: &mut Source, out: &mut [u8], fmt: framebus_platform::core::PixelFormat) -> Res<()> {
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
/// Segment, video and event-channel failures, each with what to do.
pub fn run(a: &ProducerArgs) -> Res<ProducerReport> {
    let mut src = Source::open(&a.video)?;
    let info = src.info();
    let frames_seg = match a.create {
        None => super::open_segment(&a.segment)?,
        Some(c) => {
            let spec = SegmentSpec::new(FrameGeometry::new(info.width, info.height, c.format), c.slots)
                .with_policy(c.policy)
                .with_pattern(c.pattern);
            SharedSegment::create(&a.segment, &spec, CreateOptions::default())?
        }
    };
    let events_seg = a.events.as_deref().map(SharedSegment::open).transpose()?;
    let seg = frames_seg.segment();
    let mut p = frames_seg.attach_producer()?;
    let mut ev = match &events_seg {
        Some(s) => Some((s.attach_producer()?, s.segment())),
        None => None,
    };
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
    if a.create.is_some() {
        let s = stop.clone();
        let _ = ctrlc::set_handler(move || s.store(true, std::sync::atomic::Ordering::SeqCst));
    }
    let frame_bytes = g.planes().map_err(|e| e.to_string())?.frame_size as usize;
    let fps = a.fps.unwrap_or(info.fps);
    let period = Duration::from_secs_f64(1.0 / fps);
    let mut scratch = Vec::new();
    let mut r = ProducerReport { fps, ..ProducerReport::default() };
    let (mut decode_total, start, start_ns) = (Duration::ZERO, Instant::now(), now_ns());
    println!("ready");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    for i in 0..a.frames.unwrap_or(u64::MAX) {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let due = start + period.mul_f64(i as f64);
        let now = Instant::now();
        if !a.max_speed && due > now {
            std::thread::sleep(due - now);
        }
        let capture_ns = if a.max_speed { now_ns() } else { start_ns + (due - start).as_nanos() as u64 };
        if !a.max_speed {
            r.behind_ms_max = r.behind_ms_max.max(Instant::now().saturating_duration_since(due).as_secs_f64() * 1e3);
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
                Err(BeginError::DroppedNewest { seq }) => {
                    send(&mut ev, Event::Dropped { seq, capture_ns, cause: DropCause::Newest })?;
                    r.dropped_newest += 1;
                    None
                }
                Err(e) => return Err(format!("segment {}: {e}", a.segment).into()),
            };
        };
        let waited = blocked_at.elapsed();
        if waited > period / 2 {
            r.late += 1;
            r.blocked_ms += waited.as_secs_f64() * 1e3;
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
                if let Some(seq) = slot.dropped_seq() {
                    send(&mut ev, Event::Dropped { seq, capture_ns: 0, cause: DropCause::Oldest })?;
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
                let publish_ns = now_ns();
                let published = wait::publish(slot, meta, &seg);
                r.published += 1;
                send(
                    &mut ev,
                    Event::Published { seq: published.seq, capture_ns, publish_ns, decode_ns, checksum: sum },
                )?;
            }
        }
        r.frames += 1;
    }
    send(&mut ev, Event::End { next_seq: p.segment().stats().next_seq })?;
    r.decode_ms_mean = decode_total.as_secs_f64() * 1e3 / r.frames.max(1) as f64;
    r.wall_s = start.elapsed().as_secs_f64();
    r.peak_rss_bytes = peak_rss_bytes();
    Ok(r)
}
