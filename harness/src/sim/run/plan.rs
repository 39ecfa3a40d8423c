//! The plan of a run: the presets, the options of `framebus simulate`, and their validation
//! into the settings every other part of the run works from.

use std::path::PathBuf;

use framebus_platform::core::{OverflowPolicy, PixelFormat};

use crate::sim::profile::Profile;
use crate::sim::Res;
use crate::video;
use crate::vocab::{self, BackingArg};

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
    /// Start from a preset (see the list below).
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// Video file (MP4 with H.264, or Y4M) [default: the bundled 720p clip].
    #[arg(long, value_name = "PATH")]
    pub video: Option<PathBuf>,
    /// Worker processes (1-15) [default: 4].
    #[arg(long, value_name = "N")]
    pub workers: Option<u32>,
    /// Runtime profile: one of the list below, or custom:BASE_MS,JITTER_MS,CONTENTION [default: aip].
    #[arg(long, value_name = "P")]
    pub profile: Option<String>,
    /// Frames per second of the simulated camera [default: the file's].
    #[arg(long, value_name = "F")]
    pub fps: Option<f64>,
    /// What the producer does when every slot is busy [default: drop-oldest, a live camera].
    #[arg(long, value_name = "POLICY", value_parser = vocab::parser::<OverflowPolicy>())]
    pub policy: Option<OverflowPolicy>,
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
    /// Pixel format of the slots [default: bgr24] (the stub model takes packed frames).
    #[arg(long, value_name = "FORMAT", value_parser = vocab::parser_of(&SIM_FORMATS))]
    pub format: Option<PixelFormat>,
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
    /// Report the frame a dying worker held as lost (`worker_died`) instead of giving it, once,
    /// to another worker (the default).
    #[arg(long)]
    pub lost_on_death: bool,
    /// Where the frames segment lives: posix (a named /dev/shm object), memfd (anonymous,
    /// its descriptor passed to each process over a Unix socket), dmabuf (a dma-buf heap,
    /// /dev/dma_heap/system) or udmabuf (a memfd exported through /dev/udmabuf); the last two
    /// stop with a clear message where the kernel lacks the device.
    #[arg(long, value_enum, default_value_t = BackingArg::Posix)]
    pub backing: BackingArg,
    /// Name the segments NAME (frames; with --backing posix only, the others have no name),
    /// and NAME.out (the results in frame order, a broadcast segment other programs can
    /// subscribe to) [default: sim<pid>].
    /// See examples/python/opencv_overlay.py.
    // This text is clap's --help, where `[default: …]` is the convention; rustdoc would read it
    // as a link and `<pid>` as a tag.
    #[allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

/// The pixel formats a simulation offers (the stub model takes packed frames).
pub const SIM_FORMATS: [PixelFormat; 3] = [PixelFormat::Bgr24, PixelFormat::Rgb24, PixelFormat::Gray8];

/// The text after `framebus simulate --help`'s options: profiles, presets, examples — built from
/// their tables.
pub fn help() -> String {
    let mut s = format!("Profiles:\n{}\nPresets:\n", Profile::help());
    for p in PRESETS {
        s += &format!("  {:<11} {}\n", p.name, p.about);
    }
    s += "\nExamples:\n  framebus simulate                         # the bundled 720p clip, 4 x aip, 20 s\n  framebus simulate --preset board-dsp6 --json out.json --plot out.svg\n  framebus simulate --workers 2 --profile custom:30,5,0.1 --policy block --frames 200\n";
    s
}

/// Resolved settings of a run (the preset's, overridden by explicit options, validated).
pub struct Plan {
    /// video file
    pub video: PathBuf,
    /// worker processes
    pub workers: u32,
    /// runtime profile
    pub profile: Profile,
    /// overflow policy of the frames segment
    pub policy: OverflowPolicy,
    /// slots in the frames segment
    pub slots: u32,
    /// frames to produce
    pub frames: u64,
    /// frame rate of the simulated camera
    pub fps: f64,
    /// pixel format of the slots
    pub format: PixelFormat,
    /// worker-side work around each model call, % of the call
    pub overhead_pct: f64,
}

/// Resolves and checks the options.
///
/// # Errors
/// One line per bad option, saying what is accepted; a video that cannot be opened.
pub fn plan(a: &SimArgs) -> Res<Plan> {
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
    let policy = a.policy.unwrap_or(preset.map_or(OverflowPolicy::DropOldest, |p| p.policy));
    let slots = a.slots.unwrap_or(workers + 3);
    if slots < 2 {
        return Err("--slots: at least 2".into());
    }
    let src = video::open(&video)?;
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
    let format = a.format.unwrap_or(PixelFormat::Bgr24);
    let overhead_pct = a.overhead.or(preset.map(|p| p.overhead_pct)).unwrap_or(0.0);
    if !(0.0..=1000.0).contains(&overhead_pct) {
        return Err(format!("--overhead {overhead_pct}: use 0 to 1000 (%)").into());
    }
    if !(a.time_scale > 0.0 && a.time_scale <= 100.0) {
        return Err(format!("--time-scale {}: use a factor in (0, 100]", a.time_scale).into());
    }
    Ok(Plan { video, workers, profile, policy, slots, frames, fps, format, overhead_pct })
}
