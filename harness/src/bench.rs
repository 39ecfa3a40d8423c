//! `framebus bench transport`: cross-process handoff through real named segments, next to the
//! physical limits measured in the same run, as ratios.
//!
//! Every row runs a child process (`framebus bench-peer …`, this same binary) and the parent:
//! - `cache-line RTT/2`: two processes bounce a counter through one shared cache line each way
//!   (the floor for any shared-memory handoff);
//! - `futex wake RTT/2`: the same with both sides asleep in a shared futex (the floor for a
//!   sleeping consumer);
//! - `memcpy`: copying one frame inside one process (what a copying transport pays at least);
//! - `framebus SIZE spin|sleep`: a frame published on segment A, claimed by the child, which
//!   answers with a 64-byte frame on segment B; half the round trip is the one-way latency. The
//!   producer touches 8 bytes of the slot and the consumer reads them: the frame was already in
//!   the slot (decoded in place), which is the point of zero copy;
//! - `framebus SIZE throughput`: frames per second from one producer to one worker process.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use framebus_platform::core::segment::{BeginError, FrameMeta};
use framebus_platform::core::sync::{AtomicU64, Ordering};
use framebus_platform::core::{ConsumerKind, FrameGeometry, PixelFormat, Segment, SegmentSpec};
use framebus_platform::{futex_wait, futex_wake, wait, CreateOptions, SharedSegment};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const SIZES: [(&str, u32, u32, PixelFormat); 3] = [
    ("64B", 64, 1, PixelFormat::Raw),
    ("720p", 1280, 720, PixelFormat::Bgr24),
    ("1080p", 1920, 1080, PixelFormat::Bgr24),
];
const TIMEOUT: Duration = Duration::from_secs(20);

/// One line of the report.
struct Row {
    name: String,
    unit: &'static str,
    p50: f64,
    p99: f64,
    p999: f64,
}

fn spec(w: u32, h: u32, f: PixelFormat) -> SegmentSpec {
    SegmentSpec::new(FrameGeometry::new(w, h, f), 4).with_max_consumers(2)
}

fn name(tag: &str) -> String {
    format!("bench-{tag}-{}", std::process::id())
}

fn percentiles(name: String, mut ns: Vec<u64>, unit: &'static str) -> Row {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() - 1) as f64 * q) as usize] as f64;
    Row { name, unit, p50: at(0.5), p99: at(0.99), p999: at(0.999) }
}

struct Peer {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Peer {
    fn spawn(args: &[&str]) -> Res<Peer> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("bench-peer")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let out = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut p = Peer { child, out };
        p.expect("ready")?;
        Ok(p)
    }
    fn expect(&mut self, what: &str) -> Res<()> {
        let mut l = String::new();
        self.out.read_line(&mut l)?;
        if l.trim() != what {
            return Err(format!("bench peer said {l:?}, expected {what:?}").into());
        }
        Ok(())
    }
    fn finish(mut self) -> Res<()> {
        let status = self.child.wait()?;
        if !status.success() {
            return Err(format!("bench peer failed: {status}").into());
        }
        Ok(())
    }
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
        while pong.load(Ordering::Acquire) != i {
            std::hint::spin_loop();
        }
        ns.push(t.elapsed().as_nanos() as u64 / 2);
    }
    peer.finish()?;
    Ok(percentiles("cache-line round trip / 2 (limit)".into(), ns, "ns"))
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
    Ok(percentiles("futex wake round trip / 2 (limit)".into(), ns, "ns"))
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

/// Publishes one frame touching 8 bytes; spins while the segment is full.
fn send(p: &mut framebus_platform::core::Producer<'_>, seg: &Segment<'_>, v: u64) -> Res<()> {
    loop {
        match p.begin() {
            Ok(mut slot) => {
                slot.write(0, &v.to_le_bytes());
                wait::publish(slot, FrameMeta { payload_len: 8, ..FrameMeta::default() }, seg);
                return Ok(());
            }
            Err(BeginError::Full) => std::hint::spin_loop(),
            Err(e) => return Err(e.into()),
        }
    }
}

fn recv(c: &mut framebus_platform::core::Consumer<'_>, spin: u32) -> Res<u64> {
    let f = wait::claim_spinning(c, TIMEOUT, spin)?;
    let mut b = [0u8; 8];
    c.read(&f, 0, &mut b)?;
    wait::release(c, f)?;
    Ok(u64::from_le_bytes(b))
}

fn ping_pong(label: &str, w: u32, h: u32, f: PixelFormat, sleep: bool, iters: u64) -> Res<Row> {
    let (a, b) = (name(&format!("a{label}{sleep}")), name(&format!("b{label}{sleep}")));
    let sa = SharedSegment::create(&a, &spec(w, h, f), CreateOptions::default())?;
    let sb = SharedSegment::create(&b, &spec(64, 1, PixelFormat::Raw), CreateOptions::default())?;
    let (ga, gb) = (sa.segment(), sb.segment());
    let mut p = sa.attach_producer()?;
    let mut c = sb.register(ConsumerKind::Worker)?;
    let spin = if sleep { 0 } else { u32::MAX };
    let peer = Peer::spawn(&["echo", &a, &b, &iters.to_string(), if sleep { "sleep" } else { "spin" }])?;
    let mut ns = Vec::with_capacity(iters as usize);
    for i in 0..iters {
        let t = Instant::now();
        send(&mut p, &ga, i)?;
        let back = recv(&mut c, spin)?;
        ns.push(t.elapsed().as_nanos() as u64 / 2);
        if back != i {
            return Err(format!("echo returned {back}, expected {i}").into());
        }
    }
    peer.finish()?;
    let _ = gb;
    Ok(percentiles(
        format!("framebus {label} one-way, {} consumer", if sleep { "sleeping" } else { "spinning" }),
        ns,
        "ns",
    ))
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
        p50: per,
        p99: per,
        p999: per,
    })
}

/// Runs the transport benchmark and prints (and optionally writes as JSON) the table.
pub fn transport(quick: bool, json: Option<&std::path::Path>) -> Res<()> {
    let iters: u64 = if quick { 2_000 } else { 100_000 };
    let mut rows = vec![cache_line(iters)?, futex(iters / 10)?];
    for (label, w, h, f) in SIZES {
        let bytes = FrameGeometry::new(w, h, f).planes().map_err(|e| e.to_string())?.frame_size as usize;
        rows.push(memcpy(label, bytes, if bytes > 1 << 20 { iters / 100 } else { iters }.max(20)));
    }
    for (label, w, h, f) in SIZES {
        for sleep in [false, true] {
            rows.push(ping_pong(label, w, h, f, sleep, if sleep { iters / 10 } else { iters })?);
        }
    }
    for (label, w, h, f) in SIZES {
        rows.push(throughput(label, w, h, f, iters)?);
    }
    let floor = rows[0].p50;
    println!("{:<52} {:>10} {:>10} {:>10} {:>9}", "row (same run, same machine)", "p50", "p99", "p99.9", "p50/limit");
    for r in &rows {
        println!("{:<52} {:>10.0} {:>10.0} {:>10.0} {:>8.1}x  {}", r.name, r.p50, r.p99, r.p999, r.p50 / floor, r.unit);
    }
    let find = |s: &str| rows.iter().find(|r| r.name == s).map(|r| r.p50).unwrap_or(f64::NAN);
    let zero_copy = find("framebus 1080p one-way, spinning consumer") / find("framebus 64B one-way, spinning consumer");
    let vs_line = find("framebus 64B one-way, spinning consumer") / floor;
    println!("\nzero copy: 1080p one-way / 64B one-way = {zero_copy:.2} (1.0 = size does not matter)");
    println!("spinning 64B one-way / cache-line limit = {vs_line:.2}");
    if let Some(path) = json {
        let mut f = std::fs::File::create(path)?;
        writeln!(f, "{{\"iterations\": {iters}, \"zero_copy_ratio\": {zero_copy:.3}, \"spin_vs_cache_line\": {vs_line:.3}, \"rows\": [")?;
        for (i, r) in rows.iter().enumerate() {
            let comma = if i + 1 < rows.len() { "," } else { "" };
            writeln!(
                f,
                "  {{\"name\": \"{}\", \"unit\": \"{}\", \"p50\": {:.1}, \"p99\": {:.1}, \"p999\": {:.1}}}{comma}",
                r.name, r.unit, r.p50, r.p99, r.p999
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
    let ready = || -> Res<()> {
        println!("ready");
        std::io::stdout().flush()?;
        Ok(())
    };
    match a[..] {
        ["cacheline", n, iters] => {
            let s = SharedSegment::open(n)?;
            let seg = s.segment();
            let (ping, pong) = words(&seg);
            ready()?;
            for i in 1..=iters.parse::<u64>()? {
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
                let v = recv(&mut c, spin)?;
                send(&mut p, &gb, v)?;
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
