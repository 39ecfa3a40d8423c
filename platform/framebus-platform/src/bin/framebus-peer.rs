//! `framebus-peer ROLE NAME [ARGS]`: a minimal consumer or producer process over a named
//! segment. The platform's multi-process tests spawn it; it is also handy for poking at a
//! segment by hand.
//!
//! Roles:
//! - `worker NAME` / `subscriber NAME` (`worker-at PATH`: a file-backed segment; `worker-fd
//!   SOCKET`: connect to a Unix socket and receive the segment's descriptor): consume until an END frame (flag bit 0), checking every
//!   frame's contents; print `count sum sumsq skipped` and exit 0.
//! - `hold NAME N`: register a worker, claim N frames, print `held`, then sleep until killed.
//! - `producer NAME N`: attach (taking over a dead producer), publish N frames, sleep until killed.
//! - `churn NAME LOG`: a worker that claims, checks, logs the sequence number (8 bytes, appended
//!   to LOG) and releases, forever: the victim of the crash-at-any-instant tests.
//! - `spew NAME`: a producer (taking over a dead one) publishing forever, waiting for space under
//!   Block: the other victim.
//! - `die-in register|unregister KIND NAME STEP` (KIND `worker`, `subscriber` or `latest`):
//!   register (and unregister) a consumer, stop the operation dead after step STEP (the core's
//!   fault-injection hook), then SIGKILL itself: a kill at an exact, replayable point.
//! - `entries KIND NAME`: register and unregister KIND forever (prints `ready` after the first
//!   round): the victim of the kills at any instant of the consumer-table operations.
//! - `sleep NAME`: register a worker, print `ready`, then sleep in `wait::claim` until killed.
//!
//! Frame contents: byte i of frame `seq` is `pattern(seq, i)`; see [`pattern`].

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use framebus_core::segment::FrameMeta;
use framebus_core::{BeginError, ConsumerKind};
use framebus_platform::{wait, SharedSegment};

/// Flag bit marking the end of a stream.
const END: u32 = 1;

/// Byte `i` of frame `seq`.
fn pattern(seq: u64, i: usize) -> u8 {
    (seq.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["worker", name] => SharedSegment::open(name).map_err(Into::into).and_then(|s| consume(&s, ConsumerKind::Worker)),
        ["worker-at", path] => {
            SharedSegment::open_at(std::path::Path::new(path)).map_err(Into::into).and_then(|s| consume(&s, ConsumerKind::Worker))
        }
        ["worker-fd", sock] => worker_fd(sock),
        ["subscriber", name] => SharedSegment::open(name).map_err(Into::into).and_then(|s| consume(&s, ConsumerKind::Subscriber)),
        ["hold", name, n] => hold(name, n.parse().unwrap_or(1)),
        ["producer", name, n] => produce(name, n.parse().unwrap_or(0)),
        ["churn", name, log] => churn(name, log),
        ["spew", name] => spew(name),
        ["die-in", op, kind, name, step] => die_in(op, kind, name, step),
        ["entries", kind, name] => entries(kind, name),
        ["sleep", name] => sleep(name),
        _ => Err("usage: framebus-peer worker|subscriber NAME | worker-at PATH | worker-fd SOCKET | hold NAME N | producer NAME N | churn NAME LOG | spew NAME | die-in register|unregister KIND NAME STEP | entries KIND NAME | sleep NAME".into()),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("framebus-peer: {e}");
            ExitCode::FAILURE
        }
    }
}

type Res = Result<(), Box<dyn std::error::Error>>;

#[cfg(target_os = "linux")]
fn worker_fd(sock: &str) -> Res {
    let sock = std::os::unix::net::UnixStream::connect(sock)?;
    consume(&SharedSegment::receive_fd(&sock)?, ConsumerKind::Worker)
}

#[cfg(not(target_os = "linux"))]
fn worker_fd(_: &str) -> Res {
    Err("worker-fd: descriptor passing is Linux-only".into())
}

fn consume(shared: &SharedSegment, kind: ConsumerKind) -> Res {
    let mut c = shared.register(kind)?;
    println!("ready");
    std::io::stdout().flush()?;
    let len = shared.segment().layout().planes.frame_size as usize;
    let mut buf = vec![0u8; len];
    let (mut count, mut sum, mut sumsq, mut last) = (0u64, 0u128, 0u128, None::<u64>);
    loop {
        let f = wait::claim(&mut c, Duration::from_secs(20))?;
        if f.meta.flags & END != 0 {
            wait::release(&mut c, f)?;
            break;
        }
        c.read(&f, 0, &mut buf)?;
        if let Some(i) = buf.iter().enumerate().position(|(i, b)| *b != pattern(f.seq, i)) {
            return Err(format!("torn frame: seq {} byte {i}", f.seq).into());
        }
        if last.is_some_and(|l| l >= f.seq) {
            return Err(format!("order: seq {} after {}", f.seq, last.unwrap_or(0)).into());
        }
        last = Some(f.seq);
        count += 1;
        sum += u128::from(f.seq);
        sumsq += u128::from(f.seq) * u128::from(f.seq);
        wait::release(&mut c, f)?;
    }
    let (_, skipped) = c.counts();
    println!("{count} {sum} {sumsq} {skipped}");
    Ok(())
}

fn hold(name: &str, n: usize) -> Res {
    let shared = SharedSegment::open(name)?;
    let mut c = shared.register(ConsumerKind::Worker)?;
    let frames: Vec<_> = (0..n).map(|_| wait::claim(&mut c, Duration::from_secs(20))).collect::<Result<_, _>>()?;
    println!("held {}", frames.len());
    std::io::stdout().flush()?;
    // Stay alive (holding what we hold) until the test kills us.
    loop {
        std::thread::park();
    }
}

fn produce(name: &str, n: u64) -> Res {
    let shared = SharedSegment::open(name)?;
    let seg = shared.segment();
    let mut p = shared.attach_producer()?;
    let len = seg.layout().planes.frame_size as usize;
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < n {
        let seq = seg.stats().next_seq;
        let full = match p.begin() {
            Ok(mut slot) => {
                buf.iter_mut().enumerate().for_each(|(i, b)| *b = pattern(seq, i));
                slot.write(0, &buf);
                wait::publish(slot, FrameMeta { payload_len: len as u64, ..FrameMeta::default() }, &seg);
                done += 1;
                false
            }
            Err(BeginError::Full) => true,
            Err(BeginError::DroppedNewest { .. }) => {
                done += 1;
                false
            }
            Err(e) => return Err(e.into()),
        };
        if full {
            wait::wait_for_space(&p, Duration::from_secs(20))?;
        }
    }
    println!("published {n}");
    std::io::stdout().flush()?;
    // Stay alive (holding what we hold) until the test kills us.
    loop {
        std::thread::park();
    }
}

fn churn(name: &str, log: &str) -> Res {
    let shared = SharedSegment::open(name)?;
    let mut c = shared.register(ConsumerKind::Worker)?;
    let mut log = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let len = shared.segment().layout().planes.frame_size as usize;
    let mut buf = vec![0u8; len];
    println!("ready");
    std::io::stdout().flush()?;
    loop {
        let f = match wait::claim(&mut c, Duration::from_millis(50)) {
            Ok(f) => f,
            Err(wait::WaitError::TimedOut) => continue,
            Err(e) => return Err(e.into()),
        };
        c.read(&f, 0, &mut buf)?;
        if let Some(i) = buf.iter().enumerate().position(|(i, b)| *b != pattern(f.seq, i)) {
            return Err(format!("torn frame: seq {} byte {i}", f.seq).into());
        }
        // One write(2) of 8 bytes on an O_APPEND file: whole or not at all, even under SIGKILL.
        log.write_all(&f.seq.to_le_bytes())?;
        wait::release(&mut c, f)?;
    }
}

fn spew(name: &str) -> Res {
    let shared = SharedSegment::open(name)?;
    let seg = shared.segment();
    let mut p = shared.attach_producer()?;
    let len = seg.layout().planes.frame_size as usize;
    let mut buf = vec![0u8; len];
    println!("ready");
    std::io::stdout().flush()?;
    loop {
        if !p.has_space() {
            match wait::wait_for_space(&p, Duration::from_millis(50)) {
                Ok(()) | Err(wait::WaitError::TimedOut) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let seq = seg.stats().next_seq;
        let mut slot = p.begin()?;
        buf.iter_mut().enumerate().for_each(|(i, b)| *b = pattern(seq, i));
        slot.write(0, &buf);
        wait::publish(slot, FrameMeta { payload_len: len as u64, ..FrameMeta::default() }, &seg);
    }
}

fn kind(k: &str) -> Result<ConsumerKind, Box<dyn std::error::Error>> {
    Ok(match k {
        "worker" => ConsumerKind::Worker,
        "subscriber" => ConsumerKind::Subscriber,
        "latest" => ConsumerKind::Latest,
        _ => return Err(format!("unknown consumer kind '{k}' (worker, subscriber or latest)").into()),
    })
}

/// Ends this process the way the crash tests mean: SIGKILL, no destructor, no exit code.
fn kill_self() -> ! {
    #[cfg(target_os = "linux")]
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    std::process::abort()
}

fn die_in(op: &str, k: &str, name: &str, step: &str) -> Res {
    let shared = SharedSegment::open(name)?;
    let kind = kind(k)?;
    let step: u32 = step.parse().map_err(|_| format!("step '{step}' is not a number"))?;
    let token = framebus_platform::process_token();
    match op {
        "register" => {
            shared.segment().register_dying(kind, token, framebus_platform::is_alive, step)?;
        }
        "unregister" => {
            shared.register(kind)?.unregister_dying(step)?;
        }
        _ => return Err(format!("die-in: unknown operation '{op}' (register or unregister)").into()),
    }
    kill_self()
}

fn entries(k: &str, name: &str) -> Res {
    let shared = SharedSegment::open(name)?;
    let kind = kind(k)?;
    let mut first = true;
    loop {
        let c = shared.register(kind)?;
        c.unregister()?;
        if first {
            println!("ready");
            std::io::stdout().flush()?;
            first = false;
        }
    }
}

fn sleep(name: &str) -> Res {
    let shared = SharedSegment::open(name)?;
    let mut c = shared.register(ConsumerKind::Worker)?;
    println!("ready");
    std::io::stdout().flush()?;
    loop {
        // No frame ever comes: the test kills us asleep on the frame-wake word.
        let _ = wait::claim(&mut c, Duration::from_secs(60));
    }
}
