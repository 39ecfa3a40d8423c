//! Multi-process tests of framebus-platform: real processes (`framebus-peer`) over real named
//! shared memory. Linux only for now (the Windows backing is a later step).
#![cfg(target_os = "linux")]

mod backings;
mod errors;
mod procs;
mod python;
mod util;
