//! The simulation: a producer decoding recorded video into a segment, N workers running an
//! SNPE-shaped accelerator runtime on the slots in place and posting each frame's outcome as
//! its result, each in its own process (`framebus producer|worker`); the runtime
//! (`framebus simulate`, what `cargo xtask simulate` runs) starts, supervises (restarts) and
//! tears them down, and reads the results back in frame order itself ([`collect`]).
//!
//! ```text
//!                       frames segment (work queue + results area)
//! producer ──► [slot][slot][slot]… ──claim──► worker k ──post(Outcome)──► [cell][cell]…
//!                              (SNPE input user buffer = the slot)            │ in frame order
//!              drops marked in the cells ───────────────────────────────► collector ──► report
//!                                                                          └──► NAME.out (viewers)
//! ```
//!
//! The modules, each depending only on those listed before it (no edge back up):
//!
//! - [`wire`] (the records), [`profile`] (runtime profiles, one table), [`accel`] (the SNPE
//!   runtime), [`channel`] (the ordered output for viewers);
//! - [`roles`]: the producer and the workers — each its own contract (`Args`, report, `run`);
//! - [`collect`]: the ordered reader, checks and measurements;
//! - [`run`]: `framebus simulate` — plan, supervise, report, plot.

pub mod accel;
pub mod channel;
pub mod collect;
pub mod profile;
pub mod roles;
pub mod run;
pub mod wire;

pub use crate::Res;

/// Opens the frames segment a role is given: a name, or `unix:PATH` — a socket where the
/// orchestrator hands out the descriptor of an anonymous (memfd, dma-buf) segment.
///
/// # Errors
/// The segment's open error, or the socket's.
pub fn open_segment(spec: &str) -> Res<framebus_platform::SharedSegment> {
    match spec.strip_prefix("unix:") {
        #[cfg(target_os = "linux")]
        Some(path) => {
            let sock = std::os::unix::net::UnixStream::connect(path)
                .map_err(|e| format!("cannot connect to {path} for the segment's descriptor: {e}"))?;
            Ok(framebus_platform::SharedSegment::receive_fd(&sock)?)
        }
        #[cfg(not(target_os = "linux"))]
        Some(_) => Err("a segment passed by descriptor needs Linux".into()),
        None => Ok(framebus_platform::SharedSegment::open(spec)?),
    }
}

/// This process's peak resident set (Linux `VmHWM`; 0 where unknown).
pub fn peak_rss_bytes() -> u64 {
    proc_status_kib("self", "VmHWM:") * 1024
}

/// Private resident memory of process `pid` now (Linux `RssAnon`: heap, stacks, private
/// buffers — what a growing queue would show; the segment's shared pages are not in it).
/// 0 where unknown or gone.
pub fn private_rss_bytes(pid: u32) -> u64 {
    proc_status_kib(&pid.to_string(), "RssAnon:") * 1024
}

fn proc_status_kib(pid: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}
