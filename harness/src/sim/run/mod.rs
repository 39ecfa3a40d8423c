//! `framebus simulate`: the edge runtime ([`crate::runtime::run`]) with the recorded clip as
//! its source, the stub (SNPE-shaped) workers, and the simulation's sinks — the collector's
//! checks and measurements and the viewers' output (`NAME.out`) — then the report. A worker or
//! the producer that dies is restarted by the runtime, as in any pipeline.
//!
//! The parts, each depending only on those before it:
//! [`plan`] (presets, options, validation) → [`report`] (the report and its table) → [`plot`];
//! this module runs them in order. Roles are started with their own `Args`
//! ([`crate::sim::roles`]), turned into a command line by [`to_argv`], so nothing here spells a
//! role's flags.

pub mod plan;
pub mod plot;
pub mod report;

use std::collections::BTreeMap;
use std::time::Duration;

use framebus_platform::core::{FrameGeometry, OverflowPolicy, Pattern, PixelFormat, SegmentSpec};
use framebus_platform::{now_ns, SharedSegment};

use super::channel::Channel;
use super::collect::{Collector, Viewers};
use super::roles::producer::ProducerReport;
use super::roles::worker::WorkerReport;
use super::roles::{producer, to_argv, worker};
use super::wire::{OUTCOME_BYTES, SIDECAR_BYTES};
use super::Res;
use crate::runtime::supervise::{interrupted, read_report, Launch, Procs, WorkDir};
use crate::runtime::{self, Ctx, Observer, Pipeline};
use crate::video;
pub use plan::{SimArgs, DEFAULT_VIDEO, PRESETS, VIDEO_1080P};
pub use report::{print_table, ProcessMemory, SimReport};

/// Result cells of the frames segment: the reader may fall this many frames behind the
/// producer before posts wait.
pub const RESULT_CELLS: u32 = runtime::config::RESULT_CELLS;

/// The simulation's view of a running pipeline: the progress bar and memory samples.
struct Watch {
    bar: indicatif::ProgressBar,
    samples: BTreeMap<String, Vec<(f64, u64)>>,
}

impl Observer for Watch {
    fn tick(&mut self, seg: &SharedSegment, procs: &Procs, elapsed: Duration) {
        let t = elapsed.as_secs_f64();
        procs.sample_memory(t, &mut self.samples);
        self.samples.entry("runtime".into()).or_default().push((t, super::private_rss_bytes(std::process::id())));
        let s = seg.segment().stats();
        self.bar.set_position(s.next_seq);
        self.bar.set_message(format!(
            "published {}, claimed {}, dropped {}",
            s.write_pos,
            s.delivered,
            s.dropped_oldest + s.dropped_newest
        ));
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
    let dir = WorkDir::create("sim", id)?;
    let info = video::open(&p.video)?.info();
    let dlc = dir.0.join("model.dlc");
    let channels = if p.format == PixelFormat::Gray8 { 1 } else { 3 };
    p.profile.write_dlc(&dlc, info.height, info.width, channels, a.time_scale, &dir.0.join("stub.shared"))?;

    // Each slot has room for the producer's sidecar after the frame; the results area takes
    // one outcome per frame.
    let name = a.name.clone().unwrap_or_else(|| format!("sim{id}"));
    let geometry = FrameGeometry::new(info.width, info.height, p.format);
    let frame_bytes = geometry.planes().map_err(|e| e.to_string())?.frame_size;
    // Room beside the workers for two viewers (latest readers, e.g. the OpenCV example).
    let spec = SegmentSpec::new(geometry, p.slots)
        .with_policy(p.policy)
        .with_pattern(Pattern::WorkQueue)
        .with_max_consumers(p.workers + 2)
        .with_slot_payload_size(frame_bytes + u64::from(SIDECAR_BYTES))
        .with_results(RESULT_CELLS, OUTCOME_BYTES)
        .with_lost_on_death(a.lost_on_death);
    let out = Channel::create_broadcast(&format!("{name}.out"), 64, 8)?;

    // A worker's longest time on a frame, and how long a frame can wait for a worker: every
    // slot ahead of it in the queue.
    let service_ms =
        (p.profile.call_ms(p.workers) + p.profile.jitter_ms) * a.time_scale * (1.0 + p.overhead_pct / 100.0);
    let deadline_ms = (service_ms * (f64::from(p.slots) / f64::from(p.workers) + 4.0) + 1000.0) as u64;
    let exe = std::env::current_exe()?;
    let (worker_exe, reports) = (exe.clone(), dir.0.clone());
    let (profile, overhead) = (p.profile.clone(), p.overhead_pct);
    let worker = move |c: &Ctx<'_>, k: u32| {
        let args = worker::Args {
            segment: c.segment_arg.to_string(),
            index: k,
            dlc: dlc.clone(),
            profile: profile.clone(),
            overhead,
            no_register: false,
            report: Some(reports.join(format!("worker-{k}.json"))),
        };
        Launch::role(&worker_exe, "worker", to_argv(&args))
    };
    // The camera's schedule starts a moment after the workers are up (the producer's own
    // start-up); a restarted producer keeps it.
    let producer = producer::Args {
        segment: String::new(),
        create: false,
        format: None,
        slots: None,
        policy: None,
        broadcast: false,
        start_ns: None,
        video: p.video.clone(),
        fps: Some(p.fps),
        frames: Some(p.frames),
        max_speed: a.max_speed,
        report: Some(dir.report("producer")),
    };
    let schedule = std::sync::OnceLock::new();
    let source = move |c: &Ctx<'_>| {
        let start_ns = *schedule.get_or_init(|| now_ns() + 200_000_000);
        let args = producer::Args { segment: c.segment_arg.to_string(), start_ns: Some(start_ns), ..producer.clone() };
        Launch::role(&exe, "producer", to_argv(&args))
    };
    // Paced runs last frames / fps; under Block the workers set the pace.
    let paced = if a.max_speed { 0.0 } else { p.frames as f64 / p.fps };
    let worked =
        if p.policy == OverflowPolicy::Block { p.frames as f64 * service_ms / 1e3 / f64::from(p.workers) } else { 0.0 };
    let pipeline = Pipeline {
        name: name.clone(),
        spec,
        backing: a.backing,
        workers: p.workers,
        worker: Box::new(worker),
        source: Some(Box::new(source)),
        deadline: Duration::from_millis(deadline_ms),
        budget: Some(Duration::from_secs_f64(paced.max(worked) * 3.0 + 60.0)),
        dir: dir.0.clone(),
    };
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
    let mut watch = Watch { bar, samples: BTreeMap::new() };
    let mut collector = Collector::new(p.workers);
    let mut viewers = Viewers::new(&out)?;
    let run = runtime::run(&pipeline, &mut [&mut collector, &mut viewers], &mut watch, &stop);
    match &run {
        Ok(_) => watch.bar.finish_and_clear(),
        Err(_) => watch.bar.abandon(),
    }
    let s = run?;
    let c = collector.finish(&s);
    let deaths = s.deaths.clone();
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
    let st = s.stats;
    let r = report::assemble(&report::Parts {
        args: a,
        plan: &p,
        geometry: format!("{}x{} {:?}", info.width, info.height, p.format),
        collector: c,
        producer: pr,
        producer_dropped: (st.dropped_oldest, st.dropped_newest),
        redelivered: st.redelivered,
        workers: ws,
        restarts: s.restarts.clone(),
        deaths: &deaths,
        samples: &watch.samples,
        segment_bytes: s.segment_bytes,
        wall_s: s.wall.as_secs_f64(),
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
