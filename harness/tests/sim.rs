//! `framebus simulate` end to end: real processes, a real segment, real decoded video.
//!
//! The runs share two cores, so they take turns (one lock): the presets' outcomes depend on
//! the workers getting the time their profile says. Outcomes are asserted, timings are not.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("framebus-simtest-{}-{name}", std::process::id()))
}

/// Runs `framebus simulate ARGS --quiet --json F`; returns (success, output, report), after
/// checking that the run left no segment behind, whatever its outcome.
fn simulate(tag: &str, args: &[&str]) -> (bool, String, Option<Value>) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let json = tmp(&format!("{tag}.json"));
    let _ = std::fs::remove_file(&json);
    let child = Command::new(env!("CARGO_BIN_EXE_framebus"))
        .arg("simulate")
        .args(args)
        .args(["--quiet", "--json"])
        .arg(&json)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    no_segment_left(pid);
    let report = std::fs::read_to_string(&json).ok().map(|s| serde_json::from_str(&s).unwrap());
    let _ = std::fs::remove_file(&json);
    (out.status.success(), text, report)
}

fn n(r: &Value, key: &str) -> u64 {
    r[key].as_u64().unwrap_or_else(|| panic!("no {key} in {r}"))
}

fn drops(r: &Value) -> u64 {
    r["dropped"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum()
}

/// Every healthy run: every frame accounted for, in order, unaltered, memory flat.
fn check_invariants(r: &Value, out: &str) {
    assert_eq!(n(r, "order_violations"), 0, "{out}");
    assert_eq!(n(r, "worker_order_violations"), 0, "workers claim in publish order: {out}");
    assert_eq!(n(r, "integrity_failures"), 0, "{out}");
    assert_eq!(n(r, "unexpected_results"), 0, "{out}");
    assert_eq!(n(r, "late_results"), 0, "{out}");
    assert_eq!(n(r, "frames_out") + drops(r), n(r, "frames_in"), "every frame is out or counted as dropped: {out}");
    // The only losses are the producer's own, and the collector saw each one of them.
    for (cause, count) in r["dropped"].as_object().unwrap() {
        assert!(cause == "drop_oldest" || cause == "drop_newest", "frames lost after publishing ({cause}): {out}");
        assert_eq!(count.as_u64(), r["producer_dropped"][cause].as_u64(), "{cause}: {out}");
    }
    for (cause, count) in r["producer_dropped"].as_object().unwrap() {
        assert_eq!(count.as_u64().unwrap(), r["dropped"].get(cause).map_or(0, |v| v.as_u64().unwrap()), "{out}");
    }
    let per_worker: u64 = r["frames_per_worker"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(per_worker, n(r, "frames_out"), "each result came from one worker: {out}");
    assert_eq!(r["memory_flat"], Value::Bool(true), "{out}");
    assert!(n(r, "frames_out") > 0, "{out}");
}

/// No segment of the run whose orchestrator had `pid` remains (names are `simPID` and
/// `simPID.out`).
fn no_segment_left(pid: u32) {
    let prefix = format!("framebus.sim{pid}");
    let left: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n == &prefix || n.starts_with(&format!("{prefix}.")))
        .collect();
    assert!(left.is_empty(), "segments left behind: {left:?}");
}

#[test]
fn the_report_has_every_key_and_accounts_for_every_frame() {
    let (ok, out, r) = simulate("keys", &["--frames", "60", "--workers", "3", "--profile", "custom:20,5,0.1"]);
    assert!(ok, "{out}");
    let r = r.expect("json written");
    // The report's keys are a contract (scripts read the JSON): exactly these, no more.
    let keys: std::collections::BTreeSet<&str> = r.as_object().expect("an object").keys().map(String::as_str).collect();
    let want: std::collections::BTreeSet<&str> = [
        "preset",
        "video",
        "geometry",
        "frames_in",
        "frames_out",
        "dropped",
        "order_violations",
        "integrity_failures",
        "unexpected_results",
        "worker_order_violations",
        "transport_samples",
        "producer_behind_ms",
        "producer_dropped",
        "late_results",
        "fps_in",
        "fps_out",
        "latency_ms",
        "transport_us",
        "queue_ms",
        "model_ms",
        "service_ms",
        "workers",
        "profile",
        "policy",
        "slots",
        "backing",
        "accelerator_path",
        "accelerator_registered_runs",
        "accelerator_unregistered_runs",
        "accelerator_zero_copy",
        "accelerator_counts_known",
        "segment_bytes",
        "utilisation",
        "frames_per_worker",
        "decode_ms_mean",
        "peak_rss_bytes",
        "memory",
        "memory_flat",
        "wall_s",
        "restarts",
        "deaths",
        "accounted",
        "redelivered",
        "timeline",
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, want, "the report's keys changed");
    for key in ["p50", "p90", "p99", "max"] {
        assert!(r["latency_ms"][key].as_f64().is_some(), "latency_ms.{key}");
    }
    for key in ["p50", "p99"] {
        assert!(r["transport_us"][key].as_f64().is_some(), "transport_us.{key}");
    }
    for who in ["producer", "runtime", "worker-0", "worker-1", "worker-2"] {
        assert!(n(&r["peak_rss_bytes"], who) > 0, "peak RSS of {who}");
    }
    assert_eq!(n(&r, "frames_in"), 60);
    assert_eq!(n(&r, "workers"), 3);
    assert_eq!(r["restarts"], serde_json::json!({}), "nothing died: {out}");
    assert_eq!(r["accounted"], Value::Bool(true), "{out}");
    check_invariants(&r, &out);
}

#[test]
fn block_loses_nothing_and_drop_newest_counts_what_it_skips() {
    // Two slow workers, a fast camera: Block makes the producer wait, nothing is dropped.
    let (ok, out, r) = simulate(
        "block",
        &["--frames", "40", "--workers", "2", "--profile", "custom:60,0,0", "--policy", "block", "--fps", "100"],
    );
    assert!(ok, "{out}");
    let r = r.unwrap();
    check_invariants(&r, &out);
    assert_eq!((n(&r, "frames_out"), drops(&r)), (40, 0), "{out}");
    // The same under drop-newest: frames are skipped, and every one is counted by cause.
    let (ok, out, r) = simulate(
        "newest",
        &["--frames", "40", "--workers", "2", "--profile", "custom:60,0,0", "--policy", "drop-newest", "--fps", "100"],
    );
    assert!(ok, "{out}");
    let r = r.unwrap();
    check_invariants(&r, &out);
    assert!(n(&r["dropped"], "drop_newest") > 0, "{out}");
    assert_eq!(drops(&r), n(&r["dropped"], "drop_newest"), "{out}");
    // Thousands of drops while one frame is being worked on: far more than the results window
    // holds (4096 cells). No frame in flight is pushed out of it: every published frame has its
    // result. The drops the producer could not mark because they fell beyond the reader's
    // window come out as `window_overflow` — still counted, one per frame.
    let y4m = tmp("flood.y4m");
    write_y4m(&y4m, 96, 64, 10, None);
    let (ok, out, r) = simulate(
        "flood",
        &[
            "--video",
            y4m.to_str().unwrap(),
            "--max-speed",
            "--policy",
            "drop-newest",
            "--profile",
            "custom:60,0,0",
            "--workers",
            "1",
            "--frames",
            "5000",
        ],
    );
    let _ = std::fs::remove_file(&y4m);
    assert!(ok, "{out}");
    let r = r.unwrap();
    assert_eq!(r["accounted"], Value::Bool(true), "{out}");
    for key in ["order_violations", "worker_order_violations", "integrity_failures", "unexpected_results"] {
        assert_eq!(n(&r, key), 0, "{key}: {out}");
    }
    let dropped = n(&r["producer_dropped"], "drop_newest");
    assert!(dropped > 4000, "{out}");
    assert_eq!(n(&r, "frames_out"), 5000 - dropped, "every published frame has its result: {out}");
    let beyond = r["dropped"].get("window_overflow").map_or(0, |v| v.as_u64().unwrap());
    assert_eq!(n(&r["dropped"], "drop_newest") + beyond, dropped, "each drop counted once: {out}");
    assert_eq!(drops(&r), dropped, "and nothing else lost: {out}");
}

#[test]
fn the_board_presets_give_the_board_outcomes() {
    // board-v1: one slow model on a 25 fps 1080p camera: frames are dropped, memory stays flat.
    let (ok, out, v1) = simulate("v1", &["--preset", "board-v1", "--duration", "6"]);
    assert!(ok, "{out}");
    let v1 = v1.unwrap();
    check_invariants(&v1, &out);
    assert!(drops(&v1) > n(&v1, "frames_in") / 2, "most frames dropped, none queued: {out}");

    // board-dsp6: six contending DSP instances plus overhead do not keep up.
    let (ok, out, dsp) = simulate("dsp6", &["--preset", "board-dsp6", "--duration", "10"]);
    assert!(ok, "{out}");
    let dsp = dsp.unwrap();
    check_invariants(&dsp, &out);
    assert!(drops(&dsp) > 0, "6 x dsp cannot keep up at 25 fps: {out}");

    // board-aip6: six AIP instances keep up: no drop after warm-up, latency about one call.
    let (ok, out, aip) = simulate("aip6", &["--preset", "board-aip6", "--duration", "8"]);
    assert!(ok, "{out}");
    let aip = aip.unwrap();
    check_invariants(&aip, &out);
    let late_drops = aip["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["t_s"].as_f64().unwrap() > 2.0 && p["latency_ms"].is_null())
        .count();
    assert_eq!(late_drops, 0, "no drop after the first 2 s: {out}");
    // About one model call (with the worker's overhead), plus however far decoding fell behind.
    let lat = aip["latency_ms"]["p50"].as_f64().unwrap();
    let call = aip["service_ms"]["p50"].as_f64().unwrap();
    let behind = aip["producer_behind_ms"].as_f64().unwrap();
    assert!(lat < 2.0 * call + behind, "latency ({lat} ms) is about one model call ({call} ms): {out}");
}

fn write_y4m(path: &Path, w: usize, h: usize, frames: usize, broken_at: Option<usize>) {
    let mut b = format!("YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420jpeg\n").into_bytes();
    for f in 0..frames {
        b.extend_from_slice(if broken_at == Some(f) { b"FRAMX\n" } else { b"FRAME\n" });
        b.extend((0..w * h).map(|i| ((i + f * 7) % 251) as u8));
        b.extend(std::iter::repeat_n(128u8, 2 * w.div_ceil(2) * h.div_ceil(2)));
    }
    std::fs::write(path, b).unwrap();
}

#[test]
fn a_y4m_file_is_a_video_source_too() {
    let y4m = tmp("clip.y4m");
    write_y4m(&y4m, 96, 64, 10, None);
    let (ok, out, r) = simulate(
        "y4m",
        &[
            "--video",
            y4m.to_str().unwrap(),
            "--frames",
            "30",
            "--workers",
            "2",
            "--profile",
            "custom:5,1,0",
            "--max-speed",
        ],
    );
    let _ = std::fs::remove_file(&y4m);
    assert!(ok, "{out}");
    let r = r.unwrap();
    assert_eq!(r["geometry"], "96x64 Bgr24");
    check_invariants(&r, &out);
}

#[test]
fn bad_input_gets_one_clear_line_and_no_segment_is_left() {
    let garbage = tmp("garbage.mp4");
    std::fs::write(&garbage, b"this is not a video at all").unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["--video", "/no/such/clip.mp4"], "cannot open video /no/such/clip.mp4"),
        (&["--video", garbage.to_str().unwrap()], "is damaged"),
        (&["--profile", "turbo"], "unknown profile 'turbo'"),
        (&["--preset", "board-v9"], "unknown preset 'board-v9': use one of board-v1, board-dsp6, board-aip6"),
        (&["--workers", "0"], "--workers 0: use 1 to 15"),
        (&["--profile", "slow", "--workers", "2"], "supports 1 instance(s)"),
    ];
    for (args, expect) in cases {
        let (ok, out, _) = simulate("bad", args);
        assert!(!ok, "{args:?} should fail: {out}");
        assert!(out.contains(expect), "{args:?}: expected '{expect}' in: {out}");
        assert!(!out.contains("panicked"), "{args:?}: {out}");
        assert_eq!(out.trim().lines().count(), 1, "one line: {out}");
    }
    let _ = std::fs::remove_file(&garbage);
}

#[test]
fn a_role_failing_at_every_restart_stops_the_run_and_removes_every_segment() {
    // The producer meets a damaged frame after the segments exist and every role runs; each
    // restart resumes at that frame and fails again: a crash loop.
    let y4m = tmp("broken.y4m");
    write_y4m(&y4m, 96, 64, 10, Some(4));
    let (ok, out, r) = simulate(
        "broken",
        &["--video", y4m.to_str().unwrap(), "--frames", "30", "--workers", "2", "--profile", "custom:5,1,0"],
    );
    let _ = std::fs::remove_file(&y4m);
    assert!(!ok && r.is_none(), "{out}");
    assert!(out.contains("a frame does not start with FRAME"), "the producer says why: {out}");
    assert!(out.contains("resuming the stream"), "it was restarted where it stopped: {out}");
    assert!(out.contains("producer keeps dying: 4 times in a row"), "the run says who and why it gave up: {out}");
    assert!(out.contains("framebus") && out.contains(" producer --"), "and the command: {out}");
    assert!(!out.contains("panicked"), "{out}");
    // (`simulate` checked that no segment is left.)
}

#[test]
fn ctrl_c_stops_every_process_and_removes_every_segment() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let child = Command::new(env!("CARGO_BIN_EXE_framebus"))
        .args(["simulate", "--quiet", "--duration", "60"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait until the run is under way (frames are flowing through its segment), then interrupt it.
    let name = format!("sim{pid}");
    let t = std::time::Instant::now();
    let flowing = || framebus_platform::SharedSegment::open(&name).is_ok_and(|s| s.segment().stats().write_pos >= 5);
    while !flowing() {
        assert!(t.elapsed().as_secs() < 30, "the simulation never published frames on {name}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("interrupted (Ctrl-C)"), "{text}");
    no_segment_left(pid);
    // Every role's command line names the run's segments (`simPID`); none may be left running.
    let orphans = Command::new("pgrep").args(["-f", "--", &format!("sim{pid}")]).output().unwrap();
    assert_eq!(orphans.status.code(), Some(1), "role processes left: {}", String::from_utf8_lossy(&orphans.stdout));
}

#[test]
fn the_accelerator_reads_every_slot_through_its_fd_registration_on_every_backing_there_is() {
    for backing in ["posix", "memfd"] {
        let (ok, out, r) = simulate(
            &format!("backing-{backing}"),
            &["--backing", backing, "--frames", "40", "--workers", "2", "--profile", "gpu"],
        );
        assert!(ok, "{out}");
        let r = r.unwrap();
        check_invariants(&r, &out);
        assert_eq!(r["backing"], backing);
        assert_eq!(r["accelerator_path"], "registered fd", "{out}");
        // Every frame the workers ran went through the stub's own mapping of the segment's fd
        // and matched the bytes at the slot's address: the runtime saw the slot, not a copy.
        assert_eq!(n(&r, "accelerator_registered_runs"), n(&r, "frames_out"), "{out}");
        assert_eq!(n(&r, "accelerator_unregistered_runs"), 0, "{out}");
        assert_eq!(r["accelerator_zero_copy"], true, "{out}");
    }
    for (backing, device) in [("dmabuf", "/dev/dma_heap/system"), ("udmabuf", "/dev/udmabuf")] {
        let (ok, out, r) = simulate(&format!("backing-{backing}"), &["--backing", backing, "--frames", "20"]);
        if std::fs::OpenOptions::new().read(true).write(true).open(device).is_ok() {
            assert!(ok, "{out}");
            assert_eq!(r.unwrap()["accelerator_zero_copy"], true, "{out}");
        } else {
            assert!(!ok && out.contains(device), "{out}");
            println!("skipped the {backing} run: {device} is missing or not usable by this user");
        }
    }
}

/// The pids of the live children of `parent` whose command line has every word of `words`.
fn children(parent: u32, words: &[&str]) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the command (which may hold spaces) end with ')': state, ppid, ...
        let after = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
        let mut f = after.split_whitespace();
        let (state, ppid) = (f.next(), f.next().and_then(|p| p.parse::<u32>().ok()));
        if ppid != Some(parent) || state == Some("Z") {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<String> = cmd.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if words.iter().all(|w| args.iter().any(|a| a == w)) {
            out.push(pid);
        }
    }
    out
}

/// Starts `framebus simulate ARGS --quiet --json F` in the background and waits until frames
/// flow through its segment; returns the child and the report path.
fn start_simulation(tag: &str, args: &[&str]) -> (std::process::Child, PathBuf) {
    let json = tmp(&format!("{tag}.json"));
    let _ = std::fs::remove_file(&json);
    let child = Command::new(env!("CARGO_BIN_EXE_framebus"))
        .arg("simulate")
        .args(args)
        .args(["--quiet", "--json"])
        .arg(&json)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_published(&format!("sim{}", child.id()), 5);
    (child, json)
}

/// Waits until segment `name` has published `n` frames (at most 30 s).
fn wait_published(name: &str, n: u64) {
    let t = std::time::Instant::now();
    while !framebus_platform::SharedSegment::open(name).is_ok_and(|s| s.segment().stats().write_pos >= n) {
        assert!(t.elapsed().as_secs() < 30, "{name} never published {n} frames");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn kill9(pid: u32) {
    assert!(Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap().success());
}

/// Waits for a live child of `parent` with `words`, other than `not`.
fn wait_child(parent: u32, words: &[&str], not: Option<u32>) -> u32 {
    let t = std::time::Instant::now();
    loop {
        if let Some(p) = children(parent, words).into_iter().find(|p| Some(*p) != not) {
            return p;
        }
        assert!(t.elapsed().as_secs() < 30, "no {words:?} process under {parent}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn kill_9_of_workers_and_the_producer_mid_run_loses_only_their_frames_and_the_run_goes_on() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (child, json) = start_simulation("kill9", &["--workers", "3", "--duration", "8"]);
    let sim = child.id();
    // A worker in the middle of a model call (aip: ~100 ms each, so it almost always holds a
    // frame), then the producer, then the restarted worker again.
    // At 25 fps for 200 frames: the worker at frame 5 (start_simulation waits for it), the
    // producer at 40, the restarted worker at 100.
    let w = wait_child(sim, &["worker", "--index", "1"], None);
    kill9(w);
    wait_published(&format!("sim{sim}"), 40);
    kill9(wait_child(sim, &["producer"], None));
    wait_published(&format!("sim{sim}"), 100);
    kill9(wait_child(sim, &["worker", "--index", "1"], Some(w)));
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    no_segment_left(sim);
    let orphans = Command::new("pgrep").args(["-f", "--", &format!("sim{sim}")]).output().unwrap();
    assert_eq!(orphans.status.code(), Some(1), "role processes left: {}", String::from_utf8_lossy(&orphans.stdout));
    assert!(out.status.success(), "the run survives its processes dying: {text}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    assert_eq!(r["accounted"], Value::Bool(true), "{text}");
    assert_eq!(n(&r, "frames_out") + drops(&r), n(&r, "frames_in"), "in = out + dropped + lost: {text}");
    assert_eq!(n(&r, "frames_in"), 200, "the restarted producer went on to the last frame: {text}");
    assert_eq!(n(&r, "order_violations"), 0, "{text}");
    assert_eq!(n(&r, "integrity_failures"), 0, "{text}");
    assert_eq!(n(&r, "unexpected_results"), 0, "{text}");
    assert_eq!(r["restarts"], serde_json::json!({"producer": 1, "worker-1": 2}), "{text}");
    assert_eq!(r["deaths"]["worker-1"].as_array().unwrap().len(), 2, "{text}");
    assert!(r["deaths"]["producer"][0].as_str().unwrap().contains("SIGKILL"), "{text}");
    assert!(text.contains("resuming the stream") && text.contains("at seq"), "the producer says from where: {text}");
    // Only the dead workers' frames are lost, each counted as such; the rest are the policy's.
    for cause in r["dropped"].as_object().unwrap().keys() {
        assert!(["drop_oldest", "drop_newest", "worker_died"].contains(&cause.as_str()), "{cause}: {text}");
    }
    // A killed worker's frame goes back once to another worker (redelivered), or is lost.
    let died = r["dropped"].get("worker_died").map_or(0, |v| v.as_u64().unwrap());
    assert!(died + n(&r, "redelivered") <= 2, "at most the frame each killed worker held: {text}");
    assert!(n(&r, "frames_out") > 150, "{text}");
}

#[test]
fn a_worker_killed_at_every_restart_is_a_crash_loop_that_stops_the_run_cleanly() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (child, _json) = start_simulation("loop", &["--workers", "2", "--duration", "30"]);
    let sim = child.id();
    let mut last = None;
    for _ in 0..4 {
        let w = wait_child(sim, &["worker", "--index", "0"], last);
        kill9(w);
        last = Some(w);
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    no_segment_left(sim);
    assert!(!out.status.success(), "{text}");
    // Killed while running, or while starting (then it failed to start): a crash loop either way.
    assert!(text.contains("worker-0 keeps dying: 4 times in a row within 2 s of starting"), "{text}");
    assert!(text.contains("SIGKILL") && text.contains(" worker --"), "how it ended and its command: {text}");
    let orphans = Command::new("pgrep").args(["-f", "--", &format!("sim{sim}")]).output().unwrap();
    assert_eq!(orphans.status.code(), Some(1), "role processes left: {}", String::from_utf8_lossy(&orphans.stdout));
}
