//! The edge runtime: one pipeline — a frames segment with a results area, a source writing it,
//! N worker processes claiming frames and posting results, the ordered reader feeding the
//! sinks — created, supervised and torn down. `framebus run PIPELINE.toml` ([`config`]) and
//! `framebus simulate` (the recorded clip, stub workers and a report) both run through
//! [`run`].
//!
//! ```text
//! source ──► [slot][slot]… ──claim──► worker k (any process, any language) ──post──► [cell]…
//!               frames segment NAME (work queue + results area)                         │
//!                                                    ordered reader (this process) ◄─────┘
//!                                                          └──► sinks: JSON Lines, MQTT
//! ```
//!
//! The parts, each depending only on those before it: [`supervise`] (processes, readiness,
//! restarts, clean-up) → [`reader`] (the ordered reader and the [`reader::Sink`] trait) →
//! [`sink`] (JSON Lines), [`mqtt`] (a broker), [`metrics`] (Prometheus) → this module →
//! [`config`] (the TOML file and the command line).

pub mod config;
pub mod metrics;
pub mod mqtt;
pub mod reader;
pub mod sink;
pub mod supervise;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use framebus_platform::core::segment::Stats;
use framebus_platform::core::SegmentSpec;
use framebus_platform::SharedSegment;

use crate::vocab::BackingArg;
use crate::Res;
use reader::{Counts, Sink};
use supervise::{serve_descriptor, Launch, Procs, INTERRUPTED};

/// What a launch closure is told about the pipeline it starts a process for.
pub struct Ctx<'a> {
    /// the `--segment` argument a process opens the frames segment with: its name, or
    /// `unix:PATH` for an anonymous backing (the descriptor is handed out there)
    pub segment_arg: &'a str,
    /// the frames segment
    pub segment: &'a Arc<SharedSegment>,
}

/// Starts worker number `k` of a pipeline.
pub type WorkerLaunch = dyn Fn(&Ctx<'_>, u32) -> Launch;
/// Starts a pipeline's source.
pub type SourceLaunch = dyn Fn(&Ctx<'_>) -> Launch;

/// One pipeline, resolved and checked (from a config file, flags, or a simulation's plan).
pub struct Pipeline {
    /// the frames segment's name (with a posix backing, `/dev/shm/framebus.NAME`)
    pub name: String,
    /// the frames segment: geometry, slots, policy, results area
    pub spec: SegmentSpec,
    /// where the segment lives
    pub backing: BackingArg,
    /// worker processes
    pub workers: u32,
    /// how to start worker `k`
    pub worker: Box<WorkerLaunch>,
    /// how to start the source; `None`: an external producer the user starts (the pipeline then
    /// ends when it finishes the stream)
    pub source: Option<Box<SourceLaunch>>,
    /// how long a frame issued by the source may go without an outcome before the reader gives
    /// it up (`deadline`): a worker alive but stuck
    pub deadline: Duration,
    /// stop with an error when the pipeline runs longer than this (a stuck process)
    pub budget: Option<Duration>,
    /// the run's scratch directory (descriptor socket)
    pub dir: PathBuf,
}

/// Looks at a running pipeline about ten times a second (progress bars, memory samples).
pub trait Observer {
    /// The pipeline at `elapsed`.
    fn tick(&mut self, _seg: &SharedSegment, _procs: &Procs, _elapsed: Duration) {}
}

/// An observer that does nothing.
pub struct Quiet;
impl Observer for Quiet {}

impl Observer for metrics::Metrics {
    fn tick(&mut self, seg: &SharedSegment, procs: &Procs, _: Duration) {
        self.update(seg, procs);
    }
}

/// What a pipeline did.
#[derive(Clone, Debug)]
pub struct Summary {
    /// the ordered reader's counts
    pub counts: Counts,
    /// restarts by process key
    pub restarts: BTreeMap<String, u64>,
    /// how each process that died ended, by key, in order
    pub deaths: BTreeMap<String, Vec<String>>,
    /// the segment's counters at the end
    pub stats: Stats,
    /// the segment's late results and posts given up on a full window
    pub late_results: u64,
    /// bytes of the frames segment
    pub segment_bytes: u64,
    /// from the source's start to the end of the stream
    pub wall: Duration,
}

/// How long an external producer (one the runtime does not start) may be dead before the
/// runtime ends the stream for it: long enough for the user's own supervisor to restart it.
pub const PRODUCER_GRACE: Duration = Duration::from_secs(5);

/// How long a stop (Ctrl-C, SIGTERM) waits for the frames in flight before it stops at once.
pub const DRAIN: Duration = Duration::from_secs(5);

/// Raises a flag when dropped: the reader thread stops on every way out of the run.
struct Halt<'a>(&'a AtomicBool);

impl Drop for Halt<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Ends the stream now (taking the producer over: the runtime has stopped its source, or an
/// external one is asked to stop); returns where it ended.
fn end_the_stream(seg: &SharedSegment) -> u64 {
    match seg.attach_producer() {
        Ok(p) => {
            let at = p.next_seq();
            p.finish();
            at
        }
        // A live external producer keeps the stream: it ends it, or the drain's deadline does.
        Err(_) => seg.segment().stats().next_seq,
    }
}

/// An external producer that died and was not replaced within [`PRODUCER_GRACE`]: take it over
/// and end the stream, so that the workers and the reader see the end instead of waiting.
fn end_for_a_dead_producer(seg: &SharedSegment, dead_since: &mut Option<Instant>) {
    let owner = seg.segment().producer_token();
    if owner == 0 || framebus_platform::is_alive(owner) {
        *dead_since = None;
        return;
    }
    let since = *dead_since.get_or_insert_with(Instant::now);
    if since.elapsed() < PRODUCER_GRACE {
        return;
    }
    if let Ok(producer) = seg.attach_producer() {
        eprintln!(
            "framebus run: the producer (pid {}) died and none took over in {} s: ending the stream at seq {}",
            owner as u32,
            PRODUCER_GRACE.as_secs(),
            producer.next_seq()
        );
        producer.finish();
    }
    *dead_since = None;
}

/// Runs `p` to the end of its stream: creates the segment, starts the workers (waiting until
/// each is ready) and then the source, reads the results in order into `sinks`, restarts a
/// process that dies (reaping its consumer entry at once, so the frames it held come out as
/// `worker-died`), and removes the segment on every way out.
///
/// # Errors
/// The segment cannot be made (name in use, no memory); a process cannot start or keeps dying
/// (the message names its command); a sink fails; Ctrl-C (`stop`); the budget passed.
pub fn run(p: &Pipeline, sinks: &mut [&mut dyn Sink], obs: &mut dyn Observer, stop: &AtomicBool) -> Res<Summary> {
    let seg = Arc::new(p.backing.create(&p.name, &p.spec).map_err(|e| match e {
        framebus_platform::Error::AlreadyExists { .. } => format!(
            "segment {} is in use: another pipeline runs under that name (pick another name), or one \
             that died left it (`framebus gc` removes those)",
            p.name
        ),
        e => format!("cannot create segment {}: {e}", p.name),
    })?);
    // An anonymous backing has no name to open: processes receive its descriptor over a Unix
    // socket (`--segment unix:PATH`); restarts connect again.
    let segment_arg = if p.backing.is_named() {
        p.name.clone()
    } else {
        serve_descriptor(&seg, &p.dir.join("frames.sock"), u32::MAX)?
    };
    let ctx = Ctx { segment_arg: &segment_arg, segment: &seg };
    let mut procs = Procs::new();
    for k in 0..p.workers {
        procs.spawn(&format!("worker-{k}"), (p.worker)(&ctx, k), stop)?;
    }
    let start = Instant::now();
    if let Some(source) = &p.source {
        procs.spawn("producer", source(&ctx), stop)?;
    }
    let mut deaths: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut producer_dead_since: Option<Instant> = None;
    let mut draining: Option<Instant> = None;
    let halt = AtomicBool::new(false);
    let deadline = p.deadline;
    let counts = std::thread::scope(|sc| -> Res<Counts> {
        let reader = sc.spawn(|| reader::read_in_order(&seg, deadline, sinks, &halt));
        let _halt = Halt(&halt);
        loop {
            if stop.load(Ordering::SeqCst) {
                match draining {
                    // The first signal: end the stream where the source is, and let the workers
                    // finish what they hold; the reader stops at the end.
                    None => {
                        procs.retire("producer");
                        let at = end_the_stream(&seg);
                        eprintln!(
                            "framebus: stopping: the stream ends at seq {at}; draining the frames in flight (at most {} s; \
                             Ctrl-C again to stop at once)",
                            DRAIN.as_secs()
                        );
                        draining = Some(Instant::now());
                    }
                    Some(t) if t.elapsed() > DRAIN || supervise::SIGNALS.load(Ordering::SeqCst) > 1 => {
                        return Err(INTERRUPTED.into());
                    }
                    Some(_) => {}
                }
            }
            if p.budget.is_some_and(|b| start.elapsed() > b) {
                return Err(format!(
                    "the pipeline overran its {} s budget: a process is stuck (see `framebus inspect {}`)",
                    p.budget.unwrap_or_default().as_secs(),
                    p.name
                )
                .into());
            }
            let died = procs.watch(stop)?;
            if !died.is_empty() {
                // The runtime knows these processes are gone: reclaim their consumer entries
                // now (their held frames come out as worker-died), not at the next reap tick.
                seg.reap();
                for d in died {
                    deaths.entry(d.key).or_default().push(d.status);
                }
            }
            procs.restart_due(stop)?;
            if p.source.is_none() {
                end_for_a_dead_producer(&seg, &mut producer_dead_since);
            }
            obs.tick(&seg, &procs, start.elapsed());
            if reader.is_finished() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        reader.join().map_err(|_| "the ordered reader panicked")?
    })?;
    let wall = start.elapsed();
    // The stream has ended: the source has finished and the workers leave on their own.
    procs.wait_all(Duration::from_secs(10))?;
    if draining.is_some() {
        eprintln!(
            "framebus: drained: {} frames in, {} results out; every process stopped and every segment removed",
            counts.frames_in, counts.frames_out
        );
        return Err(
            "interrupted (Ctrl-C): the frames in flight were drained, every process stopped and every segment removed"
                .into(),
        );
    }
    let s = seg.segment();
    let (late, overflow) = s.result_counts();
    Ok(Summary {
        counts,
        restarts: procs.restarts(),
        deaths,
        stats: s.stats(),
        late_results: late + overflow,
        segment_bytes: s.layout().total_size,
        wall,
    })
}
