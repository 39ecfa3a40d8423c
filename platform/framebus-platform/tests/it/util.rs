//! Spawning peers and producing frames in the test process.
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use framebus_core::segment::FrameMeta;
use framebus_core::{BeginError, FrameGeometry, PixelFormat, Producer, Segment, SegmentSpec};
use framebus_platform::wait;

/// Flag the peers treat as end of stream.
pub const END: u32 = 1;

/// A name no other test (or test run) uses.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("t-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// 1 KiB gray frames.
pub fn spec(slots: u32) -> SegmentSpec {
    SegmentSpec::new(FrameGeometry::new(64, 16, PixelFormat::Gray8), slots)
}

/// Byte `i` of frame `seq` (the same function as in `framebus-peer`).
pub fn pattern(seq: u64, i: usize) -> u8 {
    (seq.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8
}

/// The command line that starts `framebus-peer`: the binary, preceded under cross-testing by
/// `FRAMEBUS_PEER_RUNNER` (e.g. `qemu-aarch64 -L /usr/aarch64-linux-gnu`, set by
/// `cargo xtask cross aarch64`).
pub fn peer_argv() -> Vec<String> {
    let runner = std::env::var("FRAMEBUS_PEER_RUNNER").unwrap_or_default();
    runner.split_whitespace().map(str::to_string).chain([env!("CARGO_BIN_EXE_framebus-peer").to_string()]).collect()
}

/// A running peer process with its stdout lines.
pub struct Peer {
    pub child: Child,
    out: BufReader<ChildStdout>,
}

impl Peer {
    /// Spawns `framebus-peer ARGS`; under cross-testing, through `FRAMEBUS_PEER_RUNNER`
    /// (e.g. `qemu-aarch64 -L /usr/aarch64-linux-gnu`, set by `cargo xtask cross aarch64`).
    pub fn spawn(args: &[&str]) -> Peer {
        let argv = peer_argv();
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        let mut child =
            cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn framebus-peer");
        let out = BufReader::new(child.stdout.take().expect("piped"));
        Peer { child, out }
    }

    /// The next line the peer prints (panics if it exits first).
    pub fn line(&mut self) -> String {
        let mut l = String::new();
        self.out.read_line(&mut l).expect("read peer output");
        assert!(!l.is_empty(), "peer exited without output");
        l.trim().to_string()
    }

    /// Waits for a consumer peer's summary: (count, sum of seqs, sum of squares, skipped).
    pub fn summary(mut self) -> (u64, u128, u128, u64) {
        let mut l = self.line();
        if l == "ready" {
            l = self.line();
        }
        let status = self.child.wait().expect("wait peer");
        assert!(status.success(), "peer failed: {status}");
        let v: Vec<u128> = l.split_whitespace().map(|x| x.parse().expect("number")).collect();
        (v[0] as u64, v[1], v[2], v[3] as u64)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Publishes `n` frames (sleeping for space under Block); returns how many were dropped newest.
pub fn produce(p: &mut Producer<'_>, seg: &Segment<'_>, n: u64) -> u64 {
    let len = seg.layout().planes.frame_size as usize;
    let mut buf = vec![0u8; len];
    let (mut done, mut dropped) = (0, 0);
    while done < n {
        let seq = seg.stats().next_seq;
        let full = match p.begin() {
            Ok(mut slot) => {
                buf.iter_mut().enumerate().for_each(|(i, b)| *b = pattern(seq, i));
                slot.write(0, &buf);
                wait::publish(slot, FrameMeta { payload_len: len as u64, ..FrameMeta::default() }, seg);
                done += 1;
                false
            }
            Err(BeginError::Full) => true,
            Err(BeginError::DroppedNewest { .. }) => {
                done += 1;
                dropped += 1;
                false
            }
            Err(e) => panic!("producer: {e}"),
        };
        if full {
            wait::wait_for_space(p, Duration::from_secs(20)).expect("consumers stalled");
        }
    }
    dropped
}

/// Publishes `k` END frames (one per worker; one reaches every subscriber).
pub fn end(p: &mut Producer<'_>, seg: &Segment<'_>, k: usize) {
    for _ in 0..k {
        loop {
            let full = match p.begin() {
                Ok(slot) => {
                    wait::publish(slot, FrameMeta { flags: END, ..FrameMeta::default() }, seg);
                    false
                }
                Err(BeginError::Full) => true,
                Err(e) => panic!("producer: {e}"),
            };
            if !full {
                break;
            }
            wait::wait_for_space(p, Duration::from_secs(20)).expect("consumers stalled");
        }
    }
}

pub const SECOND: Duration = Duration::from_secs(1);
