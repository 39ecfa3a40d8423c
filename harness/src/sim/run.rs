//! `framebus simulate`: creates the segments, starts the producer, the workers and the
//! collector as separate processes of this binary, watches them (progress, memory), and tears
//! everything down — also on Ctrl-C or when a process fails — leaving no segment behind.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use framebus_platform::core::{FrameGeometry, OverflowPolicy, Pattern, PixelFormat, SegmentSpec};
use framebus_platform::{CreateOptions, SharedSegment};
use serde::{Deserialize, Serialize};

use super::collector::{CollectorReport, LatencyMs, TransportUs};
use super::producer::ProducerReport;
use super::profile::Profile;
use super::wire::RECORD_BYTES;
use super::worker::WorkerReport;
use super::{private_rss_bytes, Res};
use crate::video::Source;

/// The clip that ships in the repository (720p, 25 fps, 132 frames).
pub const DEFAULT_VIDEO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/media/bbb-720p25.mp4");
/// The same clip at the board's 1080p.
pub const VIDEO_1080P: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/media/bbb-1080p25.mp4");

/// A named set of defaults reproducing a measured setup.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    /// name for `--preset`
    pub name: &'static str,
    /// what it reproduces and what to expect
    pub about: &'static str,
    /// workers
    pub workers: u32,
    /// runtime profile
    pub profile: &'static str,
    /// video
    pub video: &'static str,
    /// overflow policy
    pub policy: OverflowPolicy,
    /// worker-side CPU work around each model call, % of the call
    pub overhead_pct: f64,
}

/// The presets: the first board setup and the two 6-instance setups measured on it.
pub const PRESETS: [Preset; 3] = [
    Preset {
        name: "board-v1",
        about: "1 worker, `slow` (220 ms), 1080p at 25 fps: memory stays flat and frames are dropped (counted), instead of the 6 GB queue",
        workers: 1,
        profile: "slow",
        video: VIDEO_1080P,
        policy: OverflowPolicy::DropOldest,
        overhead_pct: 15.0,
    },
    Preset {
        name: "board-dsp6",
        about: "6 x `dsp` (~240 ms each when 6 run), 1080p at 25 fps, ~15% decode/convert overhead per frame: does not keep up (drops)",
        workers: 6,
        profile: "dsp",
        video: VIDEO_1080P,
        policy: OverflowPolicy::DropOldest,
        overhead_pct: 15.0,
    },
    Preset {
        name: "board-aip6",
        about: "6 x `aip` (80-120 ms each), 1080p at 25 fps, same overhead: keeps up, no drops after warm-up, latency about one model call",
        workers: 6,
        profile: "aip",
        video: VIDEO_1080P,
        policy: OverflowPolicy::DropOldest,
        overhead_pct: 15.0,
    },
];

/// Options of a simulation (explicit values win over the preset's).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct SimArgs {
    /// Start from a preset: board-v1, board-dsp6, board-aip6 (see the list below).
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// Video file (MP4 with H.264, or Y4M) [default: the bundled 720p clip].
    #[arg(long, value_name = "PATH")]
    pub video: Option<PathBuf>,
    /// Worker processes (1-15) [default: 4].
    #[arg(long, value_name = "N")]
    pub workers: Option<u32>,
    /// Runtime profile: dsp, aip, gpu, cpu, slow, or custom:BASE_MS,JITTER_MS,CONTENTION [default: aip].
    #[arg(long, value_name = "P")]
    pub profile: Option<String>,
    /// Frames per second of the simulated camera [default: the file's].
    #[arg(long, value_name = "F")]
    pub fps: Option<f64>,
    /// What the producer does when every slot is busy [default: drop-oldest, a live camera].
    #[arg(long, value_enum)]
    pub policy: Option<PolicyArg>,
    /// Slots in the frames segment [default: workers + 3: one held per worker, one being
    /// written, two queued].
    #[arg(long, value_name = "N")]
    pub slots: Option<u32>,
    /// Seconds of video to produce (the clip loops) [default: 20].
    #[arg(long, value_name = "S", conflicts_with = "frames")]
    pub duration: Option<f64>,
    /// Frames to produce instead of a duration.
    #[arg(long, value_name = "N")]
    pub frames: Option<u64>,
    /// Pixel format of the slots [default: bgr24].
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Worker-side CPU work around each model call (pre/post-processing), as % of the call
    /// [default: 0; the board presets: 15]. Modelled as time.
    #[arg(long, value_name = "PCT")]
    pub overhead: Option<f64>,
    /// Scale every model time by this factor (0.1 runs ten times faster; for quick checks).
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    pub time_scale: f64,
    /// Do not pace the producer: decode and publish as fast as possible.
    #[arg(long)]
    pub max_speed: bool,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Write an SVG plot of latency and drops over time to this file.
    #[arg(long, value_name = "PATH")]
    pub plot: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Where the frames segment lives: posix (a named /dev/shm object), memfd (anonymous,
    /// its descriptor passed to each process over a Unix socket), dmabuf (a dma-buf heap,
    /// /dev/dma_heap/system) or udmabuf (a memfd exported through /dev/udmabuf); the last two
    /// stop with a clear message where the kernel lacks the device.
    #[arg(long, value_enum, default_value_t = BackingArg::Posix)]
    pub backing: BackingArg,
    /// Name the segments NAME (frames; with --backing posix only, the others have no name),
    /// NAME.out (the results in frame order, a broadcast segment other programs can subscribe
    /// to), NAME.ev and NAME.rK [default: sim<pid>].
    /// See examples/python/opencv_overlay.py.
    // This text is clap's --help, where `[default: …]` is the convention; rustdoc would read it
    // as a link and `<pid>` as a tag.
    #[allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

/// `--backing` values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BackingArg {
    /// a named POSIX shared-memory object
    #[default]
    Posix,
    /// an anonymous memfd passed by descriptor
    Memfd,
    /// a dma-buf heap allocation (/dev/dma_heap/system)
    Dmabuf,
    /// a memfd exported as a dma-buf through /dev/udmabuf
    Udmabuf,
}

impl BackingArg {
    fn name(self) -> &'static str {
        match self {
            BackingArg::Posix => "posix",
            BackingArg::Memfd => "memfd",
            BackingArg::Dmabuf => "dmabuf",
            BackingArg::Udmabuf => "udmabuf",
        }
    }
}

/// `--policy` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyArg {
    /// wait for a free slot: nothing is lost, latency grows when workers are slow
    Block,
    /// reuse the oldest unclaimed frame's slot (counted)
    DropOldest,
    /// skip the incoming frame (counted)
    DropNewest,
}

impl From<PolicyArg> for OverflowPolicy {
    fn from(p: PolicyArg) -> Self {
        match p {
            PolicyArg::Block => OverflowPolicy::Block,
            PolicyArg::DropOldest => OverflowPolicy::DropOldest,
            PolicyArg::DropNewest => OverflowPolicy::DropNewest,
        }
    }
}

/// `--format` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// 3 bytes per pixel, B G R (OpenCV's order)
    Bgr24,
    /// 3 bytes per pixel, R G B
    Rgb24,
    /// 1 byte per pixel, luminance
    Gray8,
}

/// Memory of one process over the run.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Memory {
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
    pub memory: BTreeMap<String, Memory>,
    /// every process's private memory grew by less than 16 MiB after warm-up (no queue
    /// anywhere but the fixed segment)
    pub memory_flat: bool,
    /// wall time of the run, s
    pub wall_s: f64,
    /// the collector's timeline, for plots
    pub timeline: Vec<super::collector::Point>,
}

/// Children that are killed when this guard goes (error, panic or Ctrl-C).
struct Procs {
    list: Vec<(String, Child)>,
}

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, c) in &mut self.list {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

/// The run's scratch directory, removed at the end.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts `exe ROLE ARGS` into `procs` (so it is killed on any error from here on) and waits
/// for its `ready` line, at most `STARTUP`, watching Ctrl-C and the child's own exit.
fn spawn(procs: &mut Procs, exe: &Path, role: &str, args: &[String], stop: &AtomicBool) -> Res<()> {
    const STARTUP: Duration = Duration::from_secs(60);
    let mut child = Command::new(exe)
        .arg(role)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {} {role}: {e}", exe.display()))?;
    let out = child.stdout.take().expect("piped stdout");
    procs.list.push((role.to_string(), child));
    // Every role prints "ready" once it has opened its segments and registered; a thread reads
    // it (and then drains the pipe, so the child never blocks on it).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(out);
        let mut line = String::new();
        let ok = reader.read_line(&mut line).is_ok() && line.trim() == "ready";
        let _ = tx.send(ok);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let t = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(true) => return Ok(()),
            Ok(false) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(format!("{role} failed to start; its error is above").into())
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if stop.load(Ordering::SeqCst) {
            return Err(INTERRUPTED.into());
        }
        if t.elapsed() > STARTUP {
            return Err(format!("{role} did not become ready in {} s", STARTUP.as_secs()).into());
        }
    }
}

const INTERRUPTED: &str = "interrupted (Ctrl-C): every process was stopped and every segment removed";

fn read_report<T: for<'de> Deserialize<'de>>(path: &Path, who: &str) -> Res<T> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{who} wrote no report ({e}): it failed, see above"))?;
    Ok(serde_json::from_str(&text)?)
}

/// Resolved settings of a run.
struct Plan {
    video: PathBuf,
    workers: u32,
    profile: Profile,
    policy: OverflowPolicy,
    slots: u32,
    frames: u64,
    fps: f64,
    format: PixelFormat,
    overhead_pct: f64,
}

fn plan(a: &SimArgs) -> Res<Plan> {
    let preset = match &a.preset {
        None => None,
        Some(n) => Some(PRESETS.iter().find(|p| p.name == n).ok_or_else(|| {
            let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
            format!("unknown preset '{n}': use one of {}", names.join(", "))
        })?),
    };
    let video = a.video.clone().unwrap_or_else(|| PathBuf::from(preset.map_or(DEFAULT_VIDEO, |p| p.video)));
    let workers = a.workers.or(preset.map(|p| p.workers)).unwrap_or(4);
    if !(1..=15).contains(&workers) {
        return Err(format!("--workers {workers}: use 1 to 15 (a segment serves at most 16 consumers)").into());
    }
    let profile = Profile::parse(a.profile.as_deref().or(preset.map(|p| p.profile)).unwrap_or("aip"))?;
    if let Some(max) = profile.max_instances {
        if workers > max {
            return Err(format!("profile {} supports {max} instance(s), not {workers} workers", profile.name).into());
        }
    }
    let policy = match a.policy {
        Some(p) => p.into(),
        None => preset.map_or(OverflowPolicy::DropOldest, |p| p.policy),
    };
    let slots = a.slots.unwrap_or(workers + 3);
    if slots < 2 {
        return Err("--slots: at least 2".into());
    }
    let src = Source::open(&video)?;
    let info = src.info();
    let fps = a.fps.unwrap_or(info.fps);
    if !(fps.is_finite() && fps > 0.0 && fps <= 1000.0) {
        return Err(format!("--fps {fps}: use a rate between 0 and 1000").into());
    }
    let frames = match (a.frames, a.duration) {
        (Some(n), _) => n,
        (None, d) => {
            let d = d.unwrap_or(20.0);
            if !(d.is_finite() && d > 0.0) {
                return Err(format!("--duration {d}: use a positive number of seconds").into());
            }
            (d * fps).round() as u64
        }
    };
    if frames == 0 {
        return Err("nothing to do: 0 frames".into());
    }
    let format = match a.format {
        None | Some(FormatArg::Bgr24) => PixelFormat::Bgr24,
        Some(FormatArg::Rgb24) => PixelFormat::Rgb24,
        Some(FormatArg::Gray8) => PixelFormat::Gray8,
    };
    let overhead_pct = a.overhead.or(preset.map(|p| p.overhead_pct)).unwrap_or(0.0);
    if !(0.0..=1000.0).contains(&overhead_pct) {
        return Err(format!("--overhead {overhead_pct}: use 0 to 1000 (%)").into());
    }
    if !(a.time_scale > 0.0 && a.time_scale <= 100.0) {
        return Err(format!("--time-scale {}: use a factor in (0, 100]", a.time_scale).into());
    }
    Ok(Plan { video, workers, profile, policy, slots, frames, fps, format, overhead_pct })
}

/// Set by the Ctrl-C handler; the run stops, kills its processes and cleans up.
fn interrupted() -> Arc<AtomicBool> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let f = Arc::new(AtomicBool::new(false));
        let g = f.clone();
        // If a handler is already installed (tests running several simulations), keep it.
        let _ = ctrlc::set_handler(move || g.store(true, Ordering::SeqCst));
        f
    })
    .clone()
}

/// Sends the segment's descriptor to every process that connects to a Unix socket at `path`
/// (a thread for the rest of the run); returns the `--segment` argument that names it.
#[cfg(target_os = "linux")]
fn serve_descriptor(seg: &Arc<SharedSegment>, path: &Path, clients: u32) -> Res<String> {
    let listener = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| format!("cannot listen on {} to pass the segment's descriptor: {e}", path.display()))?;
    let seg = seg.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(clients as usize) {
            match stream.map_err(|e| e.to_string()).and_then(|s| seg.send_fd(&s).map_err(|e| e.to_string())) {
                Ok(()) => {}
                Err(e) => {
                    eprintln!("framebus simulate: passing the segment's descriptor failed: {e}");
                    break;
                }
            }
        }
    });
    Ok(format!("unix:{}", path.display()))
}

#[cfg(not(target_os = "linux"))]
fn serve_descriptor(_: &Arc<SharedSegment>, _: &Path, _: u32) -> Res<String> {
    Err("anonymous backings are passed by descriptor, which needs Linux: use --backing posix".into())
}

/// Runs a simulation and returns its report (also printed, and written as asked).
///
/// # Errors
/// Bad options, a missing or unsupported video, a process that failed (its own error is
/// printed on stderr), Ctrl-C, or a run that overran its time budget.
pub fn simulate(a: &SimArgs) -> Res<SimReport> {
    let p = plan(a)?;
    let stop = interrupted();
    let exe = std::env::current_exe()?;
    let id = std::process::id();
    let dir = WorkDir(std::env::temp_dir().join(format!("framebus-sim-{id}")));
    std::fs::create_dir_all(&dir.0)?;
    // The scratch directory holds the socket that hands out the segment's descriptor: it must
    // be ours and closed to others (a directory someone else made first is refused).
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot make {} private: {e}", dir.0.display()))?;
        if std::fs::metadata(&dir.0)?.uid() != rustix::process::getuid().as_raw() {
            return Err(format!("{} belongs to another user: remove it and run again", dir.0.display()).into());
        }
    }
    let info = Source::open(&p.video)?.info();
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
    let frames_seg = Arc::new(match a.backing {
        BackingArg::Posix => SharedSegment::create(&name, &spec, CreateOptions::default())?,
        BackingArg::Memfd => SharedSegment::create_memfd(&name, &spec)?,
        BackingArg::Dmabuf => SharedSegment::create_dmabuf("system", &name, &spec)?,
        BackingArg::Udmabuf => SharedSegment::create_udmabuf(&name, &spec)?,
    });
    // An anonymous backing has no name to open: the producer and the workers receive its
    // descriptor over a Unix socket (`--segment unix:PATH`).
    let frames_arg = match a.backing {
        BackingArg::Posix => name.clone(),
        _ => serve_descriptor(&frames_seg, &dir.0.join("frames.sock"), p.workers + 1)?,
    };
    let record =
        |slots| SegmentSpec::new(FrameGeometry::new(RECORD_BYTES, 1, PixelFormat::Raw), slots).with_max_consumers(1);
    let ev_name = format!("{name}.ev");
    let _events = SharedSegment::create(&ev_name, &record(256), CreateOptions::default())?;
    let out_name = format!("{name}.out");
    let out_spec =
        record(64).with_pattern(Pattern::Broadcast).with_policy(OverflowPolicy::DropOldest).with_max_consumers(8);
    let _out = SharedSegment::create(&out_name, &out_spec, CreateOptions::default())?;
    let result_names: Vec<String> = (0..p.workers).map(|k| format!("{name}.r{k}")).collect();
    let _results = result_names
        .iter()
        .map(|n| SharedSegment::create(n, &record(64), CreateOptions::default()))
        .collect::<Result<Vec<_>, _>>()?;

    // A worker's longest time on a frame, and how long a frame can wait for a worker: every
    // slot ahead of it in the queue.
    let service_ms =
        (p.profile.call_ms(p.workers) + p.profile.jitter_ms) * a.time_scale * (1.0 + p.overhead_pct / 100.0);
    let deadline_ms = (service_ms * (f64::from(p.slots) / f64::from(p.workers) + 4.0) + 1000.0) as u64;
    let report = |who: &str| dir.0.join(format!("{who}.json"));
    let mut procs = Procs { list: Vec::new() };
    spawn(
        &mut procs,
        &exe,
        "collector",
        &[
            "--events".into(),
            ev_name.clone(),
            "--results".into(),
            result_names.join(","),
            "--deadline-ms".into(),
            deadline_ms.to_string(),
            "--out".into(),
            out_name.clone(),
            "--report".into(),
            report("collector").display().to_string(),
        ],
        &stop,
    )?;
    for (k, r) in result_names.iter().enumerate() {
        spawn(
            &mut procs,
            &exe,
            "worker",
            &[
                "--segment".into(),
                frames_arg.clone(),
                "--results".into(),
                r.clone(),
                "--index".into(),
                k.to_string(),
                "--dlc".into(),
                dlc.display().to_string(),
                "--profile".into(),
                p.profile.name.clone(),
                "--overhead".into(),
                p.overhead_pct.to_string(),
                "--report".into(),
                report(&format!("worker-{k}")).display().to_string(),
            ],
            &stop,
        )?;
    }
    let mut producer_args = vec![
        "--segment".into(),
        frames_arg.clone(),
        "--events".into(),
        ev_name.clone(),
        "--video".into(),
        p.video.display().to_string(),
        "--fps".into(),
        p.fps.to_string(),
        "--frames".into(),
        p.frames.to_string(),
        "--report".into(),
        report("producer").display().to_string(),
    ];
    if a.max_speed {
        producer_args.push("--max-speed".into());
    }
    let start = Instant::now();
    spawn(&mut procs, &exe, "producer", &producer_args, &stop)?;

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
        let t = start.elapsed().as_secs_f64();
        let mut collector_done = false;
        for (role, child) in &mut procs.list {
            match child.try_wait()? {
                None => {}
                Some(s) if s.success() => collector_done |= role == "collector",
                Some(s) => {
                    // Ctrl-C reaches every process of the terminal's group: the role may have
                    // died of it before our handler ran.
                    std::thread::sleep(Duration::from_millis(50));
                    if stop.load(Ordering::SeqCst) {
                        return Err(INTERRUPTED.into());
                    }
                    return Err(format!("the {role} process failed ({s}); its error is above").into());
                }
            }
        }
        for (i, (role, child)) in procs.list.iter().enumerate() {
            let key = if role == "worker" { format!("worker-{}", i - 1) } else { role.clone() };
            let rss = private_rss_bytes(child.id());
            if rss > 0 {
                samples.entry(key).or_default().push((t, rss));
            }
        }
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
    let give_up = Instant::now() + Duration::from_secs(10);
    for (role, child) in &mut procs.list {
        loop {
            match child.try_wait()? {
                Some(s) if s.success() => break,
                Some(s) => return Err(format!("the {role} process failed ({s}); its error is above").into()),
                None if Instant::now() > give_up => {
                    return Err(format!("the {role} process did not exit 10 s after the end").into())
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
    let wall_s = start.elapsed().as_secs_f64();
    let c: CollectorReport = read_report(&report("collector"), "the collector")?;
    let pr: ProducerReport = read_report(&report("producer"), "the producer")?;
    let ws: Vec<WorkerReport> = (0..p.workers)
        .map(|k| read_report(&report(&format!("worker-{k}")), &format!("worker {k}")))
        .collect::<Result<_, _>>()?;

    let mut peak = BTreeMap::new();
    peak.insert("producer".to_string(), pr.peak_rss_bytes);
    peak.insert("collector".to_string(), c.peak_rss_bytes);
    for w in &ws {
        peak.insert(format!("worker-{}", w.index), w.peak_rss_bytes);
    }
    let mut memory = BTreeMap::new();
    let mut flat = true;
    for (who, series) in &samples {
        let last = series.last().map_or(0, |s| s.1);
        let warm_t = series.last().map_or(0.0, |s| s.0) / 4.0;
        let warm = series.iter().find(|s| s.0 >= warm_t).map_or(0, |s| s.1);
        flat &= last.saturating_sub(warm) < 16 << 20;
        memory.insert(
            who.clone(),
            Memory {
                peak_rss_bytes: peak.get(who).copied().unwrap_or(0),
                private_after_warmup_bytes: warm,
                private_end_bytes: last,
            },
        );
    }
    let span = c.span_s.max(1e-9);
    let r = SimReport {
        preset: a.preset.clone(),
        video: p.video.display().to_string(),
        geometry: format!("{}x{} {:?}", info.width, info.height, p.format),
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
            ("drop_oldest".to_string(), pr.dropped_oldest),
            ("drop_newest".to_string(), pr.dropped_newest),
        ]
        .into_iter()
        .collect(),
        unexpected_results: c.unexpected_results,
        late_results: c.late_results,
        fps_in: c.published as f64 / pr.wall_s.max(1e-9),
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
        segment_bytes: frames_seg.segment().layout().total_size,
        utilisation: ws.iter().map(|w| w.busy_ms / w.wall_ms.max(1e-9)).collect(),
        frames_per_worker: ws.iter().map(|w| w.frames).collect(),
        decode_ms_mean: pr.decode_ms_mean,
        peak_rss_bytes: peak,
        memory,
        memory_flat: flat,
        wall_s,
        timeline: c.timeline,
    };
    print_table(&r);
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&r)?)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &a.plot {
        super::plot::write_svg(&r, path)?;
        println!("wrote {}", path.display());
    }
    Ok(r)
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
    println!("  frames     in {}  out {}  dropped {} {:?}", r.frames_in, r.frames_out, drops, r.dropped);
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
