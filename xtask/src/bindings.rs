//! The C and Python bindings: header check, C install with pkg-config, the Python package
//! built into a virtualenv and tested against the Rust binaries.
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{cmd, in_ci, missing, output, root, run, Skip};

/// Packages the Python tests need besides the framebus package itself.
/// OpenCV 4.x: the face worker example needs the Haar cascades its wheel ships (`cv2.data`), which
/// 5.x dropped.
const PY_PACKAGES: [&str; 4] = ["maturin>=1.9,<2", "numpy", "pytest", "opencv-python-headless>=4.8,<5"];

/// Regenerates `bindings/c/include/framebus.h` with cbindgen: checks it against the committed
/// file, or (`bless`) rewrites it.
pub fn header(bless: bool) -> Result<(), String> {
    let mut c = cmd("cargo", &["build", "-q", "-p", "framebus-c", "--features", "header"]);
    if bless {
        c.env("FRAMEBUS_C_BLESS", "1");
    }
    run(c)
}

/// `cargo xtask cheader`.
pub fn cheader() -> Result<(), String> {
    header(true)?;
    eprintln!("bindings/c/include/framebus.h is up to date with bindings/c/src");
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), Into::into)
}

/// `cargo xtask install-c --prefix DIR`: builds libframebus in release and installs
/// `include/framebus.h`, `lib/libframebus.{so,a}` and `lib/pkgconfig/framebus.pc` under DIR.
pub fn install_c(args: &[String]) -> Result<(), String> {
    let prefix = match args {
        [flag, dir] if flag == "--prefix" => PathBuf::from(dir),
        _ => return Err("usage: cargo xtask install-c --prefix DIR".into()),
    };
    install_c_into(&prefix)?;
    eprintln!(
        "installed under {}; build with: cc app.c $(PKG_CONFIG_PATH={}/lib/pkgconfig pkg-config --cflags --libs framebus)",
        prefix.display(),
        prefix.display()
    );
    Ok(())
}

fn install_c_into(prefix: &Path) -> Result<(), String> {
    run(cmd("cargo", &["build", "--release", "-q", "-p", "framebus-c"]))?;
    let prefix = if prefix.is_absolute() { prefix.to_path_buf() } else { root().join(prefix) };
    let (inc, lib, pc) = (prefix.join("include"), prefix.join("lib"), prefix.join("lib/pkgconfig"));
    for d in [&inc, &lib, &pc] {
        std::fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
    }
    let copy = |from: PathBuf, to: PathBuf| {
        std::fs::copy(&from, &to).map(|_| ()).map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))
    };
    copy(root().join("bindings/c/include/framebus.h"), inc.join("framebus.h"))?;
    let release = target_dir().join("release");
    for name in ["libframebus.so", "libframebus.a"] {
        copy(release.join(name), lib.join(name))?;
    }
    let template = std::fs::read_to_string(root().join("bindings/c/framebus.pc.in")).map_err(|e| e.to_string())?;
    let version = env!("CARGO_PKG_VERSION");
    let text = template.replace("@PREFIX@", &prefix.display().to_string()).replace("@VERSION@", version);
    std::fs::write(pc.join("framebus.pc"), text).map_err(|e| e.to_string())
}

/// CI stage: the header matches cbindgen's output; the library installs, and the C example
/// builds through pkg-config against the installed copy (static, as an embedded build would).
pub fn c_stage() -> Result<Option<Skip>, String> {
    header(false)?;
    let prefix = target_dir().join("c-prefix");
    install_c_into(&prefix)?;
    if output("pkg-config", &["--version"]).is_none() {
        return missing("pkg-config", "needed to check the installed framebus.pc", "apt-get install pkg-config")
            .map(Some);
    }
    let pcdir = prefix.join("lib/pkgconfig");
    let mut pc = Command::new("pkg-config");
    pc.args(["--cflags", "--libs", "--static", "framebus"]).env("PKG_CONFIG_PATH", &pcdir);
    let out = pc.output().map_err(|e| format!("pkg-config: {e}"))?;
    if !out.status.success() {
        return Err(format!("pkg-config does not find framebus.pc: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let flags = String::from_utf8_lossy(&out.stdout).into_owned();
    // Link the static library: with both present, -lframebus would pick the shared one.
    let flags: Vec<String> = flags
        .split_whitespace()
        .map(|f| if f == "-lframebus" { prefix.join("lib/libframebus.a").display().to_string() } else { f.to_string() })
        .collect();
    let exe = prefix.join("appsink_producer");
    let mut cc = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    cc.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(root().join("examples/c/appsink_producer.c"))
        .args(&flags);
    run(cc)?;
    // Run without arguments: it must start (linked) and print its usage.
    let out = Command::new(&exe).output().map_err(|e| format!("{}: {e}", exe.display()))?;
    if out.status.code() != Some(2) {
        return Err(format!("{} did not print its usage: {out:?}", exe.display()));
    }
    Ok(None)
}

/// A Python ≥ 3.9 with venv, or why not.
fn python() -> Option<String> {
    for py in ["python3", "python"] {
        let ok = output(py, &["-c", "import sys, venv, ensurepip; assert sys.version_info >= (3, 9)"]).is_some();
        if ok {
            return Some(py.to_string());
        }
    }
    None
}

/// The virtualenv the Python tests run in (`target/pyvenv`), created and filled if needed.
fn venv() -> Result<Result<PathBuf, Skip>, String> {
    let dir = target_dir().join("pyvenv");
    let bin = dir.join("bin/python");
    if !bin.exists() {
        let Some(py) = python() else {
            return missing(
                "python3 (>= 3.9, with venv)",
                "the Python package is built and tested in a virtualenv",
                "apt-get install python3 python3-venv",
            )
            .map(Err);
        };
        run(cmd(&py, &["-m", "venv", &dir.display().to_string()]))?;
    }
    let py = bin.display().to_string();
    let mut pip = cmd(&py, &["-m", "pip", "install", "-q", "--disable-pip-version-check"]);
    pip.args(PY_PACKAGES);
    run(pip)?;
    Ok(Ok(bin))
}

/// `cargo xtask python` and its CI stage: rustfmt and clippy of the extension crate, the
/// package installed into the virtualenv with pip (maturin builds the wheel), and its tests
/// against the release `framebus` and `framebus-peer` binaries.
pub fn python_stage() -> Result<Option<Skip>, String> {
    let manifest = root().join("bindings/python/Cargo.toml").display().to_string();
    let bin = match venv()? {
        Ok(b) => b,
        Err(skip) => return Ok(Some(skip)),
    };
    let py = bin.display().to_string();
    run(cmd("cargo", &["fmt", "--manifest-path", &manifest, "--check"]))?;
    // PyO3's build script asks this interpreter for its configuration.
    let mut clippy = cmd("cargo", &["clippy", "--manifest-path", &manifest, "--all-targets", "--", "-D", "warnings"]);
    clippy.env("PYO3_PYTHON", &bin);
    run(clippy)?;
    let mut install = cmd(
        &py,
        &[
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--force-reinstall",
            "--no-deps",
            "./bindings/python",
        ],
    );
    install.env("PYO3_PYTHON", &bin);
    run(install)?;
    run(cmd(
        "cargo",
        &[
            "build",
            "--release",
            "-q",
            "-p",
            "framebus-platform",
            "--bin",
            "framebus-peer",
            "-p",
            "framebus-harness",
            "--bin",
            "framebus",
        ],
    ))?;
    let release = target_dir().join("release");
    let mut test = cmd(&py, &["-m", "pytest", "-q", "bindings/python/tests", "examples/python"]);
    test.env("FRAMEBUS_BIN", release.join("framebus")).env("FRAMEBUS_PEER", release.join("framebus-peer"));
    if in_ci() {
        // A missing optional module (cv2) must fail CI, not skip.
        test.env("FRAMEBUS_REQUIRE_ALL", "1");
    }
    run(test).map(|_| None)
}
