//! Waking sleepers on a segment's wake words (the waker's side of the handshakes in the core's
//! `segment::wake`): the producer waiting for space, the consumers waiting for frames.

use framebus_core::sync::{AtomicU64, Ordering};
use framebus_core::Segment;

use crate::os;

/// Wakes a producer sleeping for space (after a reclaim that asked for it).
pub fn wake_space(seg: &Segment<'_>) {
    wake(seg.space_wake_words());
}

/// Wakes the sleepers of a (wake word, waiter count) pair; the count tells the OS layer how many.
fn wake((word, waiters): (&AtomicU64, &AtomicU64)) {
    // Only the space pair counts its waiters (the one producer); frames use a mask (`publish`).
    os::wake(word, waiters.load(Ordering::Acquire));
}

/// Wakes the ordered results reader if it sleeps (after a post, a release or a mark: the core
/// bumped its wake word when it saw the sleeper).
pub fn wake_results(seg: &Segment<'_>) {
    if !seg.has_results() {
        return;
    }
    let (word, waiters) = seg.results_wake_words();
    // No system call unless the reader sleeps. Acquire: pairs with its SeqCst announce; a reader
    // that announces after this load re-checks its head and finds what woke nobody.
    if waiters.load(Ordering::Acquire) != 0 {
        os::wake(word, 1);
    }
}

/// Wakes the consumers sleeping for a frame: the frame-waiter word's low 16 bits are the mask
/// of sleeping consumer entries.
pub(crate) fn wake_frames(seg: &Segment<'_>) {
    let (word, mask) = seg.frame_wake_words();
    os::wake(word, u64::from((mask.load(Ordering::Acquire) & 0xFFFF).count_ones()));
}
