//! `cargo xtask <task>`: the project's developer tasks, so that settings such as the loom
//! RUSTFLAGS live here and not in people's heads.
//!
//! Tasks: `ci`, `tidy`, `loom`, `miri`, `nostd`, `cross`, `bench`, `simulate`, `bindgen`, `cheader`,
//! `install-c`, `python`, `fuzz`. Tools a normal user may lack
//! (nightly, miri, extra targets) are skipped with a message outside CI and are errors when
//! `CI=true`.

mod bindings;
mod tasks;
mod tidy;
mod util;

use std::process::ExitCode;

const HELP: &str = "\
usage: cargo xtask <task> [options]

tasks:
  ci          everything CI runs: fmt, tidy, bindings check, clippy, tests, C library (header
              check, install, pkg-config build), Python package and its tests, no_std build,
              fuzz smoke, aarch64 tests under qemu, windows tests under Wine, loom, miri,
              bench smoke, simulate smoke
              (prints each stage's duration; CI=true turns missing tools into errors)
  loom        run the loom models of framebus-core (LOOM_MAX_PREEMPTIONS defaults to 2)
  miri        run framebus-core's tests under Miri (nightly + miri component)
  nostd       build framebus-core for aarch64-unknown-none (proof that it is no_std)
  cross T     cross-compile and run core + platform tests, multi-process ones included:
              T = aarch64 (under qemu-user) or windows (under Wine)
  bench       [core|transport|results|peers] [--quick] [--json PATH] [--plot PATH]: criterion
              benchmarks of the core (in-process handoff vs crossbeam and rtrb), the
              cross-process transport benchmark (64 B / 720p / 1080p vs cache-line, futex and
              memcpy limits), the ordered results path next to the handoff (and the runtime's
              CPU per frame), and framebus next to iceoryx2, Unix sockets, TCP and pipes with
              the same limits measured in the same run (bench/, its own workspace)
  fuzz        [--smoke | --time SECS] [header|control_area|api_sequence]: run the cargo-fuzz
              targets (nightly; installs cargo-fuzz) from the seed corpus in fuzz/corpus/,
              10 minutes each by default; ci runs --smoke (20 s each)
  bindgen     regenerate platform/snpe-sys/src/bindings.rs from its C header (needs libclang;
              ci checks the committed file against a fresh generation)
  cheader     regenerate bindings/c/include/framebus.h with cbindgen (ci checks the committed
              header against a fresh generation)
  install-c   --prefix DIR: install libframebus.{so,a}, framebus.h and a pkg-config file
              (cc app.c $(pkg-config --cflags --libs framebus))
  tidy        the style rules a compiler does not check: every file opens with `//!`, every
              SYNC POINT label at two or more sites, no source file over 900 lines, no import
              cycle between the modules of a crate
  python      build the Python package into target/pyvenv (pip + maturin; installs numpy,
              pytest, opencv-python-headless there) and run its tests and the examples'
  simulate    [options]: multi-worker inference simulation on recorded video, in separate
              processes over a real segment (no options: the bundled 720p clip, 4 x aip, 20 s;
              `cargo xtask simulate --help` lists options, profiles and presets)

environment:
  CI=true                     missing tools are errors, not skips
  FRAMEBUS_STRESS_FRAMES=N    frames per stress test (default 200000; ci uses 2000000)
  LOOM_MAX_PREEMPTIONS=N      loom preemption bound (default 2)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(task) = args.first() else {
        eprint!("{HELP}");
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    let result = match task.as_str() {
        "ci" => tasks::ci(rest),
        "loom" => tasks::loom(),
        "miri" => tasks::miri(),
        "nostd" => tasks::nostd(),
        "bench" => tasks::bench(rest),
        "cross" => tasks::cross(rest),
        "simulate" => tasks::simulate(rest),
        "bindgen" => tasks::bindgen(),
        "cheader" => bindings::cheader(),
        "install-c" => bindings::install_c(rest),
        "python" => bindings::python_stage().and_then(|s| match s {
            Some(_) => Err("python3 with venv is missing: apt-get install python3 python3-venv".into()),
            None => Ok(()),
        }),
        "fuzz" => tasks::fuzz(rest),
        "tidy" => tidy::tidy(),
        "-h" | "--help" | "help" => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        other => Err(format!("unknown task '{other}'\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
