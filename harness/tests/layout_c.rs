//! `docs/LAYOUT.md` is exact enough for an outsider: `examples/c/layout_consumer.c`, a C11
//! consumer written from the document alone (atomics and system calls, no libframebus), is
//! built with the system compiler and run as workers, subscribers and a latest reader against
//! the Rust producer (`framebus producer`) decoding the bundled clip. Every frame must arrive
//! (each once across workers, all to every subscriber), in order, with the content checksum
//! the producer wrote.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use framebus_platform::core::{FrameGeometry, OverflowPolicy, Pattern, PixelFormat, SegmentSpec};
use framebus_platform::{CreateOptions, SharedSegment};

const FRAMES: u64 = 60;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The C consumer, built with `$CC` (default `cc`) and the flags its header comment names;
/// `None` (a skip, an error under CI) without a C compiler.
fn build() -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    if Command::new(&cc).arg("--version").output().is_err() {
        let msg = format!("no C compiler ({cc}): apt-get install gcc");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("skipped: {msg}");
        return None;
    }
    let out = std::env::temp_dir().join(format!("layout_consumer-{}", std::process::id()));
    let st = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-o"])
        .arg(&out)
        .arg(repo().join("examples/c/layout_consumer.c"))
        .status()
        .expect("run the C compiler");
    assert!(st.success(), "examples/c/layout_consumer.c does not build warning-free with -std=c11");
    Some(out)
}

/// A C consumer of `kind` on segment `name`, once it has printed `ready` (it has registered).
fn start(exe: &Path, kind: &str, name: &str) -> (Child, BufReader<ChildStdout>) {
    let mut child = Command::new(exe)
        .args([kind, name, "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the C consumer");
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read its first line");
    assert_eq!(line.trim(), "ready", "the C {kind} did not register");
    (child, out)
}

/// The consumer's final line as (key, value) pairs, after it exited successfully.
fn finish((mut child, mut out): (Child, BufReader<ChildStdout>), kind: &str) -> Vec<(String, i128)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "the C {kind} did not stop after the producer left");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut text = String::new();
    std::io::Read::read_to_string(&mut out, &mut text).expect("read its output");
    assert!(status.success(), "the C {kind} failed ({status}): {text}");
    let last = text.lines().last().unwrap_or_else(|| panic!("the C {kind} printed no result"));
    last.split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("bad result line: {last}"));
            (k.to_string(), v.parse().unwrap_or_else(|_| panic!("bad value in: {last}")))
        })
        .collect()
}

fn get(r: &[(String, i128)], key: &str) -> i128 {
    r.iter().find(|(k, _)| k == key).unwrap_or_else(|| panic!("no {key} in {r:?}")).1
}

/// Creates segment `name` for the bundled clip, runs the consumers `kinds` from `exe` on it,
/// then the Rust producer for [`FRAMES`] frames; returns each consumer's result line.
fn run(exe: &Path, tag: &str, pattern: Pattern, kinds: &[&str]) -> Vec<Vec<(String, i128)>> {
    let name = format!("layout-c-{tag}-{}", std::process::id());
    let spec = SegmentSpec::new(FrameGeometry::new(1280, 720, PixelFormat::Bgr24), 4)
        .with_pattern(pattern)
        .with_policy(OverflowPolicy::Block);
    let seg = SharedSegment::create(&name, &spec, CreateOptions::default()).expect("create the segment");
    let consumers: Vec<_> = kinds.iter().map(|k| start(exe, k, &name)).collect();
    let st = Command::new(env!("CARGO_BIN_EXE_framebus"))
        .args(["producer", "--segment", &name, "--frames", &FRAMES.to_string(), "--max-speed", "--video"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("media/bbb-720p25.mp4"))
        .stdout(Stdio::null())
        .status()
        .expect("run framebus producer");
    assert!(st.success(), "framebus producer failed");
    let results = consumers.into_iter().zip(kinds).map(|(c, k)| finish(c, k)).collect();
    drop(seg);
    results
}

fn check_clean(r: &[(String, i128)]) {
    assert_eq!(get(r, "checksum_bad"), 0, "{r:?}");
    assert_eq!(get(r, "order_violations"), 0, "{r:?}");
    assert_eq!(get(r, "checksum_ok"), get(r, "frames"), "every frame carried a checksum: {r:?}");
}

#[test]
fn a_c_consumer_written_from_layout_md_alone_reads_what_the_rust_producer_writes() {
    let Some(exe) = build() else { return };
    let all: i128 = (0..i128::from(FRAMES)).sum();

    // Work queue: two C workers share the frames, each exactly once; a latest reader beside
    // them sees some, in order, intact.
    let r = run(&exe, "work", Pattern::WorkQueue, &["worker", "worker", "latest"]);
    for w in &r {
        check_clean(w);
    }
    assert_eq!(get(&r[0], "frames") + get(&r[1], "frames"), i128::from(FRAMES), "{r:?}");
    assert_eq!(get(&r[0], "seq_sum") + get(&r[1], "seq_sum"), all, "each frame to exactly one worker: {r:?}");
    assert!(get(&r[2], "frames") >= 1, "the latest reader saw a frame: {r:?}");

    // Broadcast under Block: every subscriber gets every frame.
    let r = run(&exe, "bcast", Pattern::Broadcast, &["subscriber", "subscriber"]);
    for s in &r {
        check_clean(s);
        assert_eq!((get(s, "frames"), get(s, "seq_sum")), (i128::from(FRAMES), all), "{r:?}");
        assert_eq!((get(s, "first_seq"), get(s, "last_seq")), (0, i128::from(FRAMES) - 1), "{r:?}");
    }
    let _ = std::fs::remove_file(exe);
}
