//! Sleeping until a frame (or a free slot) arrives, and waking sleepers — across processes.
//!
//! The fast path makes no system call: a consumer spins briefly on `claim`, and only then
//! announces itself in the segment's waiter count and sleeps on the shared wake word (a futex
//! on Linux). The producer's `publish` bumps the word and asks for a wake only when the waiter
//! count is non-zero. The handshake is the classic store-buffering pair, closed by SeqCst
//! fences on both sides (`Segment::bump_if_waiters` in the core is the waker's half):
//!
//! ```text
//! sleeper                                 waker
//! seen = wake                             make the condition true (publish / release)
//! announce (bit or count); fence(SeqCst)  fence(SeqCst)
//! re-check the condition                  if waiters != 0 { wake += 1; futex_wake(wake) }
//! futex_wait(wake, seen)                  
//! ```
//!
//! Either the sleeper's re-check sees the new frame, or the waker sees the waiter and changes
//! `wake`, so the futex wait returns at once: no lost wake-up. Every wait has a timeout.

use std::time::{Duration, Instant};

use framebus_core::segment::{ClaimError, FrameMeta, Published, WriteSlot};
use framebus_core::sync::{AtomicU64, Ordering};
use framebus_core::{Consumer, Frame, Producer, Segment};

use crate::os;

/// Claims spun before sleeping (a few microseconds).
pub const SPIN: u32 = 256;

/// Why a wait ended without a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitError {
    /// The timeout passed.
    TimedOut,
    /// The claim itself failed (evicted, corrupt).
    Claim(ClaimError),
}

impl std::fmt::Display for WaitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TimedOut => {
                write!(f, "timed out waiting: the producer may be stalled or gone (check `framebus inspect`)")
            }
            Self::Claim(e) => e.fmt(f),
        }
    }
}
impl std::error::Error for WaitError {}

/// Claims the next frame, sleeping (without a busy loop) until one arrives or `timeout` passes.
///
/// # Errors
/// [`WaitError::TimedOut`], or [`WaitError::Claim`] with the claim's own error.
pub fn claim(consumer: &mut Consumer<'_>, timeout: Duration) -> Result<Frame, WaitError> {
    claim_spinning(consumer, timeout, SPIN)
}

/// As [`claim`], spinning `spin` times before sleeping (0: sleep at once when empty).
///
/// # Errors
/// As [`claim`].
pub fn claim_spinning(consumer: &mut Consumer<'_>, timeout: Duration, spin: u32) -> Result<Frame, WaitError> {
    let deadline = Instant::now() + timeout;
    let seg = *consumer.segment();
    let (wake, _) = seg.frame_wake_words();
    let mut spins = 0;
    loop {
        match consumer.claim() {
            Ok(f) => return Ok(f),
            Err(ClaimError::Empty | ClaimError::Contended) => {}
            Err(e) => return Err(WaitError::Claim(e)),
        }
        if spins < spin {
            // Poll with plain loads: `claim` opens and closes the busy bracket (two locked
            // instructions) even when the ring is empty; the hint costs none.
            while spins < spin && !consumer.might_have_frame() {
                spins += 1;
                std::hint::spin_loop();
            }
            continue;
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(WaitError::TimedOut);
        }
        // The sleeper's half of the handshake lives in the core, where loom checks it.
        let seen = consumer.announce_sleep();
        let again = consumer.claim();
        if !matches!(again, Err(ClaimError::Empty | ClaimError::Contended)) {
            consumer.retire_sleep();
            return again.map_err(WaitError::Claim);
        }
        os::wait(wake, seen, deadline - now);
        consumer.retire_sleep();
        spins = spin / 2;
    }
}

/// How often a producer waiting for space reaps dead consumers (see [`crate::reap`]): the
/// bound on how long a consumer that died holding slots can stall the pipeline.
pub const REAP_INTERVAL: Duration = Duration::from_millis(100);

/// Waits until the producer could acquire a slot (Block policy), or `timeout` passes: spins
/// briefly (a consumer usually frees a slot within microseconds), then sleeps, waking at least
/// every [`REAP_INTERVAL`] to reap consumers whose process died ([`maybe_reap`]), so their
/// slots come back without anyone else's help.
///
/// # Errors
/// [`WaitError::TimedOut`].
pub fn wait_for_space(producer: &Producer<'_>, timeout: Duration) -> Result<(), WaitError> {
    for _ in 0..SPIN {
        if producer.has_space() {
            return Ok(());
        }
        std::hint::spin_loop();
    }
    let start = Instant::now();
    let deadline = start + timeout;
    let seg = *producer.segment();
    let (wake, _) = seg.space_wake_words();
    loop {
        if producer.has_space() {
            return Ok(());
        }
        let now = Instant::now();
        if maybe_reap(&seg) {
            continue;
        }
        let next_reap = now + REAP_INTERVAL;
        if now >= deadline {
            return Err(WaitError::TimedOut);
        }
        // As in `claim`, with `Consumer::release` and `reclaim` as wakers.
        let seen = seg.announce_space_sleeper();
        if producer.has_space() {
            seg.retire_space_sleeper();
            return Ok(());
        }
        os::wait(
            wake,
            seen,
            (deadline - now).min(next_reap.saturating_duration_since(now)).max(Duration::from_millis(1)),
        );
        seg.retire_space_sleeper();
    }
}

/// Reaps dead consumers of `seg` if this process has not done so for [`REAP_INTERVAL`]
/// *on this segment* (liveness checks are system calls: at most ten rounds a second per
/// process and segment). Returns whether anything was reclaimed. Called by [`publish`] and
/// [`wait_for_space`], so a consumer that dies holding slots is reclaimed within about
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
    !crate::reap(seg).is_empty()
}

/// Segments whose reap clocks [`maybe_reap`] keeps apart in one process.
pub const REAP_CLOCKS: usize = 32;

/// Publishes `slot` and wakes sleeping consumers if there are any.
pub fn publish(slot: WriteSlot<'_, '_>, meta: FrameMeta, seg: &Segment<'_>) -> Published {
    maybe_reap(seg);
    let p = slot.publish(meta);
    if p.wake {
        let (word, mask) = seg.frame_wake_words();
        // The frame-waiter word's low 16 bits are the mask of sleeping consumer entries.
        os::wake(word, u64::from((mask.load(Ordering::Acquire) & 0xFFFF).count_ones()));
    }
    p
}

/// Releases `frame` and wakes a producer sleeping for space if needed.
///
/// # Errors
/// As [`Consumer::release`].
pub fn release(consumer: &mut Consumer<'_>, frame: Frame) -> Result<(), ClaimError> {
    if consumer.release(frame)? {
        wake(consumer.segment().space_wake_words());
    }
    Ok(())
}

/// Wakes a producer sleeping for space (after a reclaim that asked for it).
pub fn wake_space(seg: &Segment<'_>) {
    wake(seg.space_wake_words());
}

/// Wakes the sleepers of a (wake word, waiter count) pair; the count tells the OS layer how many.
fn wake((word, waiters): (&AtomicU64, &AtomicU64)) {
    // Only the space pair counts its waiters (the one producer); frames use a mask (`publish`).
    os::wake(word, waiters.load(Ordering::Acquire));
}

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
