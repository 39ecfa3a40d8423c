//! The `framebus` binary against real segments.
#![cfg(target_os = "linux")]

use std::process::Command;

use framebus_platform::core::{ConsumerKind, FrameGeometry, PixelFormat, SegmentSpec};
use framebus_platform::{CreateOptions, SharedSegment};

fn framebus(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_framebus")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn ls_and_inspect_show_a_live_segment() {
    let name = format!("cli-{}", std::process::id());
    let spec = SegmentSpec::new(FrameGeometry::new(320, 240, PixelFormat::Bgr24), 3);
    let shared = SharedSegment::create(&name, &spec, CreateOptions::default()).unwrap();
    let mut w = shared.register(ConsumerKind::Worker).unwrap();
    // Two frames through the worker: inspect shows its own count (not only the shared one).
    let mut p = shared.attach_producer().unwrap();
    for _ in 0..2 {
        p.begin().unwrap().publish(framebus_platform::core::segment::FrameMeta::default());
        let f = w.claim().unwrap();
        w.release(f).unwrap();
    }
    drop(p);
    let (ok, out) = framebus(&["ls"]);
    assert!(ok, "{out}");
    let line = out.lines().find(|l| l.starts_with(&name)).unwrap_or_else(|| panic!("not listed: {out}"));
    assert!(line.contains("320x240 Bgr24") && line.contains("alive"), "{line}");
    let (ok, out) = framebus(&["inspect", &name]);
    assert!(ok, "{out}");
    assert!(out.contains("pattern work-queue, policy block"), "{out}");
    assert!(out.contains("worker") && !out.contains("Some(") && out.contains("holds 0"), "{out}");
    assert!(out.contains("holds 0  delivered 2"), "the worker's own count, on its line: {out}");
    assert_eq!(out.matches(" free ").count(), 3, "{out}");
}

#[test]
fn errors_say_what_to_do() {
    let (ok, out) = framebus(&["inspect", "no-such-segment-here"]);
    assert!(!ok);
    assert!(out.contains("framebus ls"), "{out}");
    let (ok, out) = framebus(&["inspect", "a/b"]);
    assert!(!ok && out.contains("no path separators"), "{out}");
}

#[test]
fn gc_removes_a_segment_whose_creator_died() {
    let name = format!("cli-gc-{}", std::process::id());
    let spec = SegmentSpec::new(FrameGeometry::new(8, 8, PixelFormat::Gray8), 2);
    let s = SharedSegment::create(&name, &spec, CreateOptions { unlink_on_drop: false, ..CreateOptions::default() })
        .unwrap();
    let layout = *s.segment().layout();
    drop(s);
    // Forge a creator that does not exist (pid 4294967294).
    let dead = framebus_platform::core::Creator { id: u64::from(u32::MAX - 1), created_ns: 0 };
    std::fs::write(format!("/dev/shm/framebus.{name}"), {
        let mut bytes = std::fs::read(format!("/dev/shm/framebus.{name}")).unwrap();
        bytes[..256].copy_from_slice(&layout.encode_header(&dead));
        bytes
    })
    .unwrap();
    let (ok, out) = framebus(&["gc", "--dry-run"]);
    assert!(ok && out.contains(&format!("would remove {name}")), "{out}");
    let (ok, out) = framebus(&["gc"]);
    assert!(ok && out.contains(&format!("removed {name}")), "{out}");
    assert!(SharedSegment::open(&name).is_err());
}

#[test]
fn top_shows_a_running_pipeline_from_its_segment() {
    let name = format!("toptest{}", std::process::id());
    let mut sim = Command::new(env!("CARGO_BIN_EXE_framebus"))
        .args([
            "simulate",
            "--name",
            &name,
            "--duration",
            "6",
            "--workers",
            "2",
            "--profile",
            "custom:40,5,0",
            "--quiet",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    let flowing = || framebus_platform::SharedSegment::open(&name).is_ok_and(|s| s.segment().stats().write_pos >= 10);
    while !flowing() {
        assert!(t.elapsed().as_secs() < 30, "the simulation never published");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = Command::new(env!("CARGO_BIN_EXE_framebus")).args(["top", &name, "--once"]).output().unwrap();
    // Ctrl-C: the simulation removes its segments on the way out.
    assert!(Command::new("kill").args(["-INT", &sim.id().to_string()]).status().unwrap().success());
    let _ = sim.wait();
    assert!(!std::path::Path::new(&format!("/dev/shm/framebus.{name}")).exists(), "the run cleaned up");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        text.starts_with(&format!("framebus top {name}: 1280x720 bgr24, 5 slots, work-queue, drop-oldest")),
        "{text}"
    );
    let fps: f64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("frames     in ").or_else(|| l.trim().strip_prefix("frames in ")))
        .and_then(|l| l.split("/s").next()?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no frames line: {text}"));
    assert!((15.0..=35.0).contains(&fps), "about the clip's 25 fps: {text}");
    let workers: Vec<&str> =
        text.lines().skip_while(|l| !l.contains("workers")).skip(1).take_while(|l| l.starts_with("      ")).collect();
    assert_eq!(workers.len(), 2, "one line per worker: {text}");
    for w in workers {
        let busy: f64 = w.split_whitespace().nth(3).unwrap().trim_end_matches('%').parse().unwrap();
        assert!(busy > 20.0, "a 40 ms model at ~12 frames/s per worker is busy about half the time: {w}");
    }
    assert!(text.contains("reader     pid") && text.contains("stream open"), "{text}");
    let o =
        Command::new(env!("CARGO_BIN_EXE_framebus")).args(["top", "no-such-segment-here", "--once"]).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-segment-here"), "names the segment");
}
