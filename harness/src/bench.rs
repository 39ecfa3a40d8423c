//! `framebus bench transport`: cross-process handoff through real named segments, next to the
//! physical limits measured in the same run, as ratios.
//!
//! Every row runs a child process (`framebus bench-peer …`, this same binary) and the parent:
//! - `cache-line round trip`: two processes bounce a counter through one shared cache line each
//!   way (the floor for any shared-memory handoff; ratios are against this row);
//! - `futex wake-up`: the same with both sides asleep in a shared futex, halved (the floor for
//!   a sleeping consumer);
//! - `memcpy`: copying one frame inside one process (what a copying transport pays at least);
//! - `framebus SIZE handoff`: a frame published on segment A, claimed and read by the child,
//!   which answers with a 64-byte frame on segment B; half the round trip is the one-way
//!   latency from `publish` to the consumer holding the frame. Both sides begin (and fill) the
//!   slot they will publish before the clock starts and release after answering, as in a
//!   pipeline where the decoder writes into the slot and the worker releases after inference.
//!   The producer touches 8 bytes of the slot and the consumer reads them: the frame was already
//!   in the slot (decoded in place), which is the point of zero copy;
//! - `framebus SIZE full cycle`: the same with begin, write, publish, claim, read and release
//!   all inside the timed leg (the whole per-frame protocol cost);
//! - `framebus SIZE throughput`: frames per second from one producer to one worker process.
//!
//! `framebus bench results` ([`mod@results`]): the ordered results path next to the handoff.

use std::io::Write;
use std::time::Instant;

use framebus_platform::core::segment::{FrameMeta, WriteSlot};
use framebus_platform::core::sync::{AtomicU64, Ordering};
use framebus_platform::core::{ConsumerKind, Frame, FrameGeometry, PixelFormat, Segment, SegmentSpec};
use framebus_platform::{futex_wait, futex_wake, wait, CreateOptions, SharedSegment};

mod results;
pub use results::results;

mod common;
use common::{name, ready, Peer, Res, Row, TIMEOUT};

const SIZES: [(&str, u32, u32, PixelFormat); 3] = [
    ("64B", 64, 1, PixelFormat::Raw),
    ("720p", 1280, 720, PixelFormat::Bgr24),
    ("1080p", 1920, 1080, PixelFormat::Bgr24),
];

fn spec(w: u32, h: u32, f: PixelFormat) -> SegmentSpec {
    SegmentSpec::new(FrameGeometry::new(w, h, f), 4).with_max_consumers(2)
}

fn percentiles(name: String, ns: Vec<u64>, unit: &'static str) -> Row {
    Row { name, unit, samples: ns }
}

/// Two u64 words on separate cache lines in slot 0 of `seg` (ping at +0, pong at +128).
fn words<'a>(seg: &Segment<'a>) -> (&'a AtomicU64, &'a AtomicU64) {
    let base = seg.region().base().as_ptr().wrapping_add(seg.layout().slot_offset(0) as usize);
    // SAFETY: slot 0 is at least one page (4096 bytes), page-aligned, inside the live mapping
    // that outlives `'a`; both processes access these two words only atomically.
    unsafe { (&*(base as *const AtomicU64), &*(base.wrapping_add(128) as *const AtomicU64)) }
}

fn cache_line(iters: u64) -> Res<Row> {
    let n = name("cl");
    let s = SharedSegment::create(&n, &spec(4096, 1, PixelFormat::Raw), CreateOptions::default())?;
    let (ping, pong) = words(&s.segment());
    let peer = Peer::spawn(&["cacheline", &n, &iters.to_string()])?;
    let mut ns = Vec::with_capacity(iters as usize);
    for i in 1..=iters {
        let t = Instant::now();
        // SYNC POINT bench-ping: pairs with the Acquire load in the peer's `cacheline` loop.
        ping.store(i, Ordering::Release);
        // SYNC POINT bench-pong: Acquire pairs with the peer's Release store of `pong`.
        while pong.load(Ordering::Acquire) != i {
            std::hint::spin_loop();
        }
        ns.push(t.elapsed().as_nanos() as u64);
    }
    peer.finish()?;
    Ok(percentiles("cache-line round trip (limit)".into(), ns, "ns"))
}

/// What one timed sample pays for reading the clock twice (included in every row's figures).
fn clock(iters: u64) -> Row {
    let ns = (0..iters)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(&t);
            t.elapsed().as_nanos() as u64
        })
        .collect();
    percentiles("clock read pair (in every sample)".into(), ns, "ns")
}

fn futex(iters: u64) -> Res<Row> {
    let n = name("fx");
    let s = SharedSegment::create(&n, &spec(4096, 1, PixelFormat::Raw), CreateOptions::default())?;
    let (ping, pong) = words(&s.segment());
    let peer = Peer::spawn(&["futex", &n, &iters.to_string()])?;
    let mut ns = Vec::with_capacity(iters as usize);
    for i in 1..=iters {
        let t = Instant::now();
        ping.store(i, Ordering::Release);
        futex_wake(ping);
        loop {
            let v = pong.load(Ordering::Acquire);
            if v == i {
                break;
            }
            futex_wait(pong, v as u32, TIMEOUT);
        }
        ns.push(t.elapsed().as_nanos() as u64 / 2);
    }
    peer.finish()?;
    Ok(percentiles("futex wake-up, round trip / 2 (limit)".into(), ns, "ns"))
}

fn memcpy(label: &str, bytes: usize, iters: u64) -> Row {
    let src = vec![7u8; bytes];
    let mut dst = vec![0u8; bytes];
    let ns = (0..iters)
        .map(|_| {
            let t = Instant::now();
            dst.copy_from_slice(std::hint::black_box(&src));
            std::hint::black_box(&dst);
            t.elapsed().as_nanos() as u64
        })
        .collect();
    percentiles(format!("memcpy of one {label} frame (limit)"), ns, "ns")
}

/// Begins a frame and writes `v` into its first 8 bytes (the frame "decoded in place");
/// spins while the segment is full.
fn prepare<'p, 'a>(p: &'p mut framebus_platform::core::Producer<'a>, v: u64) -> Res<WriteSlot<'p, 'a>> {
    // Only this process produces, so a slot seen free stays free until `begin` takes it.
    while !p.has_space() {
        std::hint::spin_loop();
    }
    let mut slot = p.begin()?;
    slot.write(0, &v.to_le_bytes());
    Ok(slot)
}

fn publish(slot: WriteSlot<'_, '_>, seg: &Segment<'_>) {
    wait::publish(slot, FrameMeta { payload_len: 8, ..FrameMeta::default() }, seg);
}

/// Publishes one frame touching 8 bytes.
fn send(p: &mut framebus_platform::core::Producer<'_>, seg: &Segment<'_>, v: u64) -> Res<()> {
    publish(prepare(p, v)?, seg);
    Ok(())
}

/// Claims a frame (spinning `spin` claims before sleeping) and reads its 8 bytes.
fn take(c: &mut framebus_platform::core::Consumer<'_>, spin: u32) -> Res<(Frame, u64)> {
    let f = wait::claim_spinning(c, TIMEOUT, spin)?;
    let mut b = [0u8; 8];
    c.read(&f, 0, &mut b)?;
    Ok((f, u64::from_le_bytes(b)))
}

fn recv(c: &mut framebus_platform::core::Consumer<'_>, spin: u32) -> Res<u64> {
    let (f, v) = take(c, spin)?;
    wait::release(c, f)?;
    Ok(v)
}

/// How much of a frame's life one ping-pong leg times.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Leg {
    /// publish → claimed and read: the handoff itself (the slot was begun and filled before
    /// the clock starts, as a decoder fills it; the release happens after the answer is sent).
    Handoff,
    /// begin + write + publish → claim + read + release: the whole per-frame protocol cost.
    Cycle,
}

fn ping_pong(label: &str, w: u32, h: u32, f: PixelFormat, sleep: bool, leg: Leg, iters: u64) -> Res<Row> {
    let tag = format!("{label}{}{}", u8::from(sleep), u8::from(leg == Leg::Handoff));
    let (a, b) = (name(&format!("a{tag}")), name(&format!("b{tag}")));
    let sa = SharedSegment::create(&a, &spec(w, h, f), CreateOptions::default())?;
    let sb = SharedSegment::create(&b, &spec(64, 1, PixelFormat::Raw), CreateOptions::default())?;
    let ga = sa.segment();
    let mut p = sa.attach_producer()?;
    let mut c = sb.register(ConsumerKind::Worker)?;
    let spin = if sleep { 0 } else { u32::MAX };
    let mode = match (sleep, leg) {
        (true, _) => "sleep",
        (false, Leg::Handoff) => "handoff",
        (false, Leg::Cycle) => "spin",
    };
    let peer = Peer::spawn(&["echo", &a, &b, &iters.to_string(), mode])?;
    let mut ns = Vec::with_capacity(iters as usize);
    for i in 0..iters {
        let back = match leg {
            Leg::Handoff => {
                let slot = prepare(&mut p, i)?;
                let t = Instant::now();
                publish(slot, &ga);
                let (frame, back) = take(&mut c, spin)?;
                ns.push(t.elapsed().as_nanos() as u64 / 2);
                wait::release(&mut c, frame)?;
                back
            }
            Leg::Cycle => {
                let t = Instant::now();
                send(&mut p, &ga, i)?;
                let back = recv(&mut c, spin)?;
                ns.push(t.elapsed().as_nanos() as u64 / 2);
                back
            }
        };
        if back != i {
            return Err(format!("echo returned {back}, expected {i}").into());
        }
    }
    peer.finish()?;
    let what = match leg {
        Leg::Handoff => "handoff (publish -> claimed+read)",
        Leg::Cycle => "full cycle (begin..release)",
    };
    Ok(percentiles(format!("framebus {label} {what}, {}", if sleep { "sleeping" } else { "spinning" }), ns, "ns"))
}

fn throughput(label: &str, w: u32, h: u32, f: PixelFormat, iters: u64) -> Res<Row> {
    let a = name(&format!("t{label}"));
    let sa = SharedSegment::create(&a, &spec(w, h, f), CreateOptions::default())?;
    let ga = sa.segment();
    let mut p = sa.attach_producer()?;
    let mut peer = Peer::spawn(&["sink", &a, &iters.to_string()])?;
    let t = Instant::now();
    for i in 0..iters {
        send(&mut p, &ga, i)?;
    }
    peer.expect("done")?;
    let per = t.elapsed().as_nanos() as f64 / iters as f64;
    peer.finish()?;
    Ok(Row {
        name: format!("framebus {label} throughput, spinning worker"),
        unit: "ns/frame",
        samples: vec![per as u64],
    })
}

/// Runs the transport benchmark and prints (and optionally writes as JSON) the table.
pub fn transport(quick: bool, json: Option<&std::path::Path>) -> Res<()> {
    // Every row runs once per round, so that drift of this (shared, noisy) machine hits all
    // rows alike instead of spoiling whichever row ran during a disturbance.
    let (rounds, iters): (u64, u64) = if quick { (2, 1_000) } else { (5, 50_000) };
    let mut rows: Vec<Row> = Vec::new();
    for round in 1..=rounds {
        eprint!("\rround {round}/{rounds}");
        let mut this = vec![cache_line(iters)?, clock(iters), futex(iters / 10)?];
        for (label, w, h, f) in SIZES {
            let bytes = FrameGeometry::new(w, h, f).planes().map_err(|e| e.to_string())?.frame_size as usize;
            this.push(memcpy(label, bytes, if bytes > 1 << 20 { iters / 100 } else { iters }.max(20)));
        }
        for (label, w, h, f) in SIZES {
            this.push(ping_pong(label, w, h, f, false, Leg::Handoff, iters)?);
            this.push(ping_pong(label, w, h, f, false, Leg::Cycle, iters)?);
            this.push(ping_pong(label, w, h, f, true, Leg::Handoff, iters / 10)?);
        }
        for (label, w, h, f) in SIZES {
            this.push(throughput(label, w, h, f, iters * 5)?);
        }
        if rows.is_empty() {
            rows = this;
        } else {
            for (row, more) in rows.iter_mut().zip(this) {
                row.samples.extend(more.samples);
            }
        }
    }
    eprintln!();
    for r in &mut rows {
        r.samples.sort_unstable();
    }
    let floor = rows[0].at(0.5);
    println!(
        "{:<58} {:>9} {:>9} {:>9} {:>8}",
        "row (same run, same machine, interleaved)", "p50", "p99", "p99.9", "p50/RTT"
    );
    for r in &rows {
        let (p50, p99, p999) = (r.at(0.5), r.at(0.99), r.at(0.999));
        println!("{:<58} {p50:>9.0} {p99:>9.0} {p999:>9.0} {:>7.2}x  {}", r.name, p50 / floor, r.unit);
    }
    let find = |s: &str| rows.iter().find(|r| r.name == s).map(|r| r.at(0.5)).unwrap_or(f64::NAN);
    let handoff = |size: &str| find(&format!("framebus {size} handoff (publish -> claimed+read), spinning"));
    let zero_copy = handoff("1080p") / handoff("64B");
    let vs_line = handoff("64B") / floor;
    let cycle_vs_line = find("framebus 64B full cycle (begin..release), spinning") / floor;
    println!("\nzero copy: 1080p handoff / 64B handoff = {zero_copy:.2} (1.0 = size does not matter)");
    println!("spinning 64B handoff / cache-line round trip = {vs_line:.2} (full cycle: {cycle_vs_line:.2})");
    // The round trip carries one clock pair per sample, a halved row half of one.
    let clk = find("clock read pair (in every sample)");
    let net = (handoff("64B") - clk / 2.0) / (floor - clk);
    println!("  the same without the clock reads: {net:.2}");
    if let Some(path) = json {
        let mut f = std::fs::File::create(path)?;
        writeln!(
            f,
            "{{\"rounds\": {rounds}, \"iterations_per_round\": {iters}, \"zero_copy_ratio\": {zero_copy:.3}, \"spin_vs_cache_line\": {vs_line:.3}, \"cycle_vs_cache_line\": {cycle_vs_line:.3}, \"spin_vs_cache_line_net_of_clock\": {net:.3}, \"rows\": ["
        )?;
        for (i, r) in rows.iter().enumerate() {
            let comma = if i + 1 < rows.len() { "," } else { "" };
            writeln!(
                f,
                "  {{\"name\": \"{}\", \"unit\": \"{}\", \"p50\": {:.1}, \"p99\": {:.1}, \"p999\": {:.1}}}{comma}",
                r.name,
                r.unit,
                r.at(0.5),
                r.at(0.99),
                r.at(0.999)
            )?;
        }
        writeln!(f, "]}}")?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The child side of every row (`framebus bench-peer ROLE …`).
pub fn peer(args: &[String]) -> Res<()> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a[..] {
        ["post", n, iters, mode] => results::post_peer(n, iters.parse()?, mode == "sleep")?,
        ["cacheline", n, iters] => {
            let s = SharedSegment::open(n)?;
            let seg = s.segment();
            let (ping, pong) = words(&seg);
            ready()?;
            for i in 1..=iters.parse::<u64>()? {
                // SYNC POINT bench-ping: Acquire pairs with the parent's Release store of `ping`.
                while ping.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
                // SYNC POINT bench-pong: pairs with the parent's Acquire load.
                pong.store(i, Ordering::Release);
            }
        }
        ["futex", n, iters] => {
            let s = SharedSegment::open(n)?;
            let seg = s.segment();
            let (ping, pong) = words(&seg);
            ready()?;
            for i in 1..=iters.parse::<u64>()? {
                loop {
                    let v = ping.load(Ordering::Acquire);
                    if v == i {
                        break;
                    }
                    futex_wait(ping, v as u32, TIMEOUT);
                }
                pong.store(i, Ordering::Release);
                futex_wake(pong);
            }
        }
        ["echo", a, b, iters, mode] => {
            let (sa, sb) = (SharedSegment::open(a)?, SharedSegment::open(b)?);
            let gb = sb.segment();
            let mut c = sa.register(ConsumerKind::Worker)?;
            let mut p = sb.attach_producer()?;
            let spin = if mode == "sleep" { 0 } else { u32::MAX };
            ready()?;
            for _ in 0..iters.parse::<u64>()? {
                if mode == "handoff" {
                    // Mirror of the parent's handoff leg: the answer's slot is begun before the
                    // frame arrives, and the frame is released after the answer is published.
                    let mut slot = prepare(&mut p, 0)?;
                    let (frame, v) = take(&mut c, spin)?;
                    slot.write(0, &v.to_le_bytes());
                    publish(slot, &gb);
                    wait::release(&mut c, frame)?;
                } else {
                    let v = recv(&mut c, spin)?;
                    send(&mut p, &gb, v)?;
                }
            }
        }
        ["sink", a, iters] => {
            let sa = SharedSegment::open(a)?;
            let mut c = sa.register(ConsumerKind::Worker)?;
            ready()?;
            for _ in 0..iters.parse::<u64>()? {
                recv(&mut c, u32::MAX)?;
            }
            println!("done");
        }
        _ => return Err(format!("unknown bench-peer role {args:?}").into()),
    }
    Ok(())
}
