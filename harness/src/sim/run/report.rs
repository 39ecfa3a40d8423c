//! The report of a run: the role reports put together (`SimReport`, the `--json` file), and
//! the table `framebus simulate` prints.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::plan::{Plan, SimArgs};
use crate::sim::collect::{CollectorReport, LatencyMs, Point, TransportUs};
use crate::sim::roles::producer::ProducerReport;
use crate::sim::roles::worker::WorkerReport;

/// Memory of one process over the run.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct ProcessMemory {
    /// peak resident set (the process's own high-water mark, including the segment pages it
    /// touched, which every process shares)
    pub peak_rss_bytes: u64,
    /// private resident memory a quarter into the run (after warm-up)
    pub private_after_warmup_bytes: u64,
    /// private resident memory at the last sample
    pub private_end_bytes: u64,
}

/// The whole report (`--json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SimReport {
    /// preset used, if any
    pub preset: Option<String>,
    /// video file
    pub video: String,
    /// frame size and format
    pub geometry: String,
    /// sequence numbers issued (frames the camera produced)
    pub frames_in: u64,
    /// results released in order
    pub frames_out: u64,
    /// frames without a result, by cause
    pub dropped: BTreeMap<String, u64>,
    /// must be 0
    pub order_violations: u64,
    /// must be 0
    pub integrity_failures: u64,
    /// results for frames never announced, or duplicates (must be 0)
    pub unexpected_results: u64,
    /// a worker reported frames out of publish order (must be 0)
    pub worker_order_violations: u64,
    /// frames a worker was already waiting for (the samples behind `transport_us`)
    pub transport_samples: u64,
    /// how far the producer fell behind the camera's schedule at worst (decoding slower than
    /// the frame rate), ms; latency includes it
    pub producer_behind_ms: f64,
    /// the producer's own count of what it dropped, by cause (must equal `dropped`'s)
    pub producer_dropped: BTreeMap<String, u64>,
    /// results that came after their frame was given up
    pub late_results: u64,
    /// frames published per second
    pub fps_in: f64,
    /// results out per second
    pub fps_out: f64,
    /// capture → ordered result
    pub latency_ms: LatencyMs,
    /// publish → claimed by a waiting worker
    pub transport_us: TransportUs,
    /// time frames waited in the segment for a worker
    pub queue_ms: LatencyMs,
    /// the model call alone
    pub model_ms: LatencyMs,
    /// a worker's whole time per frame (call + its pre/post-processing overhead)
    pub service_ms: LatencyMs,
    /// worker processes
    pub workers: u32,
    /// runtime profile
    pub profile: String,
    /// overflow policy
    pub policy: String,
    /// slots in the frames segment
    pub slots: u32,
    /// where the frames segment's memory comes from (posix, memfd, dmabuf, udmabuf)
    pub backing: String,
    /// how the accelerator runtime reads the slots: "registered fd" (every slot registered
    /// once by fd and offset, as dma-bufs are imported) or "buffer address"
    pub accelerator_path: String,
    /// runs that read a registered slot through the runtime's own mapping of the segment's fd,
    /// each checked against the bytes at the slot's address
    pub accelerator_registered_runs: u64,
    /// runs on addresses the runtime did not have registered (a real runtime copies those)
    pub accelerator_unregistered_runs: u64,
    /// every run read its slot through the registration, none through a copy (false when the
    /// runtime does not report it: see `accelerator_counts_known`)
    pub accelerator_zero_copy: bool,
    /// the runtime reported how each run read its input (the stub does; a real SDK does not)
    pub accelerator_counts_known: bool,
    /// bytes of the frames segment (all the frame memory there is)
    pub segment_bytes: u64,
    /// worker utilisation: time in the model call / wall time, per worker
    pub utilisation: Vec<f64>,
    /// frames run per worker
    pub frames_per_worker: Vec<u64>,
    /// decode + convert per frame in the producer, ms
    pub decode_ms_mean: f64,
    /// peak resident set per process
    pub peak_rss_bytes: BTreeMap<String, u64>,
    /// memory over the run per process
    pub memory: BTreeMap<String, ProcessMemory>,
    /// every process's private memory grew by less than 16 MiB after warm-up (no queue
    /// anywhere but the fixed segment)
    pub memory_flat: bool,
    /// wall time of the run, s
    pub wall_s: f64,
    /// processes restarted after they died, by report key, and how often
    pub restarts: BTreeMap<String, u64>,
    /// how each process that died ended, by report key, in order
    pub deaths: BTreeMap<String, Vec<String>>,
    /// every frame issued is accounted for: `frames_in = frames_out + Σ dropped` (must hold)
    pub accounted: bool,
    /// frames a dead worker held that went back, once, to another worker
    pub redelivered: u64,
    /// the collector's timeline, for plots
    pub timeline: Vec<Point>,
}

/// What a report is made of: the run's settings and what each role reported.
pub struct Parts<'a> {
    /// the options as given
    pub args: &'a SimArgs,
    /// the settings resolved from them
    pub plan: &'a Plan,
    /// frame size and format, as printed
    pub geometry: String,
    /// the collector's report
    pub collector: CollectorReport,
    /// the (last) producer's report
    pub producer: ProducerReport,
    /// frames the segment counts dropped by drop-oldest and drop-newest, over every producer
    pub producer_dropped: (u64, u64),
    /// frames redelivered after their worker died
    pub redelivered: u64,
    /// the workers' reports, by index (the last process of each)
    pub workers: Vec<WorkerReport>,
    /// restarts by report key
    pub restarts: BTreeMap<String, u64>,
    /// how each process that died ended, by report key
    pub deaths: &'a BTreeMap<String, Vec<String>>,
    /// private memory of each process over the run: (seconds, bytes)
    pub samples: &'a BTreeMap<String, Vec<(f64, u64)>>,
    /// bytes of the frames segment
    pub segment_bytes: u64,
    /// wall time of the run, s
    pub wall_s: f64,
}

/// Puts the role reports together into the run's report.
pub fn assemble(parts: &Parts<'_>) -> SimReport {
    let (a, p, c, pr, ws) = (parts.args, parts.plan, &parts.collector, &parts.producer, &parts.workers);
    let mut peak = BTreeMap::new();
    peak.insert("producer".to_string(), pr.peak_rss_bytes);
    peak.insert("runtime".to_string(), crate::sim::peak_rss_bytes());
    for w in ws {
        peak.insert(format!("worker-{}", w.index), w.peak_rss_bytes);
    }
    let mut memory = BTreeMap::new();
    let mut flat = true;
    for (who, series) in parts.samples {
        let last = series.last().map_or(0, |s| s.1);
        let warm_t = series.last().map_or(0.0, |s| s.0) / 4.0;
        let warm = series.iter().find(|s| s.0 >= warm_t).map_or(0, |s| s.1);
        flat &= last.saturating_sub(warm) < 16 << 20;
        memory.insert(
            who.clone(),
            ProcessMemory {
                peak_rss_bytes: peak.get(who).copied().unwrap_or(0),
                private_after_warmup_bytes: warm,
                private_end_bytes: last,
            },
        );
    }
    let span = c.span_s.max(1e-9);
    SimReport {
        preset: a.preset.clone(),
        video: p.video.display().to_string(),
        geometry: parts.geometry.clone(),
        frames_in: c.frames_in,
        frames_out: c.frames_out,
        dropped: c.dropped.clone(),
        order_violations: c.order_violations,
        // The collector compares the runtime's checksum with the producer's for every frame
        // (the workers' own count is the same comparison against the descriptor).
        integrity_failures: c.integrity_failures,
        worker_order_violations: c.worker_order_violations,
        transport_samples: c.transport_samples,
        producer_behind_ms: pr.behind_ms_max,
        producer_dropped: [
            ("drop_oldest".to_string(), parts.producer_dropped.0),
            ("drop_newest".to_string(), parts.producer_dropped.1),
        ]
        .into_iter()
        .collect(),
        unexpected_results: c.unexpected_results,
        late_results: c.late_results,
        fps_in: c.published as f64 / span,
        fps_out: c.frames_out as f64 / span,
        latency_ms: c.latency_ms,
        transport_us: c.transport_us,
        queue_ms: c.queue_ms,
        model_ms: c.model_ms,
        service_ms: c.service_ms,
        workers: p.workers,
        profile: p.profile.name.clone(),
        policy: format!("{:?}", p.policy),
        slots: p.slots,
        backing: a.backing.name().to_string(),
        accelerator_path: if ws.iter().all(|w| w.registered) { "registered fd" } else { "buffer address" }.to_string(),
        accelerator_registered_runs: ws.iter().map(|w| w.registered_runs).sum(),
        accelerator_unregistered_runs: ws.iter().map(|w| w.unregistered_runs).sum(),
        accelerator_zero_copy: ws
            .iter()
            .all(|w| w.run_counts_known && w.registered && w.unregistered_runs == 0 && w.registered_runs == w.frames),
        accelerator_counts_known: ws.iter().all(|w| w.run_counts_known),
        segment_bytes: parts.segment_bytes,
        utilisation: ws.iter().map(|w| w.busy_ms / w.wall_ms.max(1e-9)).collect(),
        frames_per_worker: c.per_worker.clone(),
        decode_ms_mean: pr.decode_ms_mean,
        peak_rss_bytes: peak,
        memory,
        memory_flat: flat,
        wall_s: parts.wall_s,
        restarts: parts.restarts.clone(),
        deaths: parts.deaths.clone(),
        accounted: c.frames_in == c.frames_out + c.dropped.values().sum::<u64>(),
        redelivered: parts.redelivered,
        timeline: c.timeline.clone(),
    }
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

/// Prints the final table.
pub fn print_table(r: &SimReport) {
    let drops: u64 = r.dropped.values().sum();
    println!("framebus simulate{}", r.preset.as_ref().map_or(String::new(), |p| format!(" --preset {p}")));
    println!("  video      {} ({})", r.video, r.geometry);
    println!(
        "  workers    {} x {}   policy {}   slots {} ({})",
        r.workers,
        r.profile,
        r.policy,
        r.slots,
        mib(r.segment_bytes)
    );
    println!(
        "  frames     in {}  out {}  dropped or lost {} {:?}{}",
        r.frames_in,
        r.frames_out,
        drops,
        r.dropped,
        if r.accounted { "" } else { "  — FRAMES UNACCOUNTED FOR" }
    );
    if !r.deaths.is_empty() {
        let d: Vec<String> = r
            .deaths
            .iter()
            .map(|(k, v)| format!("{k} x{} ({}), restarted {}", v.len(), v.join("; "), r.restarts.get(k).unwrap_or(&0)))
            .collect();
        println!("  restarts   {}; {} frame(s) redelivered", d.join(", "), r.redelivered);
    }
    println!("  fps        in {:.1}  out {:.1}", r.fps_in, r.fps_out);
    let l = r.latency_ms;
    println!(
        "  latency    capture -> ordered result  p50 {:.0} ms  p90 {:.0}  p99 {:.0}  max {:.0}",
        l.p50, l.p90, l.p99, l.max
    );
    println!(
        "  transport  publish -> claimed          p50 {:.0} us  p99 {:.0} us   ({} frames found a worker waiting)",
        r.transport_us.p50, r.transport_us.p99, r.transport_samples
    );
    println!("  queued     publish -> worker free      p50 {:.1} ms  p99 {:.1} ms", r.queue_ms.p50, r.queue_ms.p99);
    println!(
        "  model      per call                    p50 {:.0} ms  p99 {:.0} ms   (with worker overhead: p50 {:.0} ms)",
        r.model_ms.p50, r.model_ms.p99, r.service_ms.p50
    );
    println!(
        "  decode     per frame (producer)        {:.1} ms   (worst lag behind the camera: {:.0} ms)",
        r.decode_ms_mean, r.producer_behind_ms
    );
    println!(
        "  backing    {}; accelerator reads slots by {}: {} runs through the runtime's own mapping of the fd, {} unregistered — {}",
        r.backing,
        r.accelerator_path,
        r.accelerator_registered_runs,
        r.accelerator_unregistered_runs,
        if r.accelerator_zero_copy {
            "zero copy, every run verified against its slot"
        } else if !r.accelerator_counts_known {
            "the runtime does not report how it read each input"
        } else {
            "NOT zero copy on a real runtime (unregistered inputs are copied)"
        }
    );
    let util: Vec<String> = r.utilisation.iter().map(|u| format!("{:.0}%", u * 100.0)).collect();
    println!("  workers    utilisation {}   frames {:?}", util.join(" "), r.frames_per_worker);
    let mem: Vec<String> =
        r.memory.iter().map(|(k, m)| format!("{k} {} ({})", mib(m.private_end_bytes), mib(m.peak_rss_bytes))).collect();
    println!(
        "  memory     private (peak RSS incl. shared slots): {}  — {}",
        mem.join(", "),
        if r.memory_flat { "flat" } else { "GROWING" }
    );
    println!(
        "  checks     order violations {} (workers {})  integrity failures {}  unexpected results {}  late results {}",
        r.order_violations, r.worker_order_violations, r.integrity_failures, r.unexpected_results, r.late_results
    );
}
