//! `cargo xtask bench`: framebus next to the transports users run today and to the physical
//! limits, in one run on one machine, producer and consumer in separate processes.
//!
//! Every row sends frames of 64 B, 720p BGR and 1080p BGR from this process to a child process
//! (`framebus-bench peer …`, this same binary) and measures:
//! - **latency**: one way, publish/send start → the consumer holds the whole frame, timestamped
//!   on both sides with the same monotonic clock; the consumer acknowledges each frame (8 bytes)
//!   before the next is sent, so no queueing is measured; the first 16 frames of each run (page
//!   faults on first touch) are not counted;
//! - **throughput**: frames sent back to back, frames per second at the consumer;
//! - **CPU per frame** on each side during the throughput run (`CLOCK_PROCESS_CPUTIME_ID`).
//!
//! The zero-copy rows (framebus, iceoryx2) write a 16-byte header into a frame that is already
//! in shared memory — the decoder wrote it there — and hand it over; the copy rows write the
//! whole frame into a socket or pipe, as `cv2` + `socket.sendall` pipelines do. Rounds are
//! interleaved, so drift of the machine hits every row alike.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use framebus_platform::core::segment::FrameMeta;
use framebus_platform::core::sync::{AtomicU64, Ordering};
use framebus_platform::core::{ConsumerKind, FrameGeometry, OverflowPolicy, Pattern, PixelFormat, SegmentSpec};
use framebus_platform::{futex_wait, futex_wake, now_ns, wait, CreateOptions, SharedSegment};
use serde::{Deserialize, Serialize};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const SIZES: [(&str, usize); 3] = [("64 B", 64), ("720p", 1280 * 720 * 3), ("1080p", 1920 * 1080 * 3)];
const TIMEOUT: Duration = Duration::from_secs(30);
/// Frames at the start of each latency run whose latency is not counted.
const WARMUP: u64 = 16;

/// The transports measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum T {
    FramebusSpin,
    FramebusSleep,
    FramebusBroadcast,
    FramebusBroadcastSleep,
    Iceoryx2,
    Uds,
    Tcp,
    Pipe,
}

impl T {
    const ALL: [T; 8] = [
        T::FramebusSpin,
        T::FramebusSleep,
        T::FramebusBroadcast,
        T::FramebusBroadcastSleep,
        T::Iceoryx2,
        T::Uds,
        T::Tcp,
        T::Pipe,
    ];

    fn is_framebus(self) -> bool {
        matches!(self, T::FramebusSpin | T::FramebusSleep | T::FramebusBroadcast | T::FramebusBroadcastSleep)
    }

    fn sleeps(self) -> bool {
        matches!(self, T::FramebusSleep | T::FramebusBroadcastSleep)
    }

    fn broadcast(self) -> bool {
        matches!(self, T::FramebusBroadcast | T::FramebusBroadcastSleep)
    }

    fn name(self) -> &'static str {
        match self {
            T::FramebusSpin => "framebus work queue, spinning",
            T::FramebusSleep => "framebus work queue, sleeping",
            T::FramebusBroadcast => "framebus broadcast, spinning",
            T::FramebusBroadcastSleep => "framebus broadcast, sleeping",
            T::Iceoryx2 => "iceoryx2 pub/sub (loaned), spinning",
            T::Uds => "Unix domain socket (copy)",
            T::Tcp => "TCP 127.0.0.1 (copy)",
            T::Pipe => "pipe (copy)",
        }
    }

    fn key(self) -> &'static str {
        match self {
            T::FramebusSpin => "fb-spin",
            T::FramebusSleep => "fb-sleep",
            T::FramebusBroadcast => "fb-bcast",
            T::FramebusBroadcastSleep => "fb-bcast-sleep",
            T::Iceoryx2 => "iox2",
            T::Uds => "uds",
            T::Tcp => "tcp",
            T::Pipe => "pipe",
        }
    }

    fn from_key(k: &str) -> Option<T> {
        T::ALL.into_iter().find(|t| t.key() == k)
    }
}

/// What the consumer reports at the end of a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Report {
    latencies_ns: Vec<u64>,
    end_ns: u64,
    cpu_ns: u64,
    frames: u64,
}

/// CPU time this process has used, ns (`CLOCK_PROCESS_CPUTIME_ID`: exact, every thread).
fn cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn header(buf: &mut [u8], i: u64) {
    buf[..8].copy_from_slice(&now_ns().to_le_bytes());
    buf[8..16].copy_from_slice(&i.to_le_bytes());
}

fn stamp(buf: &[u8]) -> (u64, u64) {
    (u64::from_le_bytes(buf[..8].try_into().unwrap()), u64::from_le_bytes(buf[8..16].try_into().unwrap()))
}

// ---- the consumer side (child process) -----------------------------------------------------

/// Receives `n` frames of `len` bytes from `rx`, acknowledging each through `ack` when `lat`.
/// `recv` returns (send stamp, index, receipt time): it takes the receipt time as soon as it
/// holds the frame and has read it, before giving it back.
fn consume(
    n: u64,
    lat: bool,
    mut recv: impl FnMut() -> Res<(u64, u64, u64)>,
    mut ack: impl FnMut(u64) -> Res<()>,
) -> Res<Report> {
    let cpu = cpu_ns();
    let mut r = Report { latencies_ns: Vec::with_capacity(if lat { n as usize } else { 0 }), ..Report::default() };
    for k in 0..n {
        let (t0, i, t1) = recv()?;
        if lat {
            // The first frames of a run fault their slot pages in, on both sides: not counted.
            if k >= WARMUP {
                r.latencies_ns.push(t1.saturating_sub(t0));
            }
            ack(i)?;
        }
        r.frames += 1;
    }
    r.end_ns = now_ns();
    r.cpu_ns = cpu_ns() - cpu;
    Ok(r)
}

/// The two words the cache-line rows bounce, on separate lines of slot 0 of a segment.
fn words(seg: &framebus_platform::core::Segment<'_>) -> (&'static AtomicU64, &'static AtomicU64) {
    let base = seg.region().base().as_ptr().wrapping_add(seg.layout().slot_offset(0) as usize);
    // SAFETY: slot 0 is a whole page inside the live mapping, which both callers keep alive
    // for as long as they use the words; both processes access them only atomically.
    unsafe { (&*(base as *const AtomicU64), &*(base.wrapping_add(128) as *const AtomicU64)) }
}

fn peer(args: &[String]) -> Res<()> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    if let ["cacheline", name, n] = a[..] {
        let s = SharedSegment::open(name)?;
        let seg = s.segment();
        let (ping, pong) = words(&seg);
        println!("ready");
        std::io::stdout().flush()?;
        for i in 1..=n.parse::<u64>()? {
            while ping.load(Ordering::Acquire) != i {
                std::hint::spin_loop();
            }
            // Release pairs with the parent's Acquire load of `pong`.
            pong.store(i, Ordering::Release);
        }
        println!("\n{}", serde_json::to_string(&Report::default())?);
        return Ok(());
    }
    if let ["futex", name, n] = a[..] {
        let s = SharedSegment::open(name)?;
        let seg = s.segment();
        let (ping, pong) = words(&seg);
        println!("ready");
        std::io::stdout().flush()?;
        for i in 1..=n.parse::<u64>()? {
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
        println!("\n{}", serde_json::to_string(&Report::default())?);
        return Ok(());
    }
    let [t, endpoint, len, n, mode] = a[..] else { return Err(format!("bad peer arguments {a:?}").into()) };
    let t = T::from_key(t).ok_or("unknown transport")?;
    let (len, n, lat): (usize, u64, bool) = (len.parse()?, n.parse()?, mode == "lat");
    let out = std::io::stdout();
    let ready = || -> Res<()> {
        let mut o = out.lock();
        writeln!(o, "ready")?;
        o.flush()?;
        Ok(())
    };
    let mut buf = vec![0u8; len];
    let report = match t {
        t if t.is_framebus() => {
            let (data, acks) = endpoint.split_once(',').ok_or("endpoint")?;
            let (sd, sa) = (SharedSegment::open(data)?, SharedSegment::open(acks)?);
            let kind = if t.broadcast() { ConsumerKind::Subscriber } else { ConsumerKind::Worker };
            let mut c = sd.register(kind)?;
            let mut p = sa.attach_producer()?;
            let ga = sa.segment();
            let spin = if t.sleeps() { 0 } else { u32::MAX };
            ready()?;
            let mut hdr = [0u8; 16];
            consume(
                n,
                lat,
                || {
                    let f = wait::claim_spinning(&mut c, TIMEOUT, spin)?;
                    c.read(&f, 0, &mut hdr)?;
                    let t1 = now_ns();
                    wait::release(&mut c, f)?;
                    let (t0, i) = stamp(&hdr);
                    Ok((t0, i, t1))
                },
                |i| {
                    while !p.has_space() {
                        std::hint::spin_loop();
                    }
                    let mut s = p.begin()?;
                    s.write(0, &i.to_le_bytes());
                    wait::publish(s, FrameMeta { payload_len: 8, ..FrameMeta::default() }, &ga);
                    Ok(())
                },
            )?
        }
        T::Iceoryx2 => {
            let (_node, data, acks) = iox_services(endpoint)?;
            let sub = data.subscriber_builder().create()?;
            let ackp = acks.publisher_builder().create()?;
            ready()?;
            consume(
                n,
                lat,
                || loop {
                    if let Some(s) = sub.receive()? {
                        let (t0, i) = stamp(s.payload());
                        return Ok((t0, i, now_ns())); // before `s` is dropped (given back)
                    }
                    std::hint::spin_loop();
                },
                |i| {
                    ackp.send_copy(i)?;
                    Ok(())
                },
            )?
        }
        _ => {
            let (mut r, mut w): (Box<dyn Read>, Box<dyn Write>) = match t {
                T::Uds => {
                    let s = UnixStream::connect(endpoint)?;
                    (Box::new(s.try_clone()?), Box::new(s))
                }
                T::Tcp => {
                    let s = TcpStream::connect(endpoint)?;
                    s.set_nodelay(true)?;
                    (Box::new(s.try_clone()?), Box::new(s))
                }
                _ => (Box::new(std::io::stdin()), Box::new(std::io::stdout())),
            };
            ready()?;
            consume(
                n,
                lat,
                || {
                    r.read_exact(&mut buf)?;
                    let (t0, i) = stamp(&buf);
                    Ok((t0, i, now_ns()))
                },
                |i| {
                    w.write_all(&i.to_le_bytes())?;
                    w.flush()?;
                    Ok(())
                },
            )?
        }
    };
    let mut o = out.lock();
    writeln!(o, "\n{}", serde_json::to_string(&report)?)?;
    o.flush()?;
    Ok(())
}

type IoxData =
    iceoryx2::service::port_factory::publish_subscribe::PortFactory<iceoryx2::service::ipc::Service, [u8], ()>;
type IoxAcks =
    iceoryx2::service::port_factory::publish_subscribe::PortFactory<iceoryx2::service::ipc::Service, u64, ()>;

/// The two iceoryx2 services of one run, `NAME-data` (frames) and `NAME-ack` (acks), sized as
/// framebus' segments are for one producer and one consumer. Both sides open them this way.
fn iox_services(name: &str) -> Res<(iceoryx2::node::Node<iceoryx2::service::ipc::Service>, IoxData, IoxAcks)> {
    use iceoryx2::prelude::*;
    let node = NodeBuilder::new().create::<ipc::Service>()?;
    let data = node
        .service_builder(&format!("{name}-data").as_str().try_into()?)
        .publish_subscribe::<[u8]>()
        .enable_safe_overflow(false)
        .subscriber_max_buffer_size(16)
        .max_subscribers(1)
        .max_publishers(1)
        .open_or_create()?;
    let acks = node
        .service_builder(&format!("{name}-ack").as_str().try_into()?)
        .publish_subscribe::<u64>()
        .open_or_create()?;
    Ok((node, data, acks))
}

// ---- the producer side (this process) --------------------------------------------------------

struct Peer {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Peer {
    fn spawn(t: T, endpoint: &str, len: usize, n: u64, lat: bool, stdin_pipe: bool) -> Res<Peer> {
        let exe = std::env::current_exe()?;
        let mut c = Command::new(exe);
        c.args(["peer", t.key(), endpoint, &len.to_string(), &n.to_string(), if lat { "lat" } else { "thr" }]);
        c.stdout(Stdio::piped()).stderr(Stdio::inherit());
        c.stdin(if stdin_pipe { Stdio::piped() } else { Stdio::null() });
        let mut child = c.spawn()?;
        let mut out = BufReader::new(child.stdout.take().ok_or("stdout")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        if line.trim() != "ready" {
            return Err(format!("{} peer failed to start", t.name()).into());
        }
        Ok(Peer { child, out })
    }

    fn report(mut self) -> Res<Report> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.out.read_line(&mut line)? == 0 {
                return Err("peer exited without a report".into());
            }
            if line.starts_with('{') {
                break;
            }
        }
        self.child.wait()?;
        Ok(serde_json::from_str(&line)?)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One measurement: the consumer's report and the producer's start time and CPU.
struct Run {
    report: Report,
    start_ns: u64,
    producer_cpu_ns: u64,
}

fn run(t: T, len: usize, n: u64, lat: bool, tag: &str) -> Res<Run> {
    let id = format!("fbb-{}-{tag}", std::process::id());
    let mut frame = vec![0u8; len];
    match t {
        t if t.is_framebus() => {
            let pattern = if t.broadcast() { Pattern::Broadcast } else { Pattern::WorkQueue };
            let raw = |bytes: usize, slots| {
                SegmentSpec::new(FrameGeometry::new(bytes as u32, 1, PixelFormat::Raw), slots)
                    .with_pattern(pattern)
                    .with_policy(OverflowPolicy::Block)
                    .with_max_consumers(2)
            };
            let sd = SharedSegment::create(&format!("{id}-d"), &raw(len, 4), CreateOptions::default())?;
            let sa = SharedSegment::create(
                &format!("{id}-a"),
                &SegmentSpec::new(FrameGeometry::new(64, 1, PixelFormat::Raw), 4),
                CreateOptions::default(),
            )?;
            let (gd, _ga) = (sd.segment(), sa.segment());
            let mut p = sd.attach_producer()?;
            let mut acks = sa.register(ConsumerKind::Worker)?;
            let peer = Peer::spawn(t, &format!("{id}-d,{id}-a"), len, n, lat, false)?;
            let (start_ns, cpu) = (now_ns(), cpu_ns());
            let mut ack = [0u8; 8];
            for i in 0..n {
                // As a producer does: try, and wait for space only when full.
                let mut slot = loop {
                    match p.begin() {
                        Ok(slot) => break slot,
                        Err(framebus_platform::core::BeginError::Full) => {}
                        Err(e) => return Err(e.into()),
                    }
                    if wait::wait_for_space(&p, TIMEOUT).is_err() {
                        return Err("consumer stalled".into());
                    }
                };
                // The frame is already in the slot (decoded there); the header is the only write.
                let mut h = [0u8; 16];
                header(&mut h, i);
                slot.write(0, &h);
                wait::publish(slot, FrameMeta { payload_len: len as u64, ..FrameMeta::default() }, &gd);
                if lat {
                    let f = wait::claim_spinning(&mut acks, TIMEOUT, u32::MAX)?;
                    acks.read(&f, 0, &mut ack)?;
                    wait::release(&mut acks, f)?;
                    if t.sleeps() {
                        // Give the consumer time to fall asleep, or the next frame would reach it
                        // while it is still on its way to the futex and the row would not measure
                        // a sleeping consumer at all.
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
            }
            let producer_cpu_ns = cpu_ns() - cpu;
            Ok(Run { report: peer.report()?, start_ns, producer_cpu_ns })
        }
        T::Iceoryx2 => {
            use iceoryx2::prelude::*;
            let (_node, data, acks) = iox_services(&id)?;
            let publ = data
                .publisher_builder()
                .initial_max_slice_len(len)
                .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
                .create()?;
            let acksub = acks.subscriber_builder().create()?;
            let peer = Peer::spawn(t, &id, len, n, lat, false)?;
            // Wait until the subscriber is connected, or the first samples go nowhere.
            let since = std::time::Instant::now();
            while data.dynamic_config().number_of_subscribers() == 0 {
                if since.elapsed() > TIMEOUT {
                    return Err("the iceoryx2 subscriber never connected".into());
                }
                std::thread::yield_now();
            }
            let (start_ns, cpu) = (now_ns(), cpu_ns());
            for i in 0..n {
                let mut sample = publ.loan_slice_uninit(len)?;
                let mut h = [0u8; 16];
                header(&mut h, i);
                for (d, s) in sample.payload_mut()[..16].iter_mut().zip(h) {
                    d.write(s);
                }
                // SAFETY: iceoryx2 0.10 zeroes its data segment when it creates it (shared
                // memory created with `zero_memory` on, its default), and samples only ever hold
                // bytes: every byte of the chunk is initialised (the first 16 just now, the rest
                // zeros or an earlier frame's bytes). Writing all `len` bytes would be the very
                // copy zero copy avoids, and framebus' row does not write them either.
                let sample = unsafe { sample.assume_init() };
                sample.send()?;
                if lat {
                    loop {
                        if acksub.receive()?.is_some() {
                            break;
                        }
                        std::hint::spin_loop();
                    }
                }
            }
            let producer_cpu_ns = cpu_ns() - cpu;
            Ok(Run { report: peer.report()?, start_ns, producer_cpu_ns })
        }
        _ => {
            let path = std::env::temp_dir().join(format!("{id}.sock"));
            // Acks come back on the socket, or (pipe) on the child's stdout after "ready".
            let mut back: Option<Box<dyn Read>> = None;
            let (mut peer, mut w): (Peer, Box<dyn Write>) = match t {
                T::Uds => {
                    let _ = std::fs::remove_file(&path);
                    let l = UnixListener::bind(&path)?;
                    let peer = Peer::spawn(t, path.to_str().ok_or("path")?, len, n, lat, false)?;
                    let (s, _) = l.accept()?;
                    let _ = std::fs::remove_file(&path);
                    back = Some(Box::new(s.try_clone()?));
                    (peer, Box::new(s))
                }
                T::Tcp => {
                    let l = TcpListener::bind("127.0.0.1:0")?;
                    let peer = Peer::spawn(t, &l.local_addr()?.to_string(), len, n, lat, false)?;
                    let (s, _) = l.accept()?;
                    s.set_nodelay(true)?;
                    back = Some(Box::new(s.try_clone()?));
                    (peer, Box::new(s))
                }
                _ => {
                    let mut peer = Peer::spawn(t, "-", len, n, lat, true)?;
                    let w = peer.child.stdin.take().ok_or("stdin")?;
                    (peer, Box::new(w))
                }
            };
            let (start_ns, cpu) = (now_ns(), cpu_ns());
            let mut ack = [0u8; 8];
            for i in 0..n {
                header(&mut frame, i);
                w.write_all(&frame)?;
                if lat {
                    match back.as_mut() {
                        Some(r) => r.read_exact(&mut ack)?,
                        None => peer.out.read_exact(&mut ack)?,
                    }
                }
            }
            w.flush()?;
            drop(w);
            let producer_cpu_ns = cpu_ns() - cpu;
            drop(back);
            Ok(Run { report: peer.report()?, start_ns, producer_cpu_ns })
        }
    }
}

/// Half the round trip of one cache line between two processes: the floor of any handoff.
fn cache_line(n: u64) -> Res<Vec<u64>> {
    let name = format!("fbb-{}-cl", std::process::id());
    let spec = SegmentSpec::new(FrameGeometry::new(4096, 1, PixelFormat::Raw), 1);
    let s = SharedSegment::create(&name, &spec, CreateOptions::default())?;
    let seg = s.segment();
    let (ping, pong) = words(&seg);
    let exe = std::env::current_exe()?;
    let mut child =
        Command::new(exe).args(["peer", "cacheline", &name, &n.to_string()]).stdout(Stdio::piped()).spawn()?;
    let mut out = BufReader::new(child.stdout.take().ok_or("stdout")?);
    let mut line = String::new();
    out.read_line(&mut line)?;
    let mut v = Vec::with_capacity(n as usize);
    for i in 1..=n {
        let t = now_ns();
        // Release pairs with the child's Acquire load of `ping`.
        ping.store(i, Ordering::Release);
        while pong.load(Ordering::Acquire) != i {
            std::hint::spin_loop();
        }
        v.push((now_ns() - t) / 2);
    }
    child.wait()?;
    Ok(v)
}

/// Half the round trip of a futex wake-up between two sleeping processes: the floor for a
/// consumer that sleeps.
fn futex(n: u64) -> Res<Vec<u64>> {
    let name = format!("fbb-{}-fx", std::process::id());
    let spec = SegmentSpec::new(FrameGeometry::new(4096, 1, PixelFormat::Raw), 1);
    let s = SharedSegment::create(&name, &spec, CreateOptions::default())?;
    let seg = s.segment();
    let (ping, pong) = words(&seg);
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe).args(["peer", "futex", &name, &n.to_string()]).stdout(Stdio::piped()).spawn()?;
    let mut out = BufReader::new(child.stdout.take().ok_or("stdout")?);
    let mut line = String::new();
    out.read_line(&mut line)?;
    let mut v = Vec::with_capacity(n as usize);
    for i in 1..=n {
        let t = now_ns();
        ping.store(i, Ordering::Release);
        futex_wake(ping);
        loop {
            let p = pong.load(Ordering::Acquire);
            if p == i {
                break;
            }
            futex_wait(pong, p as u32, TIMEOUT);
        }
        v.push((now_ns() - t) / 2);
    }
    child.wait()?;
    Ok(v)
}

/// One frame copied inside one process: what a copying transport pays at least, twice.
fn memcpy(bytes: usize, n: u64) -> Vec<u64> {
    let (src, mut dst) = (vec![7u8; bytes], vec![0u8; bytes]);
    (0..n)
        .map(|_| {
            let t = now_ns();
            dst.copy_from_slice(std::hint::black_box(&src));
            std::hint::black_box(&dst);
            now_ns() - t
        })
        .collect()
}

const LIMIT_CL: &str = "limit: cache-line round trip / 2";
const LIMIT_MEMCPY: &str = "limit: memcpy of one frame";
const LIMIT_FUTEX: &str = "limit: futex wake-up, round trip / 2";

/// The Python approaches (`py/peers.py`), when a Python with numpy is there: `python3`, or the
/// system's `/usr/bin/python3`. Missing is a skip, or an error under `CI=true`.
fn python_rows(quick: bool) -> Res<Vec<Row>> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py/peers.py");
    let has_numpy = |py: &str| {
        Command::new(py).args(["-c", "import numpy"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    };
    // The virtualenv `cargo xtask python` builds has the framebus package too (its rows).
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pyvenv/bin/python");
    let venv = venv.to_string_lossy().into_owned();
    let Some(py) = [venv.as_str(), "python3", "/usr/bin/python3"].into_iter().find(|p| has_numpy(p)) else {
        let msg = "no python3 with numpy: the Python rows are skipped (apt-get install python3-numpy)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            return Err(format!("{msg}; CI=true makes this an error").into());
        }
        eprintln!("SKIPPED {msg}");
        return Ok(Vec::new());
    };
    eprintln!("Python rows ({py} {})", script.display());
    let mut c = Command::new(py);
    c.arg(&script);
    if quick {
        c.arg("--quick");
    }
    let out = c.stderr(Stdio::inherit()).output()?;
    if !out.status.success() {
        return Err(format!("{} failed ({})", script.display(), out.status).into());
    }
    let mut rows = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        rows.push(Row {
            transport: v["transport"].as_str().unwrap_or("?").into(),
            size: v["size"].as_str().unwrap_or("?").into(),
            bytes: v["bytes"].as_u64().unwrap_or(0) as usize,
            latency_ns: v["samples"].as_array().map_or(Vec::new(), |a| a.iter().filter_map(|x| x.as_u64()).collect()),
            frames_per_s: v["frames_per_s"].as_f64().unwrap_or(f64::NAN),
            producer_cpu_ns_per_frame: f64::NAN,
            consumer_cpu_ns_per_frame: f64::NAN,
        });
    }
    Ok(rows)
}

// ---- the table ------------------------------------------------------------------------------

#[derive(Clone, Debug, Default, Serialize)]
struct Row {
    transport: String,
    size: String,
    bytes: usize,
    latency_ns: Vec<u64>,
    frames_per_s: f64,
    producer_cpu_ns_per_frame: f64,
    consumer_cpu_ns_per_frame: f64,
}

fn pct(v: &[u64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * q) as usize] as f64
}

fn human(ns: f64) -> String {
    if !ns.is_finite() {
        "—".into()
    } else if ns < 10_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 10_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.1} ms", ns / 1e6)
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = if args.first().map(String::as_str) == Some("peer") { peer(&args[1..]) } else { bench(&args) };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("framebus-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn bench(args: &[String]) -> Res<()> {
    let mut quick = false;
    let mut json: Option<PathBuf> = None;
    let mut plot: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--json" => json = Some(it.next().ok_or("--json PATH")?.into()),
            "--plot" => plot = Some(it.next().ok_or("--plot PATH")?.into()),
            _ => return Err(format!("usage: framebus-bench [--quick] [--json PATH] [--plot PATH] (got {a})").into()),
        }
    }
    let rounds = if quick { 1 } else { 3 };
    let mut rows: Vec<Row> = Vec::new();
    for round in 0..rounds {
        for (size, bytes) in SIZES {
            let big = bytes > 1 << 20;
            for (name, samples) in [
                (LIMIT_CL, cache_line(if quick { 2_000 } else { 20_000 })?),
                (LIMIT_FUTEX, futex(if quick { 200 } else { 2_000 })?),
                (LIMIT_MEMCPY, memcpy(bytes, if big { 200 } else { 5_000 })),
            ] {
                match rows.iter_mut().find(|r| r.transport == name && r.size == size) {
                    Some(r) => r.latency_ns.extend(samples),
                    None => rows.push(Row {
                        transport: name.into(),
                        size: size.into(),
                        bytes,
                        latency_ns: samples,
                        frames_per_s: f64::NAN,
                        producer_cpu_ns_per_frame: f64::NAN,
                        consumer_cpu_ns_per_frame: f64::NAN,
                    }),
                }
            }
            for t in T::ALL {
                eprint!("\rround {}/{rounds}: {size:<6} {:<40}", round + 1, t.name());
                // Copying a big frame takes milliseconds: fewer of those; zero copy is cheap at
                // any size.
                let copies = !t.is_framebus() && t != T::Iceoryx2;
                let (n_lat, n_thr) = match (quick, big && copies, t.sleeps()) {
                    (true, _, _) => (200, 200),
                    (false, true, _) => (300, 300),
                    (false, false, true) => (5_000, 20_000),
                    (false, false, false) => (20_000, 50_000),
                };
                let tag = format!("{}{round}{}", t.key(), bytes);
                let l = run(t, bytes, n_lat, true, &format!("l{tag}"))?;
                let th = run(t, bytes, n_thr, false, &format!("t{tag}"))?;
                let secs = th.report.end_ns.saturating_sub(th.start_ns) as f64 / 1e9;
                let row = rows.iter_mut().find(|r| r.transport == t.name() && r.size == size);
                let row = match row {
                    Some(r) => r,
                    None => {
                        rows.push(Row { transport: t.name().into(), size: size.into(), bytes, ..Row::default() });
                        rows.last_mut().unwrap()
                    }
                };
                row.latency_ns.extend(l.report.latencies_ns);
                // Rounds average: keep the running mean of the throughput figures.
                let k = f64::from(round);
                row.frames_per_s = (row.frames_per_s * k + n_thr as f64 / secs.max(1e-9)) / (k + 1.0);
                row.producer_cpu_ns_per_frame =
                    (row.producer_cpu_ns_per_frame * k + th.producer_cpu_ns as f64 / n_thr as f64) / (k + 1.0);
                row.consumer_cpu_ns_per_frame =
                    (row.consumer_cpu_ns_per_frame * k + th.report.cpu_ns as f64 / n_thr as f64) / (k + 1.0);
            }
        }
    }
    eprintln!();
    rows.extend(python_rows(quick)?);
    for r in &mut rows {
        r.latency_ns.sort_unstable();
    }
    print_table(&rows);
    print_summary(&rows);
    if let Some(p) = &json {
        let summary: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "transport": r.transport, "size": r.size, "bytes": r.bytes,
                    "latency_ns": {"p50": pct(&r.latency_ns, 0.5), "p99": pct(&r.latency_ns, 0.99), "p999": pct(&r.latency_ns, 0.999)},
                    "frames_per_s": r.frames_per_s,
                    "producer_cpu_ns_per_frame": r.producer_cpu_ns_per_frame,
                    "consumer_cpu_ns_per_frame": r.consumer_cpu_ns_per_frame,
                })
            })
            .collect();
        std::fs::write(p, serde_json::to_string_pretty(&summary)?)?;
        println!("wrote {}", p.display());
    }
    if let Some(p) = &plot {
        write_plot(&rows, p)?;
        println!("wrote {}", p.display());
    }
    Ok(())
}

fn print_summary(rows: &[Row]) {
    let get = |t: &str, size: &str| rows.iter().find(|r| r.transport == t && r.size == size);
    println!("\nsummary");
    for (size, _) in SIZES {
        let (Some(fb), Some(cl)) = (get(T::FramebusSpin.name(), size), get(LIMIT_CL, size)) else { continue };
        let fb50 = pct(&fb.latency_ns, 0.5);
        // Every other transport (the limits and framebus' own rows aside).
        let best = rows
            .iter()
            .filter(|r| r.size == size && !r.transport.starts_with("limit") && !r.transport.starts_with("framebus"))
            .min_by(|a, b| pct(&a.latency_ns, 0.5).total_cmp(&pct(&b.latency_ns, 0.5)));
        let uds = get(T::Uds.name(), size);
        println!(
            "  {size:<6} framebus spinning p50 {} = {:.2}x the cache-line round trip ({}); best peer {} at {} ({:.1}x framebus); producer CPU per frame: framebus {} vs Unix socket {}",
            human(fb50),
            fb50 / (2.0 * pct(&cl.latency_ns, 0.5)),
            human(2.0 * pct(&cl.latency_ns, 0.5)),
            best.map_or("—", |b| b.transport.as_str()),
            best.map_or("—".into(), |b| human(pct(&b.latency_ns, 0.5))),
            best.map_or(f64::NAN, |b| pct(&b.latency_ns, 0.5) / fb50),
            human(fb.producer_cpu_ns_per_frame),
            uds.map_or("—".into(), |u| human(u.producer_cpu_ns_per_frame)),
        );
    }
}

fn print_table(rows: &[Row]) {
    for (size, _) in SIZES {
        let base = rows.iter().find(|r| r.size == size && r.transport == T::FramebusSpin.name());
        let (b_lat, b_fps) = base.map_or((f64::NAN, f64::NAN), |b| (pct(&b.latency_ns, 0.5), b.frames_per_s));
        println!("\n{size} frames (ratios: this row / framebus work queue, spinning)");
        println!(
            "{:<38} {:>10} {:>10} {:>10} {:>11} {:>9} {:>12} {:>12} {:>8}",
            "transport", "p50", "p99", "p99.9", "frames/s", "lat ×", "prod CPU/fr", "cons CPU/fr", "fps ×"
        );
        for r in rows.iter().filter(|r| r.size == size) {
            let p50 = pct(&r.latency_ns, 0.5);
            println!(
                "{:<38} {:>10} {:>10} {:>10} {:>11.0} {:>8.1}x {:>12} {:>12} {:>7.2}x",
                r.transport,
                human(p50),
                human(pct(&r.latency_ns, 0.99)),
                human(pct(&r.latency_ns, 0.999)),
                r.frames_per_s,
                p50 / b_lat,
                human(r.producer_cpu_ns_per_frame),
                human(r.consumer_cpu_ns_per_frame),
                r.frames_per_s / b_fps,
            );
        }
    }
}

fn write_plot(rows: &[Row], path: &std::path::Path) -> Res<()> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let max = rows.iter().map(|r| pct(&r.latency_ns, 0.5)).filter(|v| v.is_finite()).fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption("one-way latency p50 vs frame size (log-log)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((32f64..1e7f64).log_scale(), (50f64..max * 2.0).log_scale())
        .map_err(|e| e.to_string())?;
    chart.configure_mesh().x_desc("frame bytes").y_desc("latency (ns)").draw().map_err(|e| e.to_string())?;
    let mut names: Vec<&str> = Vec::new();
    for r in rows {
        if !names.contains(&r.transport.as_str()) && !r.transport.starts_with("limit: cache") {
            names.push(&r.transport);
        }
    }
    for (k, name) in names.into_iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let pts: Vec<(f64, f64)> =
            rows.iter().filter(|r| r.transport == name).map(|r| (r.bytes as f64, pct(&r.latency_ns, 0.5))).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
        chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled()))).map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
