//! Tests of the C ABI: the C example built with the system C compiler against the header and
//! the library, feeding Rust worker processes; the header under a C++ compiler; every error
//! path through the exported functions.
//!
//! A custom harness (`harness = false`): the same binary is also the Rust worker process the C
//! producer feeds (`c_api --worker NAME`), so the test needs no other binary. Arguments that
//! are not flags filter the tests by substring, as libtest does.

use std::ffi::{CStr, CString};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::ptr;
use std::time::Duration;

use framebus::*;
use framebus_core::ConsumerKind;
use framebus_platform::{wait, SharedSegment};

/// Flag the example marks end-of-stream frames with.
const END: u32 = 1;

fn pattern(seq: u64, i: usize) -> u8 {
    (seq.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8
}

fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("c-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

type TestResult = Result<(), String>;
type Test = (&'static str, fn() -> TestResult);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, name] = &args[..] {
        if flag == "--worker" {
            return match worker(name) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("worker: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    }
    let tests: [Test; 7] = [
        ("results_come_back_in_frame_order_through_the_abi", results_come_back_in_frame_order_through_the_abi),
        ("the_header_names_every_value_of_every_vocabulary", the_header_names_every_value_of_every_vocabulary),
        ("c_example_producer_feeds_rust_worker_processes", c_example_producer_feeds_rust_worker_processes),
        ("header_compiles_as_cpp_and_the_shared_library_loads", header_compiles_as_cpp_and_the_shared_library_loads),
        ("frames_cross_the_abi_without_a_copy", frames_cross_the_abi_without_a_copy),
        ("every_error_is_a_code_with_a_message", every_error_is_a_code_with_a_message),
        ("drop_policies_report_dropped_frames", drop_policies_report_dropped_frames),
    ];
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let mut failed = 0;
    let mut ran = 0;
    for (name, test) in tests {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        match std::panic::catch_unwind(test) {
            Ok(Ok(())) => println!("test {name} ... ok"),
            Ok(Err(e)) => {
                println!("test {name} ... FAILED\n    {e}");
                failed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED (panicked)");
                failed += 1;
            }
        }
    }
    let _ = std::fs::remove_dir_all(out_dir());
    println!("\ntest result: {}. {} passed; {failed} failed", if failed == 0 { "ok" } else { "FAILED" }, ran - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `FB_FORMAT_*`, `FB_PATTERN_*`, `FB_POLICY_*` and `FB_KIND_*` in the committed header are the
/// core's vocabulary: every value has its constant (the name upper-cased, `-` as `_`) with its
/// code, and no constant names a value the core lacks.
fn the_header_names_every_value_of_every_vocabulary() -> TestResult {
    use framebus_core::vocab::Vocabulary;
    use framebus_core::{OverflowPolicy, Pattern, PixelFormat};
    let header = std::fs::read_to_string(repo().join("bindings/c/include/framebus.h")).map_err(|e| e.to_string())?;
    fn check<T: Vocabulary>(header: &str, prefix: &str) -> TestResult {
        let defined: Vec<(String, u32)> = header
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("#define ")?;
                let (name, value) = rest.split_once(' ')?;
                name.strip_prefix(prefix)?;
                Some((name.to_string(), value.trim().parse().ok()?))
            })
            .collect();
        let want: Vec<(String, u32)> = T::ALL
            .iter()
            .map(|v| (format!("{prefix}{}", v.name().to_uppercase().replace('-', "_")), v.code()))
            .collect();
        if defined != want {
            return Err(format!("{}: the header defines {defined:?}, the core has {want:?}", T::WHAT));
        }
        Ok(())
    }
    check::<PixelFormat>(&header, "FB_FORMAT_")?;
    check::<Pattern>(&header, "FB_PATTERN_")?;
    check::<OverflowPolicy>(&header, "FB_POLICY_")?;
    check::<ConsumerKind>(&header, "FB_KIND_")?;
    check::<framebus_core::SkipCause>(&header, "FB_SKIP_")
}

/// Two C workers' posts, out of order, come back from the C reader in frame order; a frame
/// released without a post comes out skipped as no-result; a late post is `FB_LATE`; the end
/// is `FB_END`.
fn results_come_back_in_frame_order_through_the_abi() -> TestResult {
    let mut spec = fb_spec_default(16, 1, FB_FORMAT_GRAY8, 4);
    spec.result_cells = 8;
    spec.result_max = 32;
    let seg = create(&unique("res"), &spec)?;
    let (mut p, mut a, mut b, mut r) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
    // SAFETY: every pointer is a live handle from this test or a local out parameter; the
    // buffers passed are local arrays of the lengths given.
    unsafe {
        expect("attach", fb_producer_attach(seg, &mut p), FB_OK, "")?;
        expect("register a", fb_consumer_register(seg, FB_KIND_WORKER, &mut a), FB_OK, "")?;
        expect("register b", fb_consumer_register(seg, FB_KIND_WORKER, &mut b), FB_OK, "")?;
        expect("reader", fb_reader_open(seg, &mut r), FB_OK, "")?;
        let mut second = ptr::null_mut();
        expect("second reader", fb_reader_open(seg, &mut second), FB_ERR_BUSY, "")?;
        for _ in 0..3 {
            let mut seq = 0;
            expect("write", fb_producer_write(p, [1u8; 16].as_ptr(), 16, ptr::null(), 0, &mut seq), FB_OK, "")?;
        }
        let (mut f0, mut f1, mut f2) = (std::mem::zeroed::<fb_frame>(), std::mem::zeroed(), std::mem::zeroed());
        expect("claim 0", fb_consumer_claim(a, 1000, &mut f0), FB_OK, "")?;
        expect("claim 1", fb_consumer_claim(b, 1000, &mut f1), FB_OK, "")?;
        expect("claim 2", fb_consumer_claim(a, 1000, &mut f2), FB_OK, "")?;
        let mut res = fb_result::default();
        let mut buf = [0u8; 32];
        expect("pending", fb_reader_next(r, buf.as_mut_ptr(), 32, 0, &mut res), FB_TIMED_OUT, "")?;
        expect("post 1", fb_consumer_post(b, &f1, b"one".as_ptr(), 3, 0), FB_OK, "")?;
        expect("post 0", fb_consumer_post(a, &f0, b"zero".as_ptr(), 4, 0), FB_OK, "")?;
        expect("twice", fb_consumer_post(a, &f0, b"zero".as_ptr(), 4, 0), FB_ERR_INVALID_ARGUMENT, "already has")?;
        expect("too big", fb_consumer_post(a, &f2, [0u8; 33].as_ptr(), 33, 0), FB_ERR_INVALID_ARGUMENT, "exceeds")?;
        for (f, c) in [(&f0, a), (&f1, b), (&f2, a)] {
            expect("release", fb_consumer_release(c, f), FB_OK, "")?;
        }
        for (seq, want) in [(0u64, &b"zero"[..]), (1, &b"one"[..])] {
            expect("next", fb_reader_next(r, buf.as_mut_ptr(), 32, 1000, &mut res), FB_OK, "")?;
            if (res.seq, res.kind, &buf[..res.len]) != (seq, FB_RESULT_READY, want) {
                return Err(format!("result {seq}: {res:?} {:?}", &buf[..res.len]));
            }
        }
        expect("next 2", fb_reader_next(r, buf.as_mut_ptr(), 32, 1000, &mut res), FB_OK, "")?;
        if (res.seq, res.kind, res.cause) != (2, FB_RESULT_SKIPPED, FB_SKIP_NO_RESULT) {
            return Err(format!("frame 2 was released without a post: {res:?}"));
        }
        // A deadline, then the late post.
        let mut seq = 0;
        expect("write 3", fb_producer_write(p, [1u8; 16].as_ptr(), 16, ptr::null(), 0, &mut seq), FB_OK, "")?;
        let mut f3 = std::mem::zeroed::<fb_frame>();
        expect("claim 3", fb_consumer_claim(a, 1000, &mut f3), FB_OK, "")?;
        expect("skip", fb_reader_skip_head(r, FB_SKIP_DEADLINE), FB_OK, "")?;
        expect("late", fb_consumer_post(a, &f3, b"late".as_ptr(), 4, 0), FB_LATE, "")?;
        expect("release 3", fb_consumer_release(a, &f3), FB_OK, "")?;
        expect("next 3", fb_reader_next(r, buf.as_mut_ptr(), 32, 1000, &mut res), FB_OK, "")?;
        if (res.seq, res.cause) != (3, FB_SKIP_DEADLINE) {
            return Err(format!("frame 3 should be skipped by its deadline: {res:?}"));
        }
        expect("open", fb_reader_next(r, buf.as_mut_ptr(), 32, 0, &mut res), FB_TIMED_OUT, "")?;
        fb_producer_finish(p);
        expect("end", fb_reader_next(r, buf.as_mut_ptr(), 32, 1000, &mut res), FB_END, "")?;
        // The workers see the end too, at once, not as a timeout.
        let mut f4 = std::mem::zeroed::<fb_frame>();
        expect("claim at the end", fb_consumer_claim(b, 1000, &mut f4), FB_END, "")?;
        if res.seq != 4 {
            return Err(format!("the end is after frame 3: {res:?}"));
        }
        fb_reader_close(second);
        fb_reader_close(r);
        fb_consumer_close(a);
        fb_consumer_close(b);
        fb_segment_close(seg);
    }
    Ok(())
}

/// A Rust worker process: claims until an end frame, checks every byte, prints
/// `count seq_sum`.
fn worker(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let shared = SharedSegment::open(name)?;
    let mut c = shared.register(ConsumerKind::Worker)?;
    println!("ready");
    std::io::stdout().flush()?;
    let len = shared.segment().layout().planes.frame_size as usize;
    let mut buf = vec![0u8; len];
    let (mut count, mut sum) = (0u64, 0u64);
    loop {
        let f = wait::claim(&mut c, Duration::from_secs(20))?;
        if f.meta.flags & END != 0 {
            wait::release(&mut c, f)?;
            break;
        }
        if f.meta.payload_len != len as u64 {
            return Err(format!("seq {}: payload_len {} != {len}", f.seq, f.meta.payload_len).into());
        }
        c.read(&f, 0, &mut buf)?;
        if let Some(i) = buf.iter().enumerate().position(|(i, b)| *b != pattern(f.seq, i)) {
            return Err(format!("torn frame: seq {} byte {i}", f.seq).into());
        }
        count += 1;
        sum += f.seq;
        wait::release(&mut c, f)?;
    }
    println!("{count} {sum}");
    Ok(())
}

/// The target directory of this build (`target/<profile>`), where the libraries are.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>").to_path_buf()
}

/// `libframebus.a` / `.so` of this profile. `cargo test` builds only the rlib, so the C
/// libraries come from `cargo build -p framebus-c` (with the same `--profile`), which
/// `cargo xtask ci` runs first. Missing: a skip outside CI, an error in CI; older than the
/// source: an error (the C program would test yesterday's library).
fn library(name: &str) -> Result<Option<PathBuf>, String> {
    let dir = lib_dir();
    let path = dir.join(name);
    let profile = dir.file_name().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    let build = format!("cargo build -p framebus-c --profile {}", if profile == "debug" { "dev" } else { &profile });
    let Ok(lib_time) = std::fs::metadata(&path).and_then(|m| m.modified()) else {
        let msg = format!("{} is not built (cargo test builds only the rlib): run `{build}` first", path.display());
        if std::env::var("CI").as_deref() == Ok("true") {
            return Err(msg);
        }
        println!("    skipped: {msg}");
        return Ok(None);
    };
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let newer = std::fs::read_dir(&src)
        .map_err(|e| format!("{}: {e}", src.display()))?
        .filter_map(|e| e.ok()?.metadata().ok()?.modified().ok())
        .any(|t| t > lib_time);
    if newer {
        return Err(format!("{} is older than src/: run `{build}` again", path.display()));
    }
    Ok(Some(path))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The C compiler (`$CC` or `cc`), or why the C tests are skipped. Under `CI=true` a missing
/// compiler is a failure, not a skip.
fn compiler(var: &str, default: &str) -> Result<Option<String>, String> {
    let cc = std::env::var(var).unwrap_or_else(|_| default.to_string());
    if Command::new(&cc).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok() {
        return Ok(Some(cc));
    }
    let msg = format!("no C compiler `{cc}` (set {var}, or apt-get install gcc g++)");
    if std::env::var("CI").as_deref() == Ok("true") {
        return Err(msg);
    }
    println!("    skipped: {msg}");
    Ok(None)
}

fn out_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("framebus-c-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn compile(cc: &str, args: &[&str]) -> TestResult {
    let out = Command::new(cc).args(args).output().map_err(|e| format!("{cc}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cc} {} failed:\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}

fn c_example_producer_feeds_rust_worker_processes() -> TestResult {
    let Some(cc) = compiler("CC", "cc")? else { return Ok(()) };
    let exe = out_dir().join("appsink_producer");
    let (src, inc) = (repo().join("examples/c/appsink_producer.c"), repo().join("bindings/c/include"));
    let Some(lib) = library("libframebus.a")? else { return Ok(()) };
    // Static link: the library plus what the Rust standard library needs from libc.
    compile(
        &cc,
        &[
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-O2",
            "-I",
            &inc.to_string_lossy(),
            &src.to_string_lossy(),
            &lib.to_string_lossy(),
            "-lpthread",
            "-ldl",
            "-lm",
            "-o",
            &exe.to_string_lossy(),
        ],
    )?;

    const FRAMES: u64 = 2_000;
    const WORKERS: usize = 3;
    let name = unique("appsink");
    let mut producer = Command::new(&exe)
        .args([&name, &FRAMES.to_string(), "64", "48", &WORKERS.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn the C producer: {e}"))?;
    let mut pout = BufReader::new(producer.stdout.take().expect("piped"));
    let mut line = String::new();
    pout.read_line(&mut line).map_err(|e| e.to_string())?;
    if !line.starts_with("created") {
        return Err(format!("C producer said {line:?}"));
    }
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let mut w =
            Command::new(&me).args(["--worker", &name]).stdout(Stdio::piped()).spawn().map_err(|e| e.to_string())?;
        let mut out = BufReader::new(w.stdout.take().expect("piped"));
        let mut l = String::new();
        out.read_line(&mut l).map_err(|e| e.to_string())?;
        if l.trim() != "ready" {
            return Err(format!("worker said {l:?}"));
        }
        workers.push((w, out));
    }
    let mut stdin = producer.stdin.take().expect("piped");
    writeln!(stdin, "go").map_err(|e| e.to_string())?;
    line.clear();
    pout.read_line(&mut line).map_err(|e| e.to_string())?;
    if !line.starts_with(&format!("published {} dropped 0", FRAMES + WORKERS as u64)) {
        return Err(format!("C producer said {line:?}"));
    }
    let (mut count, mut sum) = (0u64, 0u64);
    for (mut w, mut out) in workers {
        let mut l = String::new();
        out.read_line(&mut l).map_err(|e| e.to_string())?;
        let status = w.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("a worker failed ({status}); it printed {l:?}"));
        }
        let v: Vec<u64> = l.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        let [c, s] = v[..] else { return Err(format!("worker printed {l:?}")) };
        count += c;
        sum += s;
    }
    drop(stdin);
    let status = producer.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("C producer exited with {status}"));
    }
    // Block policy: every frame reached exactly one worker, intact (the workers check bytes).
    if (count, sum) != (FRAMES, FRAMES * (FRAMES - 1) / 2) {
        return Err(format!("workers got {count} frames (seq sum {sum}); expected {FRAMES}"));
    }
    if SharedSegment::open(&name).is_ok() {
        return Err("the C producer's segment outlived fb_segment_close".into());
    }
    Ok(())
}

fn header_compiles_as_cpp_and_the_shared_library_loads() -> TestResult {
    let Some(cxx) = compiler("CXX", "c++")? else { return Ok(()) };
    let Some(cc) = compiler("CC", "cc")? else { return Ok(()) };
    if library("libframebus.so")?.is_none() {
        return Ok(());
    }
    let dir = out_dir();
    let cpp = dir.join("uses_header.cpp");
    std::fs::write(
        &cpp,
        "#include <framebus.h>\n#include <cstdio>\nint main() { fb_spec s = fb_spec_default(4, 4, FB_FORMAT_GRAY8, 2);\n\
         fb_segment *seg = nullptr; fb_status st = fb_segment_open(\"no-such-segment-cpp\", &seg);\n\
         std::printf(\"%s %u %s\\n\", fb_status_name(st), s.slots, fb_last_error()); return st == FB_ERR_NOT_FOUND ? 0 : 1; }\n",
    )
    .map_err(|e| e.to_string())?;
    let inc = repo().join("bindings/c/include");
    let libdir = lib_dir();
    let exe = dir.join("uses_header");
    compile(
        &cxx,
        &[
            "-std=c++17",
            "-Wall",
            "-Werror",
            "-I",
            &inc.to_string_lossy(),
            &cpp.to_string_lossy(),
            "-L",
            &libdir.to_string_lossy(),
            &format!("-Wl,-rpath,{}", libdir.display()),
            "-lframebus",
            "-o",
            &exe.to_string_lossy(),
        ],
    )?;
    let out = Command::new(&exe).output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !text.starts_with("FB_ERR_NOT_FOUND 2 no segment named") {
        return Err(format!("C++ program against libframebus.so printed {text:?} ({})", out.status));
    }
    // The C example also builds against the shared library.
    let src = repo().join("examples/c/appsink_producer.c");
    let exe = dir.join("appsink_producer_dyn");
    compile(
        &cc,
        &[
            "-std=c11",
            "-Wall",
            "-Werror",
            "-I",
            &inc.to_string_lossy(),
            &src.to_string_lossy(),
            "-L",
            &libdir.to_string_lossy(),
            &format!("-Wl,-rpath,{}", libdir.display()),
            "-lframebus",
            "-o",
            &exe.to_string_lossy(),
        ],
    )?;
    let out = Command::new(&exe).output().map_err(|e| e.to_string())?;
    if out.status.code() != Some(2) || !String::from_utf8_lossy(&out.stderr).contains("usage:") {
        return Err(format!("the dynamically linked example did not print its usage: {out:?}"));
    }
    Ok(())
}

fn msg() -> String {
    // SAFETY: fb_last_error never returns NULL and its string lives until the next failure.
    unsafe { CStr::from_ptr(fb_last_error()) }.to_string_lossy().into_owned()
}

fn status(st: fb_status) -> String {
    // SAFETY: fb_status_name returns a static string.
    unsafe { CStr::from_ptr(fb_status_name(st)) }.to_string_lossy().into_owned()
}

fn expect(what: &str, got: fb_status, want: fb_status, needle: &str) -> TestResult {
    if got != want {
        return Err(format!("{what}: got {} ({}), want {}", status(got), msg(), status(want)));
    }
    if want < 0 && !msg().contains(needle) {
        return Err(format!("{what}: message {:?} does not say {needle:?}", msg()));
    }
    Ok(())
}

fn create(name: &str, spec: &fb_spec) -> Result<*mut fb_segment, String> {
    let cname = CString::new(name).expect("no NUL");
    let mut seg = ptr::null_mut();
    // SAFETY: valid string, spec and out pointers.
    expect("create", unsafe { fb_segment_create(cname.as_ptr(), spec, &mut seg) }, FB_OK, "")?;
    Ok(seg)
}

fn frames_cross_the_abi_without_a_copy() -> TestResult {
    let spec = fb_spec_default(64, 48, FB_FORMAT_BGR24, 3);
    let name = unique("zc");
    let seg = create(&name, &spec)?;
    let (mut p, mut w) = (ptr::null_mut(), ptr::null_mut());
    let mut info = fb_segment_info::default();
    // SAFETY: every pointer is a live handle from this test or a local out
    // parameter; slot.data is written within its capacity before publish; frame.data is read
    // within payload_len before release.
    unsafe {
        expect("attach", fb_producer_attach(seg, &mut p), FB_OK, "")?;
        expect("register", fb_consumer_register(seg, FB_KIND_WORKER, &mut w), FB_OK, "")?;
        expect("info", fb_segment_get_info(seg, &mut info), FB_OK, "")?;
        if (info.width, info.height, info.frame_size, info.slots) != (64, 48, 64 * 48 * 3, 3) {
            return Err(format!("info: {info:?}"));
        }
        let mut slot = std::mem::zeroed::<fb_slot>();
        expect("begin", fb_producer_begin(p, 0, &mut slot), FB_OK, "")?;
        if slot.seq != 0 || slot.capacity < info.frame_size {
            return Err(format!("slot: {slot:?}"));
        }
        for i in 0..info.frame_size as usize {
            *slot.data.add(i) = pattern(0, i);
        }
        let mut seq = 99;
        expect("publish", fb_producer_publish(p, ptr::null(), &mut seq), FB_OK, "")?;
        let mut frame = std::mem::zeroed::<fb_frame>();
        expect("claim", fb_consumer_claim(w, 1000, &mut frame), FB_OK, "")?;
        // One mapping in this process: the consumer reads the very bytes the producer wrote.
        if frame.data != slot.data.cast_const() || frame.seq != seq || frame.meta.payload_len != info.frame_size {
            return Err(format!("frame {frame:?} vs slot {slot:?}"));
        }
        if frame.meta.width != 64 || frame.meta.pixel_format != FB_FORMAT_BGR24 {
            return Err(format!("NULL meta should describe a whole frame: {:?}", frame.meta));
        }
        let bytes = std::slice::from_raw_parts(frame.data, frame.meta.payload_len as usize);
        if bytes.iter().enumerate().any(|(i, b)| *b != pattern(0, i)) {
            return Err("frame bytes differ from what was written".into());
        }
        let (mut delivered, mut skipped) = (0, 0);
        expect("counts", fb_consumer_counts(w, &mut delivered, &mut skipped), FB_OK, "")?;
        expect("release", fb_consumer_release(w, &frame), FB_OK, "")?;
        expect("second release", fb_consumer_release(w, &frame), FB_ERR_NOT_HELD, "double release")?;
        if (delivered, skipped) != (1, 0) {
            return Err(format!("counts {delivered} {skipped}"));
        }
        // The segment handle can go first: endpoints keep the mapping.
        fb_segment_close(seg);
        expect("begin after segment close", fb_producer_begin(p, 0, &mut slot), FB_OK, "")?;
        expect("abandon", fb_producer_abandon(p), FB_OK, "")?;
        expect("abandon twice", fb_producer_abandon(p), FB_ERR_INVALID_ARGUMENT, "call begin first")?;
        expect("claim nothing", fb_consumer_claim(w, 0, &mut frame), FB_TIMED_OUT, "")?;
        fb_consumer_close(w);
        fb_producer_close(p);
    }
    if SharedSegment::open(&name).is_ok() {
        return Err("the segment outlived its last handle".into());
    }
    Ok(())
}

fn every_error_is_a_code_with_a_message() -> TestResult {
    let c = |s: &str| CString::new(s).expect("no NUL");
    let mut seg = ptr::null_mut();
    let spec = fb_spec_default(8, 8, FB_FORMAT_GRAY8, 2);
    // SAFETY: the pointers are NULL on purpose where the test says so, and
    // otherwise live handles or local out parameters.
    unsafe {
        let missing = c("c-no-such-segment");
        expect("open missing", fb_segment_open(missing.as_ptr(), &mut seg), FB_ERR_NOT_FOUND, "framebus ls")?;
        let bad = c("bad/name");
        expect("bad name", fb_segment_open(bad.as_ptr(), &mut seg), FB_ERR_INVALID_ARGUMENT, "[A-Za-z0-9._-]")?;
        expect("NULL name", fb_segment_open(ptr::null(), &mut seg), FB_ERR_INVALID_ARGUMENT, "name is NULL")?;
        expect("NULL out", fb_segment_open(missing.as_ptr(), ptr::null_mut()), FB_ERR_INVALID_ARGUMENT, "out is NULL")?;
        expect(
            "NULL spec",
            fb_segment_create(missing.as_ptr(), ptr::null(), &mut seg),
            FB_ERR_INVALID_ARGUMENT,
            "spec",
        )?;
        let mut odd = spec;
        odd.pixel_format = 77;
        expect(
            "bad format",
            fb_segment_create(missing.as_ptr(), &odd, &mut seg),
            FB_ERR_INVALID_ARGUMENT,
            "FB_FORMAT_",
        )?;
        let mut odd = spec;
        odd.policy = 9;
        expect(
            "bad policy",
            fb_segment_create(missing.as_ptr(), &odd, &mut seg),
            FB_ERR_INVALID_ARGUMENT,
            "FB_POLICY_",
        )?;
        let mut odd = spec;
        odd.slots = 0;
        expect("zero slots", fb_segment_create(missing.as_ptr(), &odd, &mut seg), FB_ERR_INVALID_ARGUMENT, "spec")?;

        // A file of garbage where a segment should be.
        #[cfg(target_os = "linux")]
        {
            let name = unique("garbage");
            let path = format!("/dev/shm/framebus.{name}");
            std::fs::write(&path, vec![0xA5u8; 8192]).map_err(|e| e.to_string())?;
            let cname = c(&name);
            let st = fb_segment_open(cname.as_ptr(), &mut seg);
            let _ = std::fs::remove_file(&path);
            expect("garbage segment", st, FB_ERR_BAD_SEGMENT, &name)?;
        }

        let name = unique("errs");
        let seg = create(&name, &spec)?;
        let cname = c(&name);
        let mut again = ptr::null_mut();
        expect("create twice", fb_segment_create(cname.as_ptr(), &spec, &mut again), FB_ERR_EXISTS, "already exists")?;
        let (mut p, mut p2, mut s) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        expect("attach", fb_producer_attach(seg, &mut p), FB_OK, "")?;
        expect("second producer", fb_producer_attach(seg, &mut p2), FB_ERR_BUSY, "producer")?;
        expect(
            "subscriber on a work queue",
            fb_consumer_register(seg, FB_KIND_SUBSCRIBER, &mut s),
            FB_ERR_WRONG_PATTERN,
            "WorkQueue",
        )?;
        expect("unknown kind", fb_consumer_register(seg, 42, &mut s), FB_ERR_INVALID_ARGUMENT, "FB_KIND_")?;
        expect(
            "publish without begin",
            fb_producer_publish(p, ptr::null(), ptr::null_mut()),
            FB_ERR_INVALID_ARGUMENT,
            "call begin first",
        )?;
        let mut slot = std::mem::zeroed::<fb_slot>();
        expect("begin", fb_producer_begin(p, 0, &mut slot), FB_OK, "")?;
        expect("begin twice", fb_producer_begin(p, 0, &mut slot), FB_ERR_INVALID_ARGUMENT, "already being written")?;
        let meta = fb_frame_meta { payload_len: 1 << 20, ..Default::default() };
        expect(
            "oversized payload",
            fb_producer_publish(p, &meta, ptr::null_mut()),
            FB_ERR_INVALID_ARGUMENT,
            "exceeds the slot capacity",
        )?;
        // The refused publish left the slot with the producer.
        expect("publish after a refused one", fb_producer_publish(p, ptr::null(), ptr::null_mut()), FB_OK, "")?;
        let big = vec![0u8; 1 << 20];
        expect(
            "oversized write",
            fb_producer_write(p, big.as_ptr(), big.len(), ptr::null(), 0, ptr::null_mut()),
            FB_ERR_INVALID_ARGUMENT,
            "do not fit",
        )?;
        expect(
            "NULL data",
            fb_producer_write(p, ptr::null(), 4, ptr::null(), 0, ptr::null_mut()),
            FB_ERR_INVALID_ARGUMENT,
            "data is NULL",
        )?;
        let long = fb_frame_meta { payload_len: 64, ..Default::default() };
        expect(
            "payload_len beyond the data",
            fb_producer_write(p, big.as_ptr(), 16, &long, 0, ptr::null_mut()),
            FB_ERR_INVALID_ARGUMENT,
            "stale",
        )?;
        // Block with no consumer releasing: the second slot fills, the third begin times out.
        expect("write", fb_producer_write(p, big.as_ptr(), 64, ptr::null(), 0, ptr::null_mut()), FB_OK, "")?;
        expect("full under Block", fb_producer_begin(p, 20, &mut slot), FB_TIMED_OUT, "")?;
        let frame = fb_frame { slot: 0, gen: 12345, ..std::mem::zeroed() };
        let mut w = ptr::null_mut();
        expect("register", fb_consumer_register(seg, FB_KIND_WORKER, &mut w), FB_OK, "")?;
        expect("release a forged frame", fb_consumer_release(w, &frame), FB_ERR_NOT_HELD, "not held")?;
        expect("NULL frame", fb_consumer_release(w, ptr::null()), FB_ERR_INVALID_ARGUMENT, "frame is NULL")?;
        expect(
            "NULL handle",
            fb_consumer_claim(ptr::null_mut(), 0, ptr::null_mut()),
            FB_ERR_INVALID_ARGUMENT,
            "consumer is NULL",
        )?;
        for st in [FB_OK, FB_TIMED_OUT, FB_DROPPED, FB_ERR_IO, FB_ERR_INTERNAL] {
            if !status(st).starts_with("FB_") || status(st) == "FB_UNKNOWN_STATUS" {
                return Err(format!("no name for status {st}"));
            }
        }
        if status(-999) != "FB_UNKNOWN_STATUS" || fb_abi_version() != FB_ABI_VERSION || fb_layout_version() == 0 {
            return Err("version or status-name queries are wrong".into());
        }
        if CStr::from_ptr(fb_version()).to_str() != Ok(env!("CARGO_PKG_VERSION")) {
            return Err("fb_version differs from the crate version".into());
        }
        fb_consumer_close(w);
        fb_producer_close(p);
        fb_segment_close(seg);
        fb_segment_close(ptr::null_mut());
        fb_producer_close(ptr::null_mut());
        fb_consumer_close(ptr::null_mut());
    }
    Ok(())
}

fn drop_policies_report_dropped_frames() -> TestResult {
    let mut spec = fb_spec_default(8, 8, FB_FORMAT_GRAY8, 2);
    spec.policy = FB_POLICY_DROP_NEWEST;
    let seg = create(&unique("drops"), &spec)?;
    let (mut p, mut w) = (ptr::null_mut(), ptr::null_mut());
    let buf = [7u8; 64];
    // SAFETY: live handles and local out parameters.
    unsafe {
        expect("attach", fb_producer_attach(seg, &mut p), FB_OK, "")?;
        expect("register", fb_consumer_register(seg, FB_KIND_WORKER, &mut w), FB_OK, "")?;
        let mut seqs = Vec::new();
        for _ in 0..4 {
            let mut seq = u64::MAX;
            let st = fb_producer_write(p, buf.as_ptr(), buf.len(), ptr::null(), 0, &mut seq);
            seqs.push((st, seq));
        }
        // Two slots: frames 0 and 1 are published, 2 and 3 are dropped and named.
        if seqs != [(FB_OK, 0), (FB_OK, 1), (FB_DROPPED, 2), (FB_DROPPED, 3)] {
            return Err(format!("outcomes {seqs:?}"));
        }
        let mut slot = std::mem::zeroed::<fb_slot>();
        expect("begin when full", fb_producer_begin(p, 0, &mut slot), FB_DROPPED, "")?;
        let mut info = fb_segment_info::default();
        expect("info", fb_segment_get_info(seg, &mut info), FB_OK, "")?;
        if (slot.seq, info.dropped_newest, info.published, info.next_seq) != (4, 3, 2, 5) {
            return Err(format!("slot {slot:?} info {info:?}"));
        }
        fb_consumer_close(w);
        fb_producer_close(p);
        fb_segment_close(seg);
    }

    // DropOldest: a full ring reuses the oldest unclaimed frame's slot and names that frame.
    let mut spec = fb_spec_default(8, 8, FB_FORMAT_GRAY8, 2);
    spec.policy = FB_POLICY_DROP_OLDEST;
    let seg = create(&unique("oldest"), &spec)?;
    let (mut p, mut w) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: live handles and local out parameters.
    unsafe {
        expect("attach", fb_producer_attach(seg, &mut p), FB_OK, "")?;
        expect("register", fb_consumer_register(seg, FB_KIND_WORKER, &mut w), FB_OK, "")?;
        for _ in 0..2 {
            expect("write", fb_producer_write(p, buf.as_ptr(), buf.len(), ptr::null(), 0, ptr::null_mut()), FB_OK, "")?;
        }
        let mut slot = std::mem::zeroed::<fb_slot>();
        expect("begin over a full ring", fb_producer_begin(p, 0, &mut slot), FB_OK, "")?;
        if (slot.seq, slot.dropped, slot.dropped_seq) != (2, 1, 0) {
            return Err(format!("DropOldest slot {slot:?}: expected seq 2 reusing frame 0"));
        }
        expect("publish", fb_producer_publish(p, ptr::null(), ptr::null_mut()), FB_OK, "")?;
        let mut frame = std::mem::zeroed::<fb_frame>();
        expect("claim", fb_consumer_claim(w, 0, &mut frame), FB_OK, "")?;
        if frame.seq != 1 {
            return Err(format!("the worker got frame {} first; frame 0 was dropped", frame.seq));
        }
        let mut info = fb_segment_info::default();
        expect("info", fb_segment_get_info(seg, &mut info), FB_OK, "")?;
        if info.dropped_oldest != 1 {
            return Err(format!("info {info:?}"));
        }
        fb_consumer_close(w);
        fb_producer_close(p);
        fb_segment_close(seg);
    }
    Ok(())
}
