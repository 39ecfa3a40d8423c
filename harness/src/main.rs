//! The `framebus` command: the simulation (`simulate`) and its roles (`producer`, `worker`,
//! `collector`), segment hygiene (`ls`, `gc`, `inspect`), benchmarks and `probe`.

mod bench;
mod inspect;

use std::process::ExitCode;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use framebus_harness::sim::{self, run::SimArgs};
use framebus_platform::SharedSegment;

/// Zero-copy video frames between processes through shared memory.
#[derive(Parser)]
#[command(name = "framebus", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a multi-process inference simulation on recorded video: a producer decoding into a
    /// segment, N workers running an SNPE-shaped accelerator runtime on the slots in place, a
    /// collector restoring frame order; prints latency, drops, throughput and memory.
    #[command(after_help = simulate_help())]
    Simulate(SimArgs),
    /// Decode a video into a segment's slots at its frame rate: the producer `simulate` starts,
    /// and a camera stand-in on its own (`--create`) for your own consumers, e.g. Python:
    /// `framebus producer --video clip.mp4 --segment cam0 --create` then `framebus.open("cam0")`.
    Producer {
        /// frames segment (opened; with --create, created for the video's size and removed at exit)
        #[arg(long)]
        segment: String,
        /// create the segment instead of opening an existing one
        #[arg(long)]
        create: bool,
        /// with --create: pixel format of the slots (bgr24, rgb24, gray8, nv12, i420)
        #[arg(long, default_value = "bgr24", requires = "create")]
        format: String,
        /// with --create: number of slots
        #[arg(long, default_value_t = 8, requires = "create")]
        slots: u32,
        /// with --create: overflow policy
        #[arg(long, value_enum, default_value_t = sim::run::PolicyArg::DropOldest, requires = "create")]
        policy: sim::run::PolicyArg,
        /// with --create: broadcast to subscribers instead of a work queue for workers
        #[arg(long, requires = "create")]
        broadcast: bool,
        /// events segment for the collector (only under `simulate`)
        #[arg(long)]
        events: Option<String>,
        /// video file (MP4/H.264 or Y4M)
        #[arg(long)]
        video: PathBuf,
        /// frames per second [default: the file's]
        #[arg(long)]
        fps: Option<f64>,
        /// frames to produce (the clip loops) [default: until Ctrl-C]
        #[arg(long)]
        frames: Option<u64>,
        /// do not pace
        #[arg(long)]
        max_speed: bool,
        /// write the report (JSON) here instead of stdout
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Role: claim frames and run the accelerator on each slot in place (started by `simulate`).
    Worker {
        /// frames segment
        #[arg(long)]
        segment: String,
        /// this worker's results segment
        #[arg(long)]
        results: String,
        /// worker number
        #[arg(long)]
        index: u32,
        /// model container for the SNPE runtime
        #[arg(long)]
        dlc: PathBuf,
        /// runtime profile (selects the SNPE runtime)
        #[arg(long)]
        profile: String,
        /// worker-side work around each call, % of the call
        #[arg(long, default_value_t = 0.0)]
        overhead: f64,
        /// do not register the slots with the runtime by (fd, offset); only move the buffer
        /// address per frame (the path for runtimes or platforms without fd import)
        #[arg(long)]
        no_register: bool,
        /// write the report (JSON) here instead of stdout
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Role: restore frame order, check and measure (started by `simulate`).
    Collector {
        /// events segment from the producer
        #[arg(long)]
        events: String,
        /// results segments, comma-separated, one per worker
        #[arg(long, value_delimiter = ',')]
        results: Vec<String>,
        /// how long a later result waits for a missing one, ms
        #[arg(long, default_value_t = 5000)]
        deadline_ms: u64,
        /// publish the ordered results into this (existing, broadcast) segment
        #[arg(long)]
        out: Option<String>,
        /// write the report (JSON) here instead of stdout
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// List framebus segments on this machine, with geometry and whether their creator lives.
    Ls,
    /// Remove segments whose creator is dead or whose header is unreadable.
    Gc {
        /// Only print what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print a segment's header, counters, slots and consumers.
    Inspect {
        /// Segment name (as given to create; without the `framebus.` prefix).
        name: String,
    },
    /// Benchmarks. `transport`: cross-process handoff latency and throughput for 64 B, 720p
    /// and 1080p frames next to the cache-line, futex and memcpy limits measured in the same run.
    Bench {
        /// Which benchmark (only `transport` so far).
        #[arg(value_parser = ["transport"])]
        which: String,
        /// Fewer iterations (a smoke run; numbers are rough).
        #[arg(long)]
        quick: bool,
        /// Also write the figures as JSON to this file.
        #[arg(long, value_name = "PATH")]
        json: Option<std::path::PathBuf>,
    },
    /// Read a video file: print its geometry and frame rate, decode every frame, report the
    /// decoding speed and a checksum of the decoded frames.
    Probe {
        /// MP4 file with an H.264 track.
        video: std::path::PathBuf,
    },
    /// Internal: the child process of a benchmark row.
    #[command(hide = true)]
    BenchPeer {
        /// role and arguments
        args: Vec<String>,
    },
}

/// A role started by `simulate` dies with it: if the orchestrator is killed outright (no chance
/// to clean up), its roles do not run on; `framebus gc` then removes the segments it left.
fn die_with_parent() {
    #[cfg(target_os = "linux")]
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Producer { .. } | Command::Worker { .. } | Command::Collector { .. }) {
        die_with_parent();
    }
    let r = match cli.command {
        Command::Ls => ls(),
        Command::Gc { dry_run } => gc(dry_run),
        Command::Inspect { name } => inspect::run(&name).map_err(Into::into),
        Command::Bench { which: _, quick, json } => {
            bench::transport(quick, json.as_deref()).map_err(|e| e.to_string().into())
        }
        Command::BenchPeer { args } => bench::peer(&args).map_err(|e| e.to_string().into()),
        Command::Probe { video } => probe(&video),
        Command::Simulate(a) => sim::run::simulate(&a).map(|r| {
            if r.order_violations + r.integrity_failures + r.unexpected_results > 0 {
                eprintln!("framebus: the run delivered frames out of order or altered: see the checks line");
                std::process::exit(2);
            }
        }),
        Command::Producer {
            segment,
            create,
            format,
            slots,
            policy,
            broadcast,
            events,
            video,
            fps,
            frames,
            max_speed,
            report,
        } => sim::producer::create_args(create, &format, slots, policy, broadcast).and_then(|create| {
            let a = sim::producer::ProducerArgs { segment, events, create, video, fps, frames, max_speed };
            sim::producer::run(&a).and_then(|r| emit(&r, report.as_deref()))
        }),
        Command::Worker { segment, results, index, dlc, profile, overhead, no_register, report } => {
            sim::profile::Profile::parse(&profile).map_err(Into::into).and_then(|profile| {
                let a = sim::worker::WorkerArgs {
                    segment,
                    results,
                    index,
                    dlc,
                    profile,
                    overhead_pct: overhead,
                    register: !no_register && cfg!(target_os = "linux"),
                };
                sim::worker::run(&a).and_then(|r| emit(&r, report.as_deref()))
            })
        }
        Command::Collector { events, results, deadline_ms, out, report } => {
            let a = sim::collector::CollectorArgs { events, results, deadline_ms, out };
            sim::collector::run(&a).and_then(|r| emit(&r, report.as_deref()))
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("framebus: {e}");
            ExitCode::FAILURE
        }
    }
}

type Res = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Writes a role's report as JSON to `path`, or to stdout.
fn emit<T: serde::Serialize>(report: &T, path: Option<&Path>) -> Res {
    let json = serde_json::to_string(report)?;
    match path {
        Some(p) => std::fs::write(p, json).map_err(|e| format!("cannot write {}: {e}", p.display()).into()),
        None => {
            println!("{json}");
            Ok(())
        }
    }
}

fn simulate_help() -> String {
    let mut s = String::from("Profiles:\n");
    for (n, about) in sim::profile::NAMED {
        s += &format!("  {n:<6} {about}\n");
    }
    s += "  custom:BASE_MS,JITTER_MS,CONTENTION  your own (e.g. custom:50,5,0.2)\n\nPresets:\n";
    for p in sim::run::PRESETS {
        s += &format!("  {:<11} {}\n", p.name, p.about);
    }
    s += "\nExamples:\n  framebus simulate                         # the bundled 720p clip, 4 x aip, 20 s\n  framebus simulate --preset board-dsp6 --json out.json --plot out.svg\n  framebus simulate --workers 2 --profile custom:30,5,0.1 --policy block --frames 200\n";
    s
}

fn ls() -> Res {
    let list = SharedSegment::list()?;
    if list.is_empty() {
        println!("no framebus segments");
        return Ok(());
    }
    println!("{:<32} {:>10} {:>6} {:>16} {:<8} creator", "name", "size", "slots", "geometry", "pattern");
    for info in list {
        match &info.header {
            Ok((l, c)) => println!(
                "{:<32} {:>9}M {:>6} {:>16} {:<8} {} ({})",
                info.name,
                l.total_size.div_ceil(1 << 20),
                l.spec.slot_count,
                format!("{}x{} {:?}", l.spec.geometry.width, l.spec.geometry.height, l.spec.geometry.format),
                format!("{:?}", l.spec.pattern),
                c.id as u32,
                if info.creator_alive { "alive" } else { "DEAD: `framebus gc` removes it" }
            ),
            Err(e) => println!("{:<32} unreadable: {e}", info.name),
        }
    }
    Ok(())
}

fn gc(dry_run: bool) -> Res {
    if dry_run {
        for info in SharedSegment::list()? {
            if !info.creator_alive {
                println!("would remove {}", info.name);
            }
        }
        return Ok(());
    }
    let removed = SharedSegment::gc()?;
    for n in &removed {
        println!("removed {n}");
    }
    println!("{} stale segment(s) removed", removed.len());
    Ok(())
}

fn probe(path: &std::path::Path) -> Res {
    use framebus_harness::video::Mp4Source;
    use framebus_platform::core::PixelFormat;
    let mut src = Mp4Source::open(path)?;
    let info = src.info();
    println!("{}: {}x{} H.264, {:.3} fps, {} frames", path.display(), info.width, info.height, info.fps, info.frames);
    let mut frame = vec![0u8; info.width as usize * info.height as usize * 3];
    let t = std::time::Instant::now();
    let (mut n, mut sum) = (0u64, framebus_platform::core::layout::fnv1a64(&[]));
    while src.next_frame(&mut frame, PixelFormat::Bgr24)? {
        n += 1;
        sum ^= framebus_platform::core::layout::fnv1a64(&frame[..frame.len().min(4096)]).rotate_left(n as u32 % 64);
    }
    let secs = t.elapsed().as_secs_f64();
    println!("decoded {n} frames to BGR24 in {secs:.2} s ({:.0} frames/s); checksum {sum:016x}", n as f64 / secs);
    Ok(())
}
