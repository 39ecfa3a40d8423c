//! The `framebus` command: segment hygiene today (`ls`, `gc`, `inspect`); the pipeline roles
//! (`producer`, `worker`, `collector`) arrive with step 3.

mod bench;
mod inspect;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Ls => ls(),
        Command::Gc { dry_run } => gc(dry_run),
        Command::Inspect { name } => inspect::run(&name).map_err(Into::into),
        Command::Bench { which: _, quick, json } => {
            bench::transport(quick, json.as_deref()).map_err(|e| e.to_string().into())
        }
        Command::BenchPeer { args } => bench::peer(&args).map_err(|e| e.to_string().into()),
        Command::Probe { video } => probe(&video),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("framebus: {e}");
            ExitCode::FAILURE
        }
    }
}

type Res = Result<(), Box<dyn std::error::Error>>;

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
