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
