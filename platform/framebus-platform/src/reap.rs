//! Reaping: giving back what consumers whose process died still hold. The core decides what a
//! dead consumer's entry and slots become (`Segment::reap`); this module supplies the liveness
//! check, wakes a producer the reap freed space for, and rate-limits the reaps a producer runs
//! while it publishes or waits (one clock per segment).

use std::time::{Duration, Instant};

use framebus_core::segment::Reclaimed;
use framebus_core::Segment;

use crate::os;
use crate::wake::wake_space;

/// How often a producer waiting for space reaps dead consumers (see [`reap`]): the
/// bound on how long a consumer that died holding slots can stall the pipeline.
pub const REAP_INTERVAL: Duration = Duration::from_millis(100);

/// Reclaims every consumer of `seg` whose process is dead (pid gone, or reused by another
/// process), including entries a dead reaper left half-reclaimed, and wakes a producer
/// sleeping for space when that freed anything. Returns `(entry, what was reclaimed)` for each.
///
/// Called by [`SharedSegment::reap`](crate::SharedSegment::reap), by
/// [`SharedSegment::register`](crate::SharedSegment::register) when the table is full,
/// and by [`wait_for_space`](crate::wait::wait_for_space) every [`REAP_INTERVAL`] while a producer waits: so a
/// consumer that dies holding slots stalls a producer about that long.
pub fn reap(seg: &Segment<'_>) -> Vec<(u32, Reclaimed)> {
    let mut out = Vec::new();
    seg.reap(os::is_alive, |idx, r| {
        if r.wake {
            wake_space(seg);
        }
        out.push((idx, r));
    });
    out
}

/// Reaps dead consumers of `seg` if this process has not done so for [`REAP_INTERVAL`]
/// *on this segment* (liveness checks are system calls: at most ten rounds a second per
/// process and segment). Returns whether anything was reclaimed. Called by [`publish`](crate::wait::publish) and
/// [`wait_for_space`](crate::wait::wait_for_space), so a consumer that dies holding slots is reclaimed within about
/// [`REAP_INTERVAL`] of the producer's next publish or wait, whatever the overflow policy.
///
/// The clock is kept per segment (by mapping address, in a fixed table of
/// [`REAP_CLOCKS`] entries), so a process that publishes into one segment and waits for
/// space on another reaps both on time; past that many segments, some share a clock.
pub fn maybe_reap(seg: &Segment<'_>) -> bool {
    use std::sync::atomic::{AtomicU64 as Std, AtomicUsize, Ordering as O};
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    static KEYS: [AtomicUsize; REAP_CLOCKS] = [const { AtomicUsize::new(0) }; REAP_CLOCKS];
    static LAST: [Std; REAP_CLOCKS] = [const { Std::new(0) }; REAP_CLOCKS];
    let key = seg.region().base().as_ptr() as usize;
    let now = EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1;
    // Relaxed everywhere: a rate limit, not a synchronisation; a lost race only reaps twice.
    let home = (key >> 12) % REAP_CLOCKS;
    let probe = || (0..REAP_CLOCKS).map(|k| (home + k) % REAP_CLOCKS);
    // Our clock; else a free one; else one no segment used for ten intervals (its segment is
    // gone or idle); else, with that many busy segments, share the home clock.
    let stale = |i: usize| now.saturating_sub(LAST[i].load(O::Relaxed)) > 10 * REAP_INTERVAL.as_nanos() as u64;
    let claim = |i: usize, from: usize| KEYS[i].compare_exchange(from, key, O::Relaxed, O::Relaxed).is_ok();
    let clock = probe()
        .find(|&i| KEYS[i].load(O::Relaxed) == key)
        .or_else(|| probe().find(|&i| claim(i, 0)))
        .or_else(|| {
            probe().find(|&i| {
                let k = KEYS[i].load(O::Relaxed);
                stale(i) && claim(i, k) && {
                    LAST[i].store(0, O::Relaxed);
                    true
                }
            })
        })
        .unwrap_or(home);
    let last_reap = &LAST[clock];
    let last = last_reap.load(O::Relaxed);
    if now.saturating_sub(last) < REAP_INTERVAL.as_nanos() as u64 && last != 0 {
        return false;
    }
    if last_reap.compare_exchange(last, now, O::Relaxed, O::Relaxed).is_err() {
        return false;
    }
    if last == 0 {
        return false; // the first call starts the clock: a full ring is normal, not a death
    }
    !reap(seg).is_empty()
}

/// Segments whose reap clocks [`maybe_reap`] keeps apart in one process.
pub const REAP_CLOCKS: usize = 32;

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use framebus_core::{ConsumerKind, Creator, FrameGeometry, HeapRegion, Layout, PixelFormat, Segment, SegmentSpec};

    use super::{maybe_reap, REAP_INTERVAL};

    /// Review item 12: one segment's reaps do not use up another's rate limit.
    #[test]
    fn each_segment_has_its_own_reap_clock() {
        let spec = SegmentSpec::new(FrameGeometry::new(8, 1, PixelFormat::Gray8), 2);
        let layout = Layout::compute(&spec).unwrap();
        let (ha, hb) = (HeapRegion::for_layout(&layout), HeapRegion::for_layout(&layout));
        let a = Segment::create(ha.region(), &spec, Creator::default()).unwrap();
        let b = Segment::create(hb.region(), &spec, Creator::default()).unwrap();
        // A consumer of B whose process is gone (pid 2^32 - 1 never exists).
        let _dead = b.register(ConsumerKind::Worker, u64::from(u32::MAX)).unwrap();
        assert!(!maybe_reap(&b), "the first call only starts B's clock");
        std::thread::sleep(REAP_INTERVAL + std::time::Duration::from_millis(20));
        let _ = maybe_reap(&a); // A's turn: with one clock for all, this would take B's window
        assert!(maybe_reap(&b), "B's own window is still open: its dead consumer is reaped");
    }
}
