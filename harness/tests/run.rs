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

/// The segment `name`, once the runtime has made it (at most 30 s).
fn wait_for_segment(name: &str) -> framebus_platform::SharedSegment {
    let t = std::time::Instant::now();
    loop {
        match framebus_platform::SharedSegment::open(name) {
            Ok(s) => return s,
            Err(_) if t.elapsed().as_secs() < 30 => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(e) => panic!("the runtime never made {name}: {e}"),
        }
    }
}

/// libframebus.a of this build (the test stage builds it first), or None outside CI.
fn libframebus() -> Option<PathBuf> {
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target");
    for profile in ["checked", "release", "debug"] {
        let lib = target.join(profile).join("libframebus.a");
        if lib.exists() {
            return Some(lib);
        }
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "libframebus.a missing: cargo build -p framebus-c");
    eprintln!("SKIPPED: libframebus.a not built (cargo build -p framebus-c)");
    None
}

#[test]
fn a_cpp_worker_on_libframebus_runs_under_framebus_run() {
    let Some(lib) = libframebus() else { return };
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let exe = tmp("frame_worker");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let built = Command::new(&cxx)
        .args(["-std=c++17", "-Wall", "-Wextra", "-Werror", "-O2", "-I"])
        .arg(root.join("bindings/c/include"))
        .arg(root.join("examples/cpp/frame_worker.cpp"))
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe)
        .status();
    match built {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{cxx} failed on examples/cpp/frame_worker.cpp: {s}"),
        Err(e) => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "no C++ compiler ({cxx}: {e}): apt-get install g++");
            eprintln!("SKIPPED: no C++ compiler ({cxx}: {e}; apt-get install g++)");
            return;
        }
    }
    let out = tmp("cpp.jsonl");
    let name = format!("rt{}cpp", std::process::id());
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
        "--policy",
        "block",
        "--jsonl",
        out.to_str().unwrap(),
        "--",
        exe.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&exe);
    assert!(o.status.success(), "{}", stderr(&o));
    let l = lines(&out);
    let _ = std::fs::remove_file(&out);
    assert_eq!(l.iter().map(|v| v["seq"].as_u64().unwrap()).collect::<Vec<_>>(), (0..40).collect::<Vec<_>>());
    for v in &l {
        let r = &v["result"];
        assert_eq!(r["seq"], v["seq"], "each result names its own frame: {v}");
        let mean = r["mean"].as_f64().unwrap();
        assert!(mean > 10.0 && mean < 250.0, "a real function of real pixels: {v}");
        let b = r["brightest"].as_array().unwrap();
        assert!(b[0].as_u64().unwrap() + 16 <= 1280 && b[1].as_u64().unwrap() + 16 <= 720, "{v}");
    }
    no_segment_left(&name);
}

#[test]
fn an_external_producer_feeds_the_pipeline_and_its_finish_ends_it() {
    // The user's own producer (here this test, through the platform crate) writes the segment
    // the runtime made; the runtime's workers are the stub; finishing the stream ends the run.
    let f = tmp("external.toml");
    let name = format!("rt{}ext", std::process::id());
    write(
        &f,
        &format!(
            "name = \"{name}\"\n[source]\nexternal = {{ width = 64, height = 48 }}\npolicy = \"block\"\n[workers]\ncount = 2\nprofile = \"custom:2,1,0\"\n"
        ),
    );
    let out = tmp("external.jsonl");
    let child = Command::new(env!("CARGO_BIN_EXE_framebus"))
        .args(["run", f.to_str().unwrap(), "--jsonl", out.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let seg = wait_for_segment(&name);
    let mut p = seg.attach_producer().unwrap();
    for i in 0..25u8 {
        framebus_platform::wait::wait_for_space(&p, std::time::Duration::from_secs(10)).unwrap();
        let mut slot = p.begin().unwrap();
        slot.write(0, &[i; 64 * 48 * 3]);
        framebus_platform::wait::publish(slot, framebus_platform::core::segment::FrameMeta::default(), &seg.segment());
    }
    p.finish();
    let o = child.wait_with_output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{e}");
    assert!(e.contains("25 frames in, 25 results out, 0 skipped"), "{e}");
    assert_eq!(lines(&out).len(), 25);
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&f);
    drop(seg);
    no_segment_left(&name);
}

#[test]
fn an_external_producer_that_dies_unreplaced_gets_its_stream_ended_by_the_runtime() {
    let f = tmp("orphan.toml");
    let name = format!("rt{}orphan", std::process::id());
    write(
        &f,
        &format!(
            "name = \"{name}\"\n[source]\nexternal = {{ width = 1280, height = 720 }}\n[workers]\ncount = 1\nprofile = \"custom:2,1,0\"\n"
        ),
    );
    let out = tmp("orphan.jsonl");
    let child = Command::new(env!("CARGO_BIN_EXE_framebus"))
        .args(["run", f.to_str().unwrap(), "--jsonl", out.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    drop(wait_for_segment(&name));
    // The user's producer: `framebus producer` on the runtime's segment, killed mid-stream.
    let mut producer = Command::new(env!("CARGO_BIN_EXE_framebus"))
        .args(["producer", "--segment", &name, "--video", CLIP])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let seg = framebus_platform::SharedSegment::open(&name).unwrap();
    while seg.segment().stats().write_pos < 10 {
        assert!(t.elapsed().as_secs() < 30, "the producer never published");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    producer.kill().unwrap();
    producer.wait().unwrap();
    drop(seg);
    let o = child.wait_with_output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{e}");
    assert!(e.contains("died and none took over in 5 s: ending the stream at seq"), "{e}");
    let l = lines(&out);
    let seqs: Vec<u64> = l.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>(), "every frame up to the end, in order");
    assert!(seqs.len() >= 10, "{e}");
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&f);
    no_segment_left(&name);
}

/// `GET /metrics` from 127.0.0.1:`port` (None until it answers).
fn scrape(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.") && head.contains(" 200 "), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/openmetrics-text"), "{head}");
    Some(body.to_string())
}

/// The value of the sample line `name` (with its labels, as printed).
fn sample(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name} in:\n{body}"))
}

#[test]
fn metrics_are_served_for_prometheus_while_the_pipeline_runs() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = tmp("metrics.jsonl");
    let name = format!("rt{}metrics", std::process::id());
    let child = Command::new(env!("CARGO_BIN_EXE_framebus"))
        .args(["run", "--name", &name, "--video", CLIP, "--frames", "100", "--workers", "2"])
        .args([
            "--profile",
            "custom:20,2,0",
            "--jsonl",
            out.to_str().unwrap(),
            "--metrics",
            &format!("127.0.0.1:{port}"),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    let first = loop {
        match scrape(port) {
            Some(b)
                if b.contains("framebus_frames_published_total")
                    && sample(&b, "framebus_frames_published_total") > 0.0 =>
            {
                break b
            }
            _ if t.elapsed().as_secs() < 30 => std::thread::sleep(std::time::Duration::from_millis(50)),
            _ => panic!("no metrics with frames at 127.0.0.1:{port}"),
        }
    };
    // A later scrape, once frames and results have moved on (at most 10 s).
    let second = loop {
        let b = scrape(port).expect("still served");
        let moved = |m: &str| sample(&b, m) > sample(&first, m);
        if moved("framebus_frames_published_total") && moved("framebus_results_total") {
            break b;
        }
        assert!(t.elapsed().as_secs() < 40, "the counters never moved:\n{first}\n{b}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    for b in [&first, &second] {
        for t in [
            "framebus_frames_issued counter",
            "framebus_results counter",
            "framebus_slots gauge",
            "framebus_worker_frames counter",
        ] {
            assert!(b.contains(&format!("# TYPE {t}")), "{t}:\n{b}");
        }
        let slots: f64 = ["free", "writing", "ready", "taken"]
            .iter()
            .map(|s| sample(b, &format!("framebus_slots{{state=\"{s}\"}}")))
            .sum();
        assert_eq!(slots, 5.0, "every slot in one state (2 workers + 3):\n{b}");
        assert!(b.trim_end().ends_with("# EOF"), "{b}");
    }
    let grew = |m: &str| sample(&second, m) > sample(&first, m);
    assert!(
        grew("framebus_frames_published_total") && grew("framebus_results_total"),
        "counters move:\n{first}\n{second}"
    );
    let per_worker = sample(&second, "framebus_worker_frames_total{worker=\"worker-0\"}")
        + sample(&second, "framebus_worker_frames_total{worker=\"worker-1\"}");
    assert!(per_worker > 0.0 && per_worker <= sample(&second, "framebus_frames_published_total"), "{second}");
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = std::fs::remove_file(&out);
    // The address is checked before anything starts.
    let o = framebus(&["run", "--video", CLIP, "--profile", "aip", "--metrics", "127.0.0.1:notaport"]);
    assert!(stderr(&o).contains("--metrics 127.0.0.1:notaport: cannot listen there"), "{}", stderr(&o));
}

#[test]
fn sigterm_drains_the_frames_in_flight_then_stops_and_removes_everything() {
    let out = tmp("drain.jsonl");
    let name = format!("rt{}drain", std::process::id());
    // Slow workers (300 ms a frame) on a 25 fps clip under block: frames are in flight when the
    // signal comes.
    let child = Command::new(env!("CARGO_BIN_EXE_framebus"))
        .args(["run", "--name", &name, "--video", CLIP, "--frames", "100", "--workers", "2", "--policy", "block"])
        .args(["--profile", "custom:300,0,0", "--jsonl", out.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    let flowing = || framebus_platform::SharedSegment::open(&name).is_ok_and(|s| s.segment().stats().write_pos >= 4);
    while !flowing() {
        assert!(t.elapsed().as_secs() < 30, "the pipeline never published");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let signalled = std::time::Instant::now();
    let o = child.wait_with_output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "an interrupted run says so: {e}");
    assert!(e.contains("stopping: the stream ends at seq") && e.contains("draining the frames in flight"), "{e}");
    assert!(e.contains("the frames in flight were drained"), "{e}");
    assert!(signalled.elapsed().as_secs() < 10, "within the drain deadline: {e}");
    let at: u64 = e.split("the stream ends at seq ").nth(1).and_then(|r| r.split(';').next()?.parse().ok()).unwrap();
    let l = lines(&out);
    let _ = std::fs::remove_file(&out);
    let seqs: Vec<u64> = l.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..at).collect::<Vec<_>>(), "every frame issued before the stop has its line, in order: {e}");
    assert!(l.iter().filter(|v| v["base64"].is_string()).count() >= 2, "the frames in flight got their results: {e}");
    no_segment_left(&name);
}
