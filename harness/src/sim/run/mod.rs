//! `framebus simulate`: creates the segments, starts the producer, the workers and the
//! collector as separate processes of this binary, watches them (progress, memory), and tears
//! everything down — also on Ctrl-C or when a process fails — leaving no segment behind.
//!
//! The parts, each depending only on those before it:
//! [`plan`] (presets, options, validation) → [`supervise`] (processes, descriptor passing,
//! clean-up) → [`report`] (the report and its table) → [`plot`]; this module runs them in
//! order. Roles are started with their own `Args` ([`crate::sim::roles`]), turned into a
//! command line by [`to_argv`], so nothing here spells a role's flags.

pub mod plan;
pub mod plot;
pub mod report;
pub mod supervise;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use framebus_platform::core::{FrameGeometry, OverflowPolicy, Pattern, PixelFormat, SegmentSpec};

use super::channel::Channel;
use super::roles::collector::CollectorReport;
use super::roles::producer::ProducerReport;
use super::roles::worker::WorkerReport;
use super::roles::{collector, producer, to_argv, worker};
use super::Res;
use crate::video;
pub use plan::{SimArgs, DEFAULT_VIDEO, PRESETS, VIDEO_1080P};
pub use report::{print_table, ProcessMemory, SimReport};
use supervise::{interrupted, read_report, serve_descriptor, Procs, WorkDir, INTERRUPTED};

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

    // Segments: the orchestrator creates (and, when dropped, removes) all of them.
    let name = a.name.clone().unwrap_or_else(|| format!("sim{id}"));
    // Room beside the workers for two viewers (latest readers, e.g. the OpenCV example).
    let spec = SegmentSpec::new(FrameGeometry::new(info.width, info.height, p.format), p.slots)
        .with_policy(p.policy)
        .with_pattern(Pattern::WorkQueue)
        .with_max_consumers(p.workers + 2);
    let frames_seg = Arc::new(a.backing.create(&name, &spec)?);
    // An anonymous backing has no name to open: the producer and the workers receive its
    // descriptor over a Unix socket (`--segment unix:PATH`).
    let frames_arg = if a.backing.is_named() {
        name.clone()
    } else {
        serve_descriptor(&frames_seg, &dir.0.join("frames.sock"), p.workers + 1)?
    };
    let events = Channel::create(&format!("{name}.ev"), 256)?;
    let out = Channel::create_broadcast(&format!("{name}.out"), 64, 8)?;
    let results =
        (0..p.workers).map(|k| Channel::create(&format!("{name}.r{k}"), 64)).collect::<Res<Vec<Channel>>>()?;

    // A worker's longest time on a frame, and how long a frame can wait for a worker: every
    // slot ahead of it in the queue.
    let service_ms =
        (p.profile.call_ms(p.workers) + p.profile.jitter_ms) * a.time_scale * (1.0 + p.overhead_pct / 100.0);
    let deadline_ms = (service_ms * (f64::from(p.slots) / f64::from(p.workers) + 4.0) + 1000.0) as u64;
    let mut procs = Procs::new(std::env::current_exe()?);
    let collector = collector::Args {
        events: events.name().into(),
        results: results.iter().map(|c| c.name().to_string()).collect(),
        deadline_ms,
        out: Some(out.name().into()),
        report: Some(dir.report("collector")),
    };
    procs.spawn("collector", "collector", &to_argv(&collector), &stop)?;
    for (k, r) in results.iter().enumerate() {
        let key = format!("worker-{k}");
        let worker = worker::Args {
            segment: frames_arg.clone(),
            results: r.name().into(),
            index: k as u32,
            dlc: dlc.clone(),
            profile: p.profile.clone(),
            overhead: p.overhead_pct,
            no_register: false,
            report: Some(dir.report(&key)),
        };
        procs.spawn("worker", &key, &to_argv(&worker), &stop)?;
    }
    let producer = producer::Args {
        segment: frames_arg,
        create: false,
        format: None,
        slots: None,
        policy: None,
        broadcast: false,
        events: Some(events.name().into()),
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
    let seg = frames_seg.segment();
    loop {
        if stop.load(Ordering::SeqCst) {
            bar.abandon_with_message("interrupted");
            return Err(INTERRUPTED.into());
        }
        if start.elapsed() > budget {
            return Err(format!(
                "the run overran its {} s budget: a process is stuck (see `framebus ls`)",
                budget.as_secs()
            )
            .into());
        }
        let collector_done = procs.poll("collector", &stop)?;
        procs.sample_memory(start.elapsed().as_secs_f64(), &mut samples);
        let s = seg.stats();
        bar.set_position(s.next_seq);
        bar.set_message(format!(
            "published {}, claimed {}, dropped {}",
            s.write_pos,
            s.delivered,
            s.dropped_oldest + s.dropped_newest
        ));
        if collector_done {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
    // The producer has finished (the collector saw its end); workers leave once it detached.
    procs.wait_all(Duration::from_secs(10))?;
    let wall_s = start.elapsed().as_secs_f64();
    let c: CollectorReport = read_report(&dir.report("collector"), "the collector")?;
    let pr: ProducerReport = read_report(&dir.report("producer"), "the producer")?;
    let ws: Vec<WorkerReport> = (0..p.workers)
        .map(|k| read_report(&dir.report(&format!("worker-{k}")), &format!("worker {k}")))
        .collect::<Res<_>>()?;
    let r = report::assemble(&report::Parts {
        args: a,
        plan: &p,
        geometry: format!("{}x{} {:?}", info.width, info.height, p.format),
        collector: c,
        producer: pr,
        workers: ws,
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
