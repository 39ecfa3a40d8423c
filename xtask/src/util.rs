//! Running commands and deciding what to do when a tool is missing.
use std::path::PathBuf;
use std::process::Command;

/// The workspace root (xtask lives one level below it). `cargo run` sets CARGO_MANIFEST_DIR at
/// run time; the compile-time value is only a fallback, because a binary built from another
/// checkout sharing the target directory would otherwise work on that checkout.
pub fn root() -> PathBuf {
    let manifest =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest.parent().expect("xtask has a parent").to_path_buf()
}

/// True when running in CI (`CI=true`), where missing tools are errors.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A command in the workspace root.
pub fn cmd(program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args).current_dir(root());
    c
}

/// Runs `c`, failing with its description when it exits non-zero.
pub fn run(mut c: Command) -> Result<(), String> {
    let desc = format!("{c:?}");
    eprintln!("$ {desc}");
    let status = c.status().map_err(|e| format!("cannot start {desc}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{desc} failed ({status})"))
    }
}

/// Output of a command, if it ran successfully.
pub fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What to do when a tool is missing: skip with `why` and `fix` outside CI, fail in CI.
pub fn missing(what: &str, why: &str, fix: &str) -> Result<Skip, String> {
    let msg = format!("{what}: {why}; to install: {fix}");
    if in_ci() {
        Err(format!("{msg} (CI=true: missing tools are errors)"))
    } else {
        eprintln!("SKIPPED {msg}");
        Ok(Skip)
    }
}

/// Marker: a stage was skipped.
pub struct Skip;

/// Ensures a rustup target is installed, installing it when rustup is present.
pub fn ensure_target(toolchain: &str, target: &str) -> Result<Option<Skip>, String> {
    let installed = output("rustup", &[&format!("+{toolchain}"), "target", "list", "--installed"]).unwrap_or_default();
    if installed.lines().any(|l| l.trim() == target) {
        return Ok(None);
    }
    eprintln!("installing rustup target {target} for {toolchain}");
    if run(cmd("rustup", &["target", "add", "--toolchain", toolchain, target])).is_ok() {
        return Ok(None);
    }
    missing(
        &format!("target {target}"),
        "not installed and rustup could not add it",
        &format!("rustup target add {target}"),
    )
    .map(Some)
}
