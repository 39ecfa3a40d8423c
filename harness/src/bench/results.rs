//! `framebus bench results`: the ordered results path next to the frame handoff, measured in the
//! same run on the same frames, and the runtime's own cost per frame.
//!
//! One child process (`framebus bench-peer post …`) is the worker: it claims each frame, takes
//! the time, and posts `[seq, claimed_ns, posted_ns]` as the frame's result. This process
//! publishes one frame at a time and reads the results in order, so nothing queues: per frame,
//! - handoff: publish → the worker holds the frame;
//! - results path: the worker's post → the ordered reader has the result;
//! - round trip: publish → the ordered result.
//!
//! Both spinning (each side polls) and sleeping (each side sleeps in the futex: what a pipeline
//! does between frames). Timestamps are the platform's monotonic clock (`now_ns`), which all
//! processes of a boot share.
//!
//! The runtime's cost: `framebus run`'s own process (supervision, the ordered reader, a JSON
//! Lines sink) on the bundled clip at its 25 fps with two stub workers, as CPU time per frame.

use std::time::Duration;

use framebus_platform::core::segment::FrameMeta;
use framebus_platform::core::{ConsumerKind, FrameGeometry, Next, PixelFormat, SegmentSpec};
use framebus_platform::{now_ns, wait, CreateOptions, SharedSegment};

use super::common::{name, ready, Peer, Res, Row, TIMEOUT};

/// Bytes of the worker's result: seq, claimed_ns, posted_ns.
const RESULT: usize = 24;

fn spec() -> SegmentSpec {
    SegmentSpec::new(FrameGeometry::new(1280, 720, PixelFormat::Bgr24), 4).with_max_consumers(2).with_results(1024, 64)
}

/// One round of `iters` frames; returns (handoff, results path, round trip) samples in ns.
fn round(sleep: bool, iters: u64) -> Res<[Vec<u64>; 3]> {
    let n = name(&format!("r{}", u8::from(sleep)));
    let s = SharedSegment::create(&n, &spec(), CreateOptions::default())?;
    let seg = s.segment();
    let mut p = s.attach_producer()?;
    let mut reader = s.attach_reader()?;
    let peer = Peer::spawn(&["post", &n, &iters.to_string(), if sleep { "sleep" } else { "spin" }])?;
    let mut out: [Vec<u64>; 3] = Default::default();
    let mut buf = [0u8; 64];
    for i in 0..iters {
        let mut slot = p.begin()?;
        slot.write(0, &i.to_le_bytes());
        let published = now_ns();
        wait::publish(slot, FrameMeta { payload_len: 8, ..FrameMeta::default() }, &seg);
        let next = if sleep {
            wait::next_result(&mut reader, &mut buf, TIMEOUT)?
        } else {
            loop {
                match reader.next(&mut buf)? {
                    Next::Pending { .. } => std::hint::spin_loop(),
                    n => break n,
                }
            }
        };
        let delivered = now_ns();
        let Next::Result { seq, len, .. } = next else {
            return Err(format!("frame {i}: expected its result, got {next:?}").into());
        };
        let w = |k: usize| u64::from_le_bytes(buf[k * 8..k * 8 + 8].try_into().expect("8 bytes"));
        if seq != i || len != RESULT || w(0) != i {
            return Err(format!("frame {i}: result for {seq} ({len} bytes, says {})", w(0)).into());
        }
        out[0].push(w(1).saturating_sub(published));
        out[1].push(delivered.saturating_sub(w(2)));
        out[2].push(delivered.saturating_sub(published));
    }
    p.finish();
    peer.finish()?;
    Ok(out)
}

/// The worker side (`framebus bench-peer post NAME ITERS spin|sleep`).
pub fn post_peer(n: &str, iters: u64, sleep: bool) -> Res<()> {
    let s = SharedSegment::open(n)?;
    let mut c = s.register(ConsumerKind::Worker)?;
    ready()?;
    for _ in 0..iters {
        let f = wait::claim_spinning(&mut c, TIMEOUT, if sleep { 0 } else { u32::MAX })?;
        let claimed = now_ns();
        let mut b = [0u8; 8];
        c.read(&f, 0, &mut b)?;
        let mut r = [0u8; RESULT];
        r[..8].copy_from_slice(&b);
        r[8..16].copy_from_slice(&claimed.to_le_bytes());
        r[16..].copy_from_slice(&now_ns().to_le_bytes());
        wait::post(&mut c, &f, &r, Duration::from_secs(5))?;
        wait::release(&mut c, f)?;
    }
    Ok(())
}

/// CPU time of this process so far, ns (all its threads).
fn cpu_ns() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        (t.tv_sec as u64) * 1_000_000_000 + t.tv_nsec as u64
    }
    #[cfg(not(target_os = "linux"))]
    0
}

/// Samples the runtime's CPU time and the frames published at each tick of a running pipeline.
struct CpuWatch(Vec<(u64, u64)>);

impl framebus_harness::runtime::Observer for CpuWatch {
    fn tick(&mut self, seg: &SharedSegment, _: &framebus_harness::runtime::supervise::Procs, _: Duration) {
        self.0.push((cpu_ns(), seg.segment().stats().write_pos));
    }
}

/// What the runtime's own process costs.
struct Cost {
    /// CPU per frame over the whole run, start-up (spawning the processes) included, µs
    whole_us: f64,
    /// CPU per frame while frames flow (between the first and the last tick that saw frames), µs
    steady_us: f64,
    /// CPU while frames flow, share of one core
    steady_core: f64,
    frames: u64,
    secs: f64,
}

/// `framebus run`'s own CPU per frame.
fn runtime_cost(frames: u64) -> Res<Cost> {
    use framebus_harness::runtime::{self, config};
    let dir = runtime::supervise::WorkDir::create("bench", std::process::id()).map_err(|e| e.to_string())?;
    let a = config::RunArgs {
        name: Some(name("rt")),
        video: Some(framebus_harness::sim::run::DEFAULT_VIDEO.into()),
        frames: Some(frames),
        workers: Some(2),
        profile: Some("custom:5,1,0".into()),
        policy: Some(framebus_platform::core::OverflowPolicy::Block),
        ..config::RunArgs::default()
    };
    let (p, _) = config::resolve(&a, &dir.0).map_err(|e| e.to_string())?;
    let mut sink = runtime::sink::Jsonl::new(std::io::sink(), "nothing");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut watch = CpuWatch(Vec::new());
    let cpu = cpu_ns();
    let s = runtime::run(&p, &mut [&mut sink], &mut watch, &stop).map_err(|e| e.to_string())?;
    let used = cpu_ns() - cpu;
    if s.counts.frames_out != frames {
        return Err(format!("the runtime delivered {} of {frames} results", s.counts.frames_out).into());
    }
    let flowing: Vec<&(u64, u64)> = watch.0.iter().filter(|(_, n)| *n > 0).collect();
    let (first, last) = (flowing.first().ok_or("no tick saw frames")?, flowing.last().ok_or("no tick")?);
    let (dcpu, dn) = (last.0 - first.0, (last.1 - first.1).max(1));
    Ok(Cost {
        whole_us: used as f64 / 1e3 / frames as f64,
        steady_us: dcpu as f64 / 1e3 / dn as f64,
        steady_core: dcpu as f64 / (dn as f64 / 25.0) / 1e9,
        frames,
        secs: s.wall.as_secs_f64(),
    })
}

/// Runs the benchmark and prints the table.
///
/// # Errors
/// A segment, the peer, or the runtime failed.
pub fn results(quick: bool) -> Res<()> {
    let (rounds, iters) = if quick { (1, 1_000) } else { (3, 20_000) };
    let labels = [
        "handoff: publish -> worker holds the frame",
        "results: post -> ordered reader has it",
        "round trip: publish -> ordered result",
    ];
    let mut rows: Vec<Row> = Vec::new();
    for r in 1..=rounds {
        eprint!("\rround {r}/{rounds}");
        for sleep in [false, true] {
            let how = if sleep { "sleeping" } else { "spinning" };
            for (k, samples) in round(sleep, if sleep { iters / 4 } else { iters })?.into_iter().enumerate() {
                let name = format!("{} ({how})", labels[k]);
                match rows.iter_mut().find(|row| row.name == name) {
                    Some(row) => row.samples.extend(samples),
                    None => rows.push(Row { name, unit: "ns", samples }),
                }
            }
        }
    }
    eprintln!();
    for r in &mut rows {
        r.samples.sort_unstable();
    }
    println!("{:<62} {:>9} {:>9} {:>9}", "row (same run, same frames, 720p BGR, one at a time)", "p50", "p99", "p99.9");
    for r in &rows {
        println!("{:<62} {:>9.0} {:>9.0} {:>9.0}  {}", r.name, r.at(0.5), r.at(0.99), r.at(0.999), r.unit);
    }
    for how in ["spinning", "sleeping"] {
        let find =
            |k: usize| rows.iter().find(|r| r.name == format!("{} ({how})", labels[k])).map_or(f64::NAN, |r| r.at(0.5));
        println!("{how}: results path / handoff = {:.2} (p50)", find(1) / find(0));
    }
    let c = runtime_cost(if quick { 50 } else { 132 })?;
    println!(
        "runtime (supervision + ordered reader + JSON Lines), {} frames of the bundled clip at 25 fps, 2 stub workers, {:.1} s:\n  \
         {:.0} us CPU per frame while frames flow ({:.2}% of one core); {:.0} us per frame with start-up (spawning the processes)",
        c.frames,
        c.secs,
        c.steady_us,
        c.steady_core * 100.0,
        c.whole_us
    );
    Ok(())
}
