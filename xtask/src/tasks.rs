//! One function per task.
use std::time::{Duration, Instant};

use crate::util::{cmd, ensure_target, in_ci, missing, output, run, Skip};

/// Frames per stress test in CI (the stress tests shrink by default and under Miri).
const CI_STRESS_FRAMES: &str = "2000000";

pub fn ci(args: &[String]) -> Result<(), String> {
    if let Some(a) = args.first() {
        return Err(format!("ci takes no arguments (got '{a}')"));
    }
    type Stage = (&'static str, fn() -> Result<Option<Skip>, String>);
    let stages: [Stage; 16] = [
        ("fmt", || run(cmd("cargo", &["fmt", "--all", "--check"])).map(|_| None)),
        ("tidy", || crate::tidy::tidy().map(|()| None)),
        ("snpe-sys bindings (bindgen)", || bindings(false)),
        ("clippy", || {
            run(cmd(
                "cargo",
                &["clippy", "--workspace", "--all-targets", "--profile", "checked", "--", "-D", "warnings"],
            ))
            .map(|_| None)
        }),
        ("test", || {
            // `cargo test` builds framebus-c's rlib only; its tests link C programs against the
            // static and shared libraries, which this build makes.
            run(cmd("cargo", &["build", "-q", "-p", "framebus-c", "--profile", "checked"]))?;
            let mut c = cmd("cargo", &["test", "--workspace", "--profile", "checked"]);
            c.env("FRAMEBUS_STRESS_FRAMES", CI_STRESS_FRAMES);
            run(c).map(|_| None)
        }),
        ("rustdoc (-D warnings)", || {
            let mut c = cmd("cargo", &["doc", "-q", "--workspace", "--no-deps"]);
            c.env("RUSTDOCFLAGS", "-D warnings");
            run(c).map(|_| None)
        }),
        ("C library (header, install, pkg-config)", crate::bindings::c_stage),
        ("python package (pytest)", crate::bindings::python_stage),
        ("no_std (aarch64-unknown-none)", nostd_stage),
        ("fuzz smoke (20 s per target)", || fuzz_run(&FUZZ_TARGETS, FUZZ_SMOKE_SECS)),
        ("aarch64 under qemu-user", cross_aarch64),
        ("windows under Wine", cross_windows),
        ("loom", || loom().map(|_| None)),
        ("miri", miri_stage),
        ("bench smoke", || bench(&["--quick".to_string()]).map(|_| None)),
        ("simulate smoke (bundled clip, 5 s)", || {
            simulate(&["--duration".into(), "5".into(), "--quiet".into()]).map(|_| None)
        }),
    ];
    let mut report = Vec::new();
    let mut failed = false;
    let start = Instant::now();
    for (name, stage) in stages {
        eprintln!("\n=== stage: {name} ===");
        let t = Instant::now();
        let r = stage();
        let d = t.elapsed();
        let status = match &r {
            Ok(None) => "ok".to_string(),
            Ok(Some(Skip)) => "SKIPPED".to_string(),
            Err(e) => {
                failed = true;
                format!("FAILED: {e}")
            }
        };
        eprintln!("=== stage {name}: {status} in {} ===", fmt(d));
        report.push((name, status, d));
    }
    eprintln!("\n{:<32} {:>9}  result", "stage", "time");
    for (name, status, d) in &report {
        eprintln!("{name:<32} {:>9}  {status}", fmt(*d));
    }
    eprintln!("{:<32} {:>9}", "total", fmt(start.elapsed()));
    let (ok, bad) = (
        report.iter().filter(|r| !r.1.starts_with("FAILED")).count(),
        report.iter().filter(|r| r.1.starts_with("FAILED")).count(),
    );
    eprintln!("xtask ci: {ok} stages passed, {bad} failed");
    if failed {
        Err("some stages failed".into())
    } else {
        Ok(())
    }
}

/// Where bindgen can find libclang, if anywhere (it loads `libclang.so` at run time).
fn libclang() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("LIBCLANG_PATH") {
        return Some(p.into());
    }
    let dirs = std::fs::read_dir("/usr/lib").ok()?;
    let mut found: Vec<std::path::PathBuf> =
        dirs.filter_map(|e| e.ok()).map(|e| e.path().join("lib")).filter(|d| d.join("libclang.so").exists()).collect();
    found.sort();
    found.pop().or_else(|| {
        ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"]
            .into_iter()
            .map(std::path::PathBuf::from)
            .find(|d| d.join("libclang.so").exists())
    })
}

/// Regenerates the snpe-sys bindings with bindgen: checks them against the committed file,
/// or (`bless`) rewrites it.
fn bindings(bless: bool) -> Result<Option<Skip>, String> {
    let Some(dir) = libclang() else {
        return missing(
            "libclang",
            "bindgen needs libclang.so to regenerate the snpe-sys bindings",
            "apt-get install libclang-dev",
        )
        .map(Some);
    };
    let mut c = cmd("cargo", &["build", "-q", "-p", "snpe-sys", "--features", "bindgen"]);
    c.env("LIBCLANG_PATH", dir);
    if bless {
        c.env("SNPE_SYS_BLESS", "1");
    }
    run(c).map(|_| None)
}

/// `cargo xtask bindgen`: rewrites platform/snpe-sys/src/bindings.rs from the header.
pub fn bindgen() -> Result<(), String> {
    match bindings(true)? {
        Some(Skip) => Err("libclang is missing: apt-get install libclang-dev".into()),
        None => {
            eprintln!("platform/snpe-sys/src/bindings.rs is up to date with include/snpe_c_api.h");
            Ok(())
        }
    }
}

fn fmt(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn nostd_stage() -> Result<Option<Skip>, String> {
    if let Some(skip) = ensure_target("stable", "aarch64-unknown-none")? {
        return Ok(Some(skip));
    }
    run(cmd("cargo", &["build", "-p", "framebus-core", "--target", "aarch64-unknown-none"])).map(|_| None)
}

pub fn nostd() -> Result<(), String> {
    nostd_stage().map(|_| ())
}

pub fn loom() -> Result<(), String> {
    let mut c = cmd("cargo", &["test", "-p", "framebus-core", "--profile", "checked", "--test", "loom"]);
    c.env("RUSTFLAGS", "--cfg loom")
        .env("CARGO_TARGET_DIR", crate::util::root().join("target/loom"))
        .env("LOOM_MAX_PREEMPTIONS", std::env::var("LOOM_MAX_PREEMPTIONS").unwrap_or_else(|_| "2".into()));
    run(c)
}

fn miri_stage() -> Result<Option<Skip>, String> {
    if output("cargo", &["+nightly", "miri", "--version"]).is_none() {
        eprintln!("installing miri for the nightly toolchain");
        let _ = run(cmd("rustup", &["component", "add", "--toolchain", "nightly", "miri", "rust-src"]));
        if output("cargo", &["+nightly", "miri", "--version"]).is_none() {
            return missing(
                "miri",
                "no nightly toolchain with the miri component",
                "rustup toolchain install nightly --component miri,rust-src",
            )
            .map(Some);
        }
    }
    // Isolation off: proptest reads the environment and writes failure files.
    let mut c = cmd("cargo", &["+nightly", "miri", "test", "-p", "framebus-core", "--test", "it", "--lib"]);
    c.env("MIRIFLAGS", "-Zmiri-disable-isolation").env("CARGO_TARGET_DIR", crate::util::root().join("target/miri"));
    run(c).map(|_| None)
}

/// The cargo-fuzz targets in `fuzz/fuzz_targets/`.
const FUZZ_TARGETS: [&str; 3] = ["header", "control_area", "api_sequence"];

/// Makes sure `cargo +nightly fuzz` works, installing cargo-fuzz (and nightly) if needed.
fn ensure_cargo_fuzz() -> Result<Option<Skip>, String> {
    if output("cargo", &["+nightly", "--version"]).is_none() {
        let _ = run(cmd("rustup", &["toolchain", "install", "nightly", "--profile", "minimal"]));
    }
    if output("cargo", &["+nightly", "fuzz", "--version"]).is_none() {
        eprintln!("installing cargo-fuzz");
        let _ = run(cmd("cargo", &["install", "cargo-fuzz", "--locked"]));
    }
    if output("cargo", &["+nightly", "fuzz", "--version"]).is_none() {
        return missing(
            "cargo-fuzz",
            "cargo +nightly fuzz is not available",
            "rustup toolchain install nightly && cargo install cargo-fuzz",
        )
        .map(Some);
    }
    Ok(None)
}

/// Runs `targets` for `secs` each from the committed seed corpus (`fuzz/corpus/T`, read only)
/// plus a scratch corpus in `fuzz/target/corpus/T` (where new inputs go). Prints executions.
fn fuzz_run(targets: &[&str], secs: u64) -> Result<Option<Skip>, String> {
    if let Some(skip) = ensure_cargo_fuzz()? {
        return Ok(Some(skip));
    }
    let root = crate::util::root();
    let mut summary = Vec::new();
    for t in targets {
        let seeds = root.join("fuzz/corpus").join(t);
        let scratch = root.join("fuzz/target/corpus").join(t);
        std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        let log = root.join("fuzz/target").join(format!("{t}.log"));
        let mut c = cmd("cargo", &["+nightly", "fuzz", "run", t]);
        c.arg(&scratch).arg(&seeds).args([
            "--",
            &format!("-max_total_time={secs}"),
            "-timeout=10",
            "-rss_limit_mb=2048",
            "-print_final_stats=1",
        ]);
        c.current_dir(root.join("fuzz"));
        let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        c.stderr(out);
        let r = run(c);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let execs = text
            .lines()
            .find_map(|l| l.strip_prefix("stat::number_of_executed_units:").map(|v| v.trim().to_string()))
            .unwrap_or_else(|| "?".into());
        summary.push(format!("{t:<14} {secs:>6} s {execs:>12} executions"));
        if let Err(e) = r {
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            eprintln!("{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
            return Err(format!(
                "fuzz target {t} failed ({e}); the crashing input is in fuzz/artifacts/{t}/, the log in {}",
                log.display()
            ));
        }
    }
    eprintln!("\n{}", summary.join("\n"));
    Ok(None)
}

/// `cargo xtask fuzz [--smoke | --time SECS] [TARGET...]`.
pub fn fuzz(args: &[String]) -> Result<(), String> {
    let usage =
        || format!("usage: cargo xtask fuzz [--smoke | --time SECS] [{}] (got {args:?})", FUZZ_TARGETS.join("|"));
    let mut secs = 600;
    let mut targets: Vec<&str> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--smoke" => secs = FUZZ_SMOKE_SECS,
            "--time" => secs = it.next().and_then(|v| v.parse().ok()).ok_or_else(usage)?,
            t => targets.push(FUZZ_TARGETS.iter().find(|x| **x == t).copied().ok_or_else(usage)?),
        }
    }
    if targets.is_empty() {
        targets = FUZZ_TARGETS.to_vec();
    }
    match fuzz_run(&targets, secs)? {
        Some(Skip) if !in_ci() => Ok(()),
        Some(Skip) => Err("cargo-fuzz missing".into()),
        None => Ok(()),
    }
}

/// Seconds each target runs in `cargo xtask ci`.
const FUZZ_SMOKE_SECS: u64 = 20;

pub fn miri() -> Result<(), String> {
    miri_stage().map(|_| ())
}

pub fn bench(args: &[String]) -> Result<(), String> {
    let usage = || {
        format!("usage: cargo xtask bench [core|transport|results|peers] [--quick] [--json PATH] [--plot PATH] (got {args:?})")
    };
    let mut which = "all";
    let mut quick = false;
    let (mut json, mut plot) = (None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "core" | "transport" | "results" | "peers" => {
                which = if which == "all" { a.as_str() } else { return Err(usage()) }
            }
            "--quick" => quick = true,
            "--json" => json = Some(it.next().ok_or_else(usage)?.clone()),
            "--plot" => plot = Some(it.next().ok_or_else(usage)?.clone()),
            _ => return Err(usage()),
        }
    }
    if which == "all" || which == "core" {
        let mut c = cmd("cargo", &["bench", "-p", "framebus-core", "--bench", "handoff", "--"]);
        if quick {
            // criterion's test mode: every benchmark runs once, nothing is measured.
            c.arg("--test");
        }
        run(c)?;
    }
    if which == "all" || which == "transport" {
        let mut c = cmd("cargo", &["run", "--release", "-q", "-p", "framebus-harness", "--", "bench", "transport"]);
        if quick {
            c.arg("--quick");
        }
        if let (Some(j), "transport") = (&json, which) {
            c.args(["--json", j]);
        }
        run(c)?;
    }
    if which == "all" || which == "results" {
        let mut c = cmd("cargo", &["run", "--release", "-q", "-p", "framebus-harness", "--", "bench", "results"]);
        if quick {
            c.arg("--quick");
        }
        run(c)?;
    }
    if which == "all" || which == "peers" {
        // Its own workspace (bench/): iceoryx2 is a dependency of this benchmark only.
        let mut c = cmd("cargo", &["run", "--release", "-q", "--manifest-path", "bench/Cargo.toml", "--"]);
        if quick {
            c.arg("--quick");
        }
        if let Some(j) = &json {
            if which != "transport" {
                c.args(["--json", j]);
            }
        }
        if let Some(p) = &plot {
            c.args(["--plot", p]);
        }
        run(c)?;
    }
    if !quick && !in_ci() && (which == "all" || which == "core") {
        eprintln!("criterion reports: target/criterion/report/index.html");
    }
    Ok(())
}

/// Cross-compiles and runs the core and platform tests on another target.
pub fn cross(args: &[String]) -> Result<(), String> {
    match args {
        [t] if t == "aarch64" => cross_aarch64().map(|_| ()),
        [t] if t == "windows" => cross_windows().map(|_| ()),
        _ => Err(format!("usage: cargo xtask cross aarch64|windows (got {args:?})")),
    }
}

/// Checks the tools (`(binary, Debian package)`) and the rustup target a cross run needs;
/// `Some(Skip)` when something is missing outside CI.
fn cross_prerequisites(tools: &[(&str, &str)], target: &str) -> Result<Option<Skip>, String> {
    for (tool, pkg) in tools {
        if output(tool, &["--version"]).is_none() {
            return missing(tool, "not installed", &format!("apt-get install {pkg}")).map(Some);
        }
    }
    ensure_target("stable", target)
}

/// `cargo test` arguments for the core and platform tests on `target`.
fn cross_test_args(target: &str) -> [&str; 10] {
    ["test", "-p", "framebus-core", "-p", "framebus-platform", "--target", target, "--profile", "checked", "--tests"]
}

fn cross_aarch64() -> Result<Option<Skip>, String> {
    const TARGET: &str = "aarch64-unknown-linux-gnu";
    const RUNNER: &str = "qemu-aarch64 -L /usr/aarch64-linux-gnu";
    if let Some(skip) = cross_prerequisites(
        &[("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"), ("qemu-aarch64", "qemu-user")],
        TARGET,
    )? {
        return Ok(Some(skip));
    }
    let mut c = cmd("cargo", &cross_test_args(TARGET));
    c.env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", "aarch64-linux-gnu-gcc")
        .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER", RUNNER)
        .env("FRAMEBUS_PEER_RUNNER", RUNNER)
        // Emulation is ~10x slower: the stress tests keep their default size.
        .env_remove("FRAMEBUS_STRESS_FRAMES");
    run(c).map(|_| None)
}

fn cross_windows() -> Result<Option<Skip>, String> {
    const TARGET: &str = "x86_64-pc-windows-gnu";
    if let Some(skip) = cross_prerequisites(&[("x86_64-w64-mingw32-gcc", "mingw-w64"), ("wine", "wine64")], TARGET)? {
        return Ok(Some(skip));
    }
    let args = cross_test_args(TARGET);
    let mut build = cmd("cargo", &args);
    build.arg("--no-run");
    run(build)?;
    // Wine 8 lacks ProcessPrng (see xtask/shim/bcryptprimitives.c): build the shim and put it
    // next to every executable the tests start.
    let out = crate::util::root().join("target").join(TARGET).join("checked");
    let dll = out.join("bcryptprimitives.dll");
    let src = crate::util::root().join("xtask/shim/bcryptprimitives.c");
    run(cmd(
        "x86_64-w64-mingw32-gcc",
        &[
            "-shared",
            "-O2",
            "-Wl,--kill-at",
            "-o",
            dll.to_str().ok_or("non-UTF-8 path")?,
            src.to_str().ok_or("non-UTF-8 path")?,
            "-ladvapi32",
        ],
    ))?;
    std::fs::copy(&dll, out.join("deps/bcryptprimitives.dll")).map_err(|e| format!("placing the shim DLL: {e}"))?;
    let mut c = cmd("cargo", &args);
    c.env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER", "wine")
        .env("WINEDEBUG", "-all")
        .env_remove("FRAMEBUS_STRESS_FRAMES");
    run(c).map(|_| None)
}

pub fn simulate(args: &[String]) -> Result<(), String> {
    // Build once in release (decoding 1080p in debug would not keep up), then run the binary
    // itself, so Ctrl-C reaches `framebus simulate`, which stops its processes and removes its
    // segments.
    run(cmd("cargo", &["build", "--release", "-q", "-p", "framebus-harness", "--bin", "framebus"]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| crate::util::root().join("target"), Into::into);
    let exe = target.join("release").join(format!("framebus{}", std::env::consts::EXE_SUFFIX));
    let mut c = std::process::Command::new(exe);
    c.arg("simulate").args(args).current_dir(crate::util::root());
    run(c)
}
