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
use framebus_core::{Consumer, Frame, Producer, Segment};

use crate::os;
pub use crate::reap::{maybe_reap, REAP_CLOCKS, REAP_INTERVAL};
use crate::wake::wake_frames;
pub use crate::wake::{wake_results, wake_space};

/// Claims spun before sleeping (a few microseconds).
pub const SPIN: u32 = 256;

/// Why a wait ended without a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitError {
    /// The timeout passed.
    TimedOut,
    /// The stream ended ([`ClaimError::Ended`]): the producer finished and nothing is left.
    Ended,
    /// The claim itself failed (evicted, corrupt).
    Claim(ClaimError),
}

impl std::fmt::Display for WaitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TimedOut => {
                write!(f, "timed out waiting: the producer may be stalled or gone (check `framebus inspect`)")
            }
            Self::Ended => ClaimError::Ended.fmt(f),
            Self::Claim(e) => e.fmt(f),
        }
    }
}
impl std::error::Error for WaitError {}

impl From<ClaimError> for WaitError {
    fn from(e: ClaimError) -> Self {
        if e == ClaimError::Ended {
            WaitError::Ended
        } else {
            WaitError::Claim(e)
        }
    }
}

/// Claims the next frame, sleeping (without a busy loop) until one arrives or `timeout` passes.
///
/// # Errors
/// [`WaitError::TimedOut`]; [`WaitError::Ended`] once the producer ended the stream and nothing
/// is left (at once: an end wakes sleepers); or [`WaitError::Claim`] with the claim's own error.
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
            Err(e) => return Err(WaitError::from(e)),
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
            return again.map_err(WaitError::from);
        }
        os::wait(wake, seen, deadline - now);
        consumer.retire_sleep();
        spins = spin / 2;
    }
}

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

/// Publishes `slot` and wakes sleeping consumers if there are any.
pub fn publish(slot: WriteSlot<'_, '_>, meta: FrameMeta, seg: &Segment<'_>) -> Published {
    maybe_reap(seg);
    let p = slot.publish(meta);
    if p.wake {
        wake_frames(seg);
    }
    p
}

/// Posts `bytes` as the result of `frame` (held by `consumer`) and wakes the ordered reader.
/// While the reader is a whole window behind (`WindowFull`), retries for up to `patience`, then
/// gives up: the loss is counted (`result_overflow`) and `WindowFull` returned.
///
/// # Errors
/// As [`Consumer::post`].
pub fn post(
    consumer: &mut Consumer<'_>,
    frame: &Frame,
    bytes: &[u8],
    patience: Duration,
) -> Result<framebus_core::Posted, framebus_core::PostError> {
    let r = try_post(consumer, frame, bytes, patience);
    if r == Err(framebus_core::PostError::WindowFull) {
        consumer.segment().note_result_overflow();
    }
    r
}

/// As [`post`], but a full window after `patience` is returned without counting the loss (for
/// callers that wait in slices and give up later: they count it then,
/// [`Segment::note_result_overflow`]).
///
/// # Errors
/// As [`Consumer::post`].
pub fn try_post(
    consumer: &mut Consumer<'_>,
    frame: &Frame,
    bytes: &[u8],
    patience: Duration,
) -> Result<framebus_core::Posted, framebus_core::PostError> {
    let give_up = Instant::now() + patience;
    loop {
        match consumer.post(frame, bytes) {
            Err(framebus_core::PostError::WindowFull) if Instant::now() < give_up => {
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(framebus_core::PostError::WindowFull) => return Err(framebus_core::PostError::WindowFull),
            r => {
                wake_results(consumer.segment());
                return r;
            }
        }
    }
}

/// The ordered reader's next step, sleeping (no busy loop) while its head is pending, at most
/// `timeout`: a result (copied into `out`), a skip, the end — or `Next::Pending` when the timeout
/// passed first (the caller decides whether to give up on the head: `skip_head`).
///
/// # Errors
/// As [`framebus_core::ResultReader::next`].
pub fn next_result(
    reader: &mut framebus_core::ResultReader<'_>,
    out: &mut [u8],
    timeout: Duration,
) -> Result<framebus_core::Next, framebus_core::ReadError> {
    use framebus_core::Next;
    let deadline = Instant::now() + timeout;
    loop {
        let n = reader.next(out)?;
        if !matches!(n, Next::Pending { .. }) {
            return Ok(n);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(n);
        }
        let seen = reader.announce_sleep();
        let again = reader.next(out);
        if !matches!(again, Ok(Next::Pending { .. })) {
            reader.retire_sleep();
            return again;
        }
        // Bounded: the end of a stream whose producer died wakes nobody.
        let (wake, _) = reader.segment().results_wake_words();
        os::wait(wake, seen, (deadline - now).min(REAP_INTERVAL));
        reader.retire_sleep();
    }
}

/// Releases `frame` and wakes a producer sleeping for space if needed.
///
/// # Errors
/// As [`Consumer::release`].
pub fn release(consumer: &mut Consumer<'_>, frame: Frame) -> Result<(), ClaimError> {
    if consumer.release(frame)? {
        wake_space(consumer.segment());
    }
    // A release without a post marks the frame no-result: the reader may be waiting for it.
    wake_results(consumer.segment());
    Ok(())
}
