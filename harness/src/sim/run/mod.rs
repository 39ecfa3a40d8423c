//! `framebus simulate`: creates the segments, starts the producer and the workers as separate
//! processes of this binary, reads their results in frame order itself ([`collect`]), watches
//! them (progress, memory), restarts one that dies, and tears everything down — also on
//! Ctrl-C or when a process keeps failing — leaving no segment behind.
//!
//! The parts, each depending only on those before it:
//! [`plan`] (presets, options, validation) → [`supervise`] (processes, restarts, descriptor
//! passing, clean-up) → [`report`] (the report and its table) → [`plot`]; this module runs them
//! in order. Roles are started with their own `Args` ([`crate::sim::roles`]), turned into a
//! command line by [`to_argv`], so nothing here spells a role's flags.

pub mod plan;
pub mod plot;
pub mod report;
pub mod supervise;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use framebus_platform::core::{FrameGeometry, OverflowPolicy, Pattern, PixelFormat, SegmentSpec};
use framebus_platform::now_ns;

use super::channel::Channel;
use super::collect::{self, CollectorReport};
use super::roles::producer::ProducerReport;
use super::roles::worker::WorkerReport;
use super::roles::{producer, to_argv, worker};
use super::wire::{OUTCOME_BYTES, SIDECAR_BYTES};
use super::Res;
use crate::video;
pub use plan::{SimArgs, DEFAULT_VIDEO, PRESETS, VIDEO_1080P};
pub use report::{print_table, ProcessMemory, SimReport};
use supervise::{interrupted, read_report, serve_descriptor, Procs, WorkDir, INTERRUPTED};

/// Result cells of the frames segment: the reader may fall this many frames behind the
/// producer before posts wait (a few minutes of video at camera rates would not fit; seconds do).
pub const RESULT_CELLS: u32 = 4096;

/// Raises a flag when dropped: the collector thread stops on every way out of the run.
struct Halt<'a>(&'a AtomicBool);

impl Drop for Halt<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Runs a simulation and returns its report (also printed, and written as asked).
///
/// # Errors
/// Bad options, a missing or unsupported video, a process that failed (its own error is
/// printed on stderr), Ctrl-C, or a run that overran its time budget.
pub fn simulate(a: &SimArgs) -> Res<SimReport> {
    let p = plan::plan(a)?;
    let stop = interrupted();
    let id = std::process::id();
    let dir = WorkDir::create(id)?;
    let info = video::open(&p.video)?.info();
    let dlc = dir.0.join("model.dlc");
    let channels = if p.format == PixelFormat::Gray8 { 1 } else { 3 };
    p.profile.write_dlc(&dlc, info.height, info.width, channels, a.time_scale, &dir.0.join("stub.shared"))?;

    // Segments: the orchestrator creates (and, when dropped, removes) all of them. Each slot
    // has room for the producer's sidecar after the frame; the results area takes one outcome
    // per frame.
    let name = a.name.clone().unwrap_or_else(|| format!("sim{id}"));
    let geometry = FrameGeometry::new(info.width, info.height, p.format);
    let frame_bytes = geometry.planes().map_err(|e| e.to_string())?.frame_size;
    // Room beside the workers for two viewers (latest readers, e.g. the OpenCV example).
    let spec = SegmentSpec::new(geometry, p.slots)
        .with_policy(p.policy)
        .with_pattern(Pattern::WorkQueue)
        .with_max_consumers(p.workers + 2)
        .with_slot_payload_size(frame_bytes + u64::from(SIDECAR_BYTES))
        .with_results(RESULT_CELLS, OUTCOME_BYTES);
    let frames_seg = Arc::new(a.backing.create(&name, &spec)?);
    // An anonymous backing has no name to open: the producer and the workers receive its
    // descriptor over a Unix socket (`--segment unix:PATH`); restarts connect again.
    let frames_arg = if a.backing.is_named() {
        name.clone()
    } else {
        serve_descriptor(&frames_seg, &dir.0.join("frames.sock"), u32::MAX)?
    };
    let out = Channel::create_broadcast(&format!("{name}.out"), 64, 8)?;

    // A worker's longest time on a frame, and how long a frame can wait for a worker: every
    // slot ahead of it in the queue.
    let service_ms =
        (p.profile.call_ms(p.workers) + p.profile.jitter_ms) * a.time_scale * (1.0 + p.overhead_pct / 100.0);
    let deadline_ms = (service_ms * (f64::from(p.slots) / f64::from(p.workers) + 4.0) + 1000.0) as u64;
    let mut procs = Procs::new(std::env::current_exe()?);
    for k in 0..p.workers {
        let key = format!("worker-{k}");
        let worker = worker::Args {
            segment: frames_arg.clone(),
            index: k,
            dlc: dlc.clone(),
            profile: p.profile.clone(),
            overhead: p.overhead_pct,
            no_register: false,
            report: Some(dir.report(&key)),
        };
        procs.spawn("worker", &key, &to_argv(&worker), &stop)?;
    }
    // The camera's schedule starts a moment from now (the producer's own start-up); a
    // restarted producer keeps it.
    let producer = producer::Args {
        segment: frames_arg,
        create: false,
        format: None,
        slots: None,
        policy: None,
        broadcast: false,
        start_ns: Some(now_ns() + 200_000_000),
        video: p.video.clone(),
        fps: Some(p.fps),
        frames: Some(p.frames),
        max_speed: a.max_speed,
        report: Some(dir.report("producer")),
    };
    let start = Instant::now();
    procs.spawn("producer", "producer", &to_argv(&producer), &stop)?;

    let bar = if a.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(p.frames);
        b.set_style(
            indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} frames  {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        b
    };
    // Paced runs last frames / fps; under Block the workers set the pace.
    let paced = if a.max_speed { 0.0 } else { p.frames as f64 / p.fps };
    let worked =
        if p.policy == OverflowPolicy::Block { p.frames as f64 * service_ms / 1e3 / f64::from(p.workers) } else { 0.0 };
    let budget = Duration::from_secs_f64(paced.max(worked) * 3.0 + 60.0);
    let mut samples: BTreeMap<String, Vec<(f64, u64)>> = BTreeMap::new();
    let mut deaths: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let seg = frames_seg.segment();
    let halt = AtomicBool::new(false);
    let settings =
        collect::Settings { workers: p.workers, deadline: Duration::from_millis(deadline_ms), out: Some(&out) };
    let c: CollectorReport = std::thread::scope(|sc| -> Res<CollectorReport> {
        let collector = sc.spawn(|| collect::collect(&frames_seg, &settings, &halt));
        let _halt = Halt(&halt);
        loop {
            if stop.load(Ordering::SeqCst) {
                bar.abandon_with_message("interrupted");
                return Err(INTERRUPTED.into());
            }
            if start.elapsed() > budget {
                return Err(format!(
                    "the run overran its {} s budget: a process is stuck (see `framebus inspect {name}`)",
                    budget.as_secs()
                )
                .into());
            }
            let died = procs.watch(&stop)?;
            if !died.is_empty() {
                // The runtime knows these processes are gone: reclaim their consumer entries
                // now (their held frames come out as worker_died), not at the next reap tick.
                frames_seg.reap();
                for d in died {
                    deaths.entry(d.key).or_default().push(d.status);
                }
            }
            procs.restart_due(&stop)?;
            let t = start.elapsed().as_secs_f64();
            procs.sample_memory(t, &mut samples);
            samples.entry("runtime".into()).or_default().push((t, super::private_rss_bytes(std::process::id())));
            let s = seg.stats();
            bar.set_position(s.next_seq);
            bar.set_message(format!(
                "published {}, claimed {}, dropped {}",
                s.write_pos,
                s.delivered,
                s.dropped_oldest + s.dropped_newest
            ));
            if collector.is_finished() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        collector.join().map_err(|_| "the collector panicked")?
    })?;
    bar.finish_and_clear();
    // The stream has ended: the producer has exited and the workers leave on their own.
    procs.wait_all(Duration::from_secs(10))?;
    let wall_s = start.elapsed().as_secs_f64();
    // A process killed and not restarted before the end wrote no report: its part is missing
    // from the per-process figures, not from the frame counts (those are the segment's).
    let pr: ProducerReport = read_report(&dir.report("producer"), "the producer")?;
    let ws: Vec<WorkerReport> = (0..p.workers)
        .map(|k| {
            let key = format!("worker-{k}");
            match read_report(&dir.report(&key), &format!("worker {k}")) {
                Err(_) if deaths.contains_key(&key) => Ok(WorkerReport { index: k, ..WorkerReport::default() }),
                r => r,
            }
        })
        .collect::<Res<_>>()?;
    let st = seg.stats();
    let r = report::assemble(&report::Parts {
        args: a,
        plan: &p,
        geometry: format!("{}x{} {:?}", info.width, info.height, p.format),
        collector: c,
        producer: pr,
        producer_dropped: (st.dropped_oldest, st.dropped_newest),
        workers: ws,
        restarts: procs.restarts(),
        deaths: &deaths,
        samples: &samples,
        segment_bytes: seg.layout().total_size,
        wall_s,
    });
    print_table(&r);
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&r)?)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &a.plot {
        plot::write_svg(&r, path)?;
        println!("wrote {}", path.display());
    }
    Ok(r)
}
