//! The sleep handshakes' words: who sleeps (the frame-waiter mask, the space-waiter count),
//! the wake words the platform sleeps on, and the waker's half (`bump_if_waiters`). The
//! platform crate does the sleeping; this module only keeps the words honest.

use super::*;

/// The frame-waiter word: bits 0-15 are the mask of sleeping consumer entries, bits 16-63 a
/// version bumped by every change, so that no compare-and-swap on the word can mistake a
/// bit set again by the entry's next occupant for the one it read (ABA).
pub(super) const WAITER_BITS: u64 = 0xFFFF;
pub(super) const WAITER_VERSION: u64 = 1 << 16;

/// The bits of the frame-waiter word that mean someone sleeps (the rest is the version).
pub(super) const FRAME_SLEEPERS: u64 = WAITER_BITS;
/// The space-waiter word is a plain count: any bit means someone sleeps.
pub(super) const SPACE_SLEEPERS: u64 = u64::MAX;

/// `m` with `bits` set or cleared and its version bumped.
pub(super) const fn waiters_with(m: u64, set: bool, bits: u64) -> u64 {
    let mask = if set { m | bits } else { m & !bits };
    (mask & WAITER_BITS) | ((m & !WAITER_BITS).wrapping_add(WAITER_VERSION))
}

impl<'a> Segment<'a> {
    /// The producer's half of the sleep handshake for space (the waker's half is
    /// `bump_if_waiters`, run by `release` and `reclaim`): reads the space-wake word, announces
    /// one more waiter, and issues a SeqCst fence. The caller must then re-check
    /// [`Producer::has_space`] and sleep only if it still fails, while the wake word still
    /// equals the returned value; afterwards it calls [`Segment::retire_space_sleeper`].
    ///
    /// Why no wake-up is lost: sleeper (announce; fence; re-check) against waker (change the
    /// condition; fence; read waiters) is store buffering closed by two SeqCst fences, so either
    /// the re-check sees the change or the waker sees the waiter and bumps the word, which
    /// makes the sleep return at once. Modelled by loom (`sleep_handshake_loses_no_wakeup`).
    pub fn announce_space_sleeper(&self) -> u32 {
        // SYNC POINT wake (sleeper): Acquire pairs with the Release bump in `bump_if_waiters`.
        let seen = self.ctl(ctl::SPACE_WAKE).load(Ordering::Acquire) as u32;
        self.ctl(ctl::SPACE_WAITERS).fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        seen
    }

    /// Withdraws a waiter announced by [`Segment::announce_space_sleeper`].
    pub fn retire_space_sleeper(&self) {
        let waiters = self.ctl(ctl::SPACE_WAITERS);
        // Saturating: a takeover resets the space-waiter count a dead producer left raised, and
        // a count that a reset (or a peer) zeroed must not wrap to 2^64 - 1 here. Release: the
        // count is a hint for wakers; nothing is published through it.
        let mut cur = waiters.load(Ordering::Relaxed);
        for _ in 0..RETRY_LIMIT {
            if cur == 0 {
                return;
            }
            match waiters.compare_exchange(cur, cur - 1, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// Frame-wake word (low 32 bits are the futex word) and the frame-waiter word, for the
    /// platform: its bits 0-15 are the mask of sleeping consumers (bit *j*: consumer entry *j*
    /// sleeps or is about to; see [`Consumer::announce_sleep`]), bits 16-63 a version.
    pub fn frame_wake_words(&self) -> (&'a AtomicU64, &'a AtomicU64) {
        (self.ctl(ctl::FRAME_WAKE), self.ctl(ctl::FRAME_WAITERS))
    }

    /// Space-wake word and waiter count (the producer sleeps here under `Block`; see
    /// [`Segment::announce_space_sleeper`]).
    pub fn space_wake_words(&self) -> (&'a AtomicU64, &'a AtomicU64) {
        (self.ctl(ctl::SPACE_WAKE), self.ctl(ctl::SPACE_WAITERS))
    }

    /// Wakes-needed check shared by publish and release: the waker's half of the sleep
    /// handshake. The sleeper increments `waiters`, issues a SeqCst fence, then re-checks its
    /// condition before sleeping; the waker changes the condition, issues a SeqCst fence, then
    /// reads `waiters`. The two fences order the pairs so at least one side sees the other.
    /// `sleepers` masks the bits of `waiters` that mean someone sleeps: [`FRAME_SLEEPERS`] for
    /// the frame word (its high bits are a version), [`SPACE_SLEEPERS`] for the space count.
    pub(super) fn bump_if_waiters(&self, wake: u64, waiters: u64, sleepers: u64) -> bool {
        fence(Ordering::SeqCst);
        if self.ctl(waiters).load(Ordering::Relaxed) & sleepers != 0 {
            self.ctl(wake).fetch_add(1, Ordering::Release);
            true
        } else {
            false
        }
    }
}

impl<'a> Consumer<'a> {
    /// The consumer's half of the sleep handshake (the waker's half is `bump_if_waiters`, run
    /// by `publish`): reads the frame-wake word, sets this entry's bit in the frame-waiter
    /// mask, and issues a SeqCst fence. The caller must then claim again and sleep only if that
    /// still finds nothing, while the wake word still equals the returned value; afterwards it
    /// calls [`Consumer::retire_sleep`].
    ///
    /// Why no wake-up is lost: sleeper (announce; fence; re-check) against waker (publish;
    /// fence; read the mask) is store buffering closed by two SeqCst fences, so either the
    /// re-check sees the frame or the waker sees the bit and bumps the word, which makes the
    /// sleep return at once (loom: `sleep_handshake_loses_no_wakeup`). The waiters are a mask
    /// rather than a count so that a consumer killed asleep can be taken out of it: its reclaim
    /// clears its bit (loom: `a_dead_sleepers_bit_is_cleared_by_its_reclaim`).
    pub fn announce_sleep(&self) -> u32 {
        let (wake, waiters) = self.seg.frame_wake_words();
        let bit = 1u64 << self.idx;
        // SYNC POINT wake (sleeper): Acquire pairs with the Release bump in `bump_if_waiters`.
        let seen = wake.load(Ordering::Acquire) as u32;
        // A CAS, not a fetch-or: the version must move with the bit (see `WAITER_VERSION`).
        let mut m = waiters.load(Ordering::Relaxed);
        let mut announced = false;
        for _ in 0..RETRY_LIMIT {
            match waiters.compare_exchange(m, waiters_with(m, true, bit), Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => {
                    announced = true;
                    break;
                }
                Err(now) => m = now,
            }
        }
        if !announced {
            // Only a peer flipping the word for RETRY_LIMIT rounds gets here: set the bit without
            // the version rather than risk a sleep nobody would wake.
            waiters.fetch_or(bit, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        seen
    }

    /// Takes this consumer out of the frame-waiter mask (see [`Consumer::announce_sleep`]).
    /// After an eviction the bit may already belong to the entry's next occupant: then it is
    /// left alone.
    pub fn retire_sleep(&self) {
        let (_, waiters) = self.seg.frame_wake_words();
        let bit = 1u64 << self.idx;
        // Acquire: SYNC POINT reclaim-validate (the bit may be the next occupant's).
        let mut m = waiters.load(Ordering::Acquire);
        for _ in 0..RETRY_LIMIT {
            if m & bit == 0 || !self.still_registered() {
                return;
            }
            match waiters.compare_exchange(m, waiters_with(m, false, bit), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(now) => m = now,
            }
        }
    }
}
