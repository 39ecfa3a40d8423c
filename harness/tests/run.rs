//! `framebus run` end to end: real processes, a real segment, the bundled clip; and every bad
//! input a user can give it, each with one clear message and nothing left behind.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const CLIP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/media/bbb-720p25.mp4");

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("framebus-runtest-{}-{name}", std::process::id()))
}

fn framebus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_framebus")).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// No segment named `name` (or `name.*`) is left in /dev/shm.
fn no_segment_left(name: &str) {
    let prefix = format!("framebus.{name}");
    let left: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n == &prefix || n.starts_with(&format!("{prefix}.")))
        .collect();
    assert!(left.is_empty(), "segments left behind: {left:?}");
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn stub_workers_give_one_ordered_line_per_frame() {
    let out = tmp("stub.jsonl");
    let name = format!("rt{}stub", std::process::id());
    let o = framebus(&[
        "run",
        "--name",
        &name,
        "--video",
        CLIP,
        "--frames",
        "40",
        "--workers",
        "2",
        "--profile",
        "custom:5,1,0",
        "--policy",
        "block",
        "--jsonl",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let l = lines(&out);
    let _ = std::fs::remove_file(&out);
    assert_eq!(l.iter().map(|v| v["seq"].as_u64().unwrap()).collect::<Vec<_>>(), (0..40).collect::<Vec<_>>());
    // The stub posts its binary outcome record: not JSON, not text.
    assert!(l.iter().all(|v| v["base64"].is_string() && v["epoch"] == 1), "{:?}", &l[..2]);
    assert!(stderr(&o).contains("40 frames in, 40 results out, 0 skipped"), "{}", stderr(&o));
    no_segment_left(&name);
}

#[test]
fn a_config_error_names_the_file_the_line_and_the_key() {
    let f = tmp("bad.toml");
    for (text, want) in [
        ("[source]\nvideo = \"x.mp4\"\nfpss = 3\n", "unknown field `fpss`"),
        (
            &format!("[source]\nvideo = \"{CLIP}\"\npolicy = \"drop-sometimes\"\n[workers]\nprofile = \"aip\"\n"),
            ":3: [source] policy: unknown",
        ),
        (
            &format!("[source]\nvideo = \"{CLIP}\"\n[workers]\ncount = 99\nprofile = \"aip\"\n"),
            ":4: [workers] count: 99: use 1 to 14",
        ),
        (
            &format!("[source]\nvideo = \"{CLIP}\"\n[workers]\ncommand = [\"x\"]\nprofile = \"aip\"\n"),
            ":5: [workers] profile: give either command or profile",
        ),
        (
            &format!("[source]\nvideo = \"{CLIP}\"\n[workers]\nresult_max = 0\nprofile = \"aip\"\n"),
            ":4: [workers] result_max: 0: use 1 to",
        ),
        ("[source]\nexternal = { width = 64, height = 48 }\n", "[workers] needs command"),
        ("[workers]\nprofile = \"aip\"\n", "[source] needs video"),
        ("[source\nvideo = 1\n", "TOML parse error at line 1"),
    ] {
        write(&f, text);
        let o = framebus(&["run", f.to_str().unwrap()]);
        let e = stderr(&o);
        assert!(!o.status.success(), "{text}");
        assert!(e.contains(f.to_str().unwrap()), "names the file: {e}");
        assert!(e.contains(want), "{text:?}: want {want:?} in: {e}");
        assert!(!e.contains("panicked"), "{e}");
    }
    let _ = std::fs::remove_file(&f);
    let o = framebus(&["run", "/no/such/pipeline.toml"]);
    assert!(stderr(&o).contains("cannot read the pipeline file /no/such/pipeline.toml"), "{}", stderr(&o));
}

#[test]
fn a_missing_or_failing_worker_command_is_a_clear_error_and_leaves_nothing() {
    for (cmd, want) in [
        (vec!["/no/such/worker"], "no such program"),
        (
            vec!["sh", "-c", "echo no model here >&2; exit 3"],
            "exited (exit status: 3) before it registered in the segment",
        ),
    ] {
        let name = format!("rt{}bad{}", std::process::id(), cmd.len());
        let mut args = vec!["run", "--name", &name, "--video", CLIP, "--frames", "10", "--"];
        args.extend(cmd.iter());
        let o = framebus(&args);
        let e = stderr(&o);
        assert!(!o.status.success(), "{e}");
        assert!(e.contains(want) && e.contains("worker-0"), "want {want:?}: {e}");
        assert!(e.contains(cmd[0]), "names the command: {e}");
        no_segment_left(&name);
    }
}

#[test]
fn a_segment_name_in_use_is_refused_with_what_to_do() {
    let name = format!("rt{}busy", std::process::id());
    let spec = framebus_platform::core::SegmentSpec::new(
        framebus_platform::core::FrameGeometry::new(8, 8, framebus_platform::core::PixelFormat::Gray8),
        2,
    );
    let held =
        framebus_platform::SharedSegment::create(&name, &spec, framebus_platform::CreateOptions::default()).unwrap();
    let o = framebus(&["run", "--name", &name, "--video", CLIP, "--frames", "5", "--profile", "aip"]);
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(e.contains(&format!("segment {name} is in use")) && e.contains("framebus gc"), "{e}");
    assert_eq!(held.segment().stats().epoch, 0, "the segment in use was not touched");
}
