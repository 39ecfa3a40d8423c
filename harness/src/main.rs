//! The `framebus` command: the simulation (`simulate`) and its roles (`producer`, `worker`),
//! segment hygiene (`ls`, `gc`, `inspect`), benchmarks and `probe`.
//!
//! This file only dispatches: each command's arguments and behaviour live in its own module
//! (`framebus_harness::sim::roles::*`, `sim::run`, `cli`, `bench`).

mod bench;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use framebus_harness::sim::roles::{self, producer, worker};
use framebus_harness::sim::run::{self, SimArgs};
use framebus_harness::{cli, Res};

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
    /// segment, N workers running an SNPE-shaped accelerator runtime on the slots in place and
    /// posting results, read back in frame order; a worker or producer that dies is restarted.
    /// Prints latency, drops and losses by cause, restarts, throughput and memory.
    #[command(after_help = run::plan::help())]
    Simulate(SimArgs),
    /// Run a pipeline: a video source decoded into a segment, N worker processes of your own
    /// command (any language) or the stub runtime, their results read back in frame order and
    /// written as JSON Lines (one line per frame, skips with their cause). A worker that dies is
    /// restarted; its frame is reported lost.
    #[command(after_help = framebus_harness::runtime::config::help())]
    Run(framebus_harness::runtime::config::RunArgs),
    // The roles' help is their `Args`'s doc comment, in their own modules.
    Producer(producer::Args),
    Worker(worker::Args),
    /// List framebus segments on this machine, with geometry and whether their creator lives.
    Ls,
    /// Remove segments whose creator is dead or whose header is unreadable.
    Gc {
        /// Only print what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// A live view of a pipeline from its segment: frames in and out per second, drops, late
    /// results, reclaims, each worker's rate and busy share, slots by state, the reader.
    Top(framebus_harness::cli::top::TopArgs),
    /// Print a segment's header, counters, slots and consumers.
    Inspect {
        /// Segment name (as given to create; without the `framebus.` prefix).
        name: String,
    },
    /// Benchmarks. `transport`: cross-process handoff latency and throughput for 64 B, 720p
    /// and 1080p frames next to the cache-line, futex and memcpy limits measured in the same run.
    /// `results`: a worker's post to the ordered reader next to the frame handoff, same run.
    Bench {
        /// Which benchmark: `transport` (the handoff next to the machine's limits) or `results`
        /// (the ordered results path next to the handoff, and the runtime's cost per frame).
        #[arg(value_parser = ["transport", "results"])]
        which: String,
        /// Fewer iterations (a smoke run; numbers are rough).
        #[arg(long)]
        quick: bool,
        /// Also write the figures as JSON to this file.
        #[arg(long, value_name = "PATH")]
        json: Option<PathBuf>,
    },
    /// Read a video file: print its geometry and frame rate, decode every frame, report the
    /// decoding speed and a checksum of the decoded frames.
    Probe {
        /// Video file (any supported source: MP4 with H.264, Y4M).
        video: PathBuf,
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
    if matches!(cli.command, Command::Producer(_) | Command::Worker(_)) {
        roles::die_with_parent();
    }
    let r: Res<()> = match cli.command {
        Command::Ls => cli::ls(),
        Command::Gc { dry_run } => cli::gc(dry_run),
        Command::Inspect { name } => cli::inspect::run(&name).map_err(Into::into),
        Command::Top(a) => cli::top::run(&a),
        Command::Bench { which, quick, json } => match which.as_str() {
            "results" => bench::results(quick),
            _ => bench::transport(quick, json.as_deref()),
        }
        .map_err(|e| e.to_string().into()),
        Command::BenchPeer { args } => bench::peer(&args).map_err(|e| e.to_string().into()),
        Command::Probe { video } => cli::probe(&video),
        Command::Simulate(a) => run::simulate(&a).map(|r| {
            if r.order_violations + r.integrity_failures + r.unexpected_results > 0 {
                eprintln!("framebus: the run delivered frames out of order or altered: see the checks line");
                std::process::exit(2);
            }
            if !r.accounted {
                eprintln!("framebus: frames are unaccounted for (in != out + dropped + lost): see the frames line");
                std::process::exit(2);
            }
        }),
        Command::Run(a) => framebus_harness::runtime::config::main(&a),
        Command::Producer(a) => producer::run(&a).and_then(|r| roles::emit(&r, a.report.as_deref())),
        Command::Worker(a) => worker::run(&a).and_then(|r| roles::emit(&r, a.report.as_deref())),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("framebus: {e}");
            ExitCode::FAILURE
        }
    }
}
