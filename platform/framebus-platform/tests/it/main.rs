//! Multi-process tests of framebus-platform: real processes (`framebus-peer`) over real named
//! shared memory, on Linux and on Windows (run under Wine by `cargo xtask cross windows`).
#![cfg(any(target_os = "linux", windows))]

#[cfg(target_os = "linux")]
mod backings;
#[cfg(target_os = "linux")]
mod crash;
#[cfg(target_os = "linux")]
mod errors;
#[cfg(target_os = "linux")]
mod pidns;
mod procs;
#[cfg(target_os = "linux")]
mod python;
mod results;
mod util;
