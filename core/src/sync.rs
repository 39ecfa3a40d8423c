//! The one switch through which every atomic, fence and spin hint of the core passes.
//!
//! Under `--cfg loom` the types come from [loom](https://docs.rs/loom), which explores every
//! interleaving (and every weak-memory outcome it models) of the code built on them; otherwise
//! they are the plain `core` types. `clippy.toml` forbids the `core` types everywhere else in
//! this crate, so nothing escapes the model.
//!
//! Slot payloads are plain bytes, not atomics. Under loom each slot additionally gets an
//! [`AccessTracker`], a `loom::cell::UnsafeCell<()>` that the payload copy routines touch, so
//! loom reports any payload read that is not ordered after the write it reads (a torn frame).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

#[cfg(not(loom))]
pub use core::sync::atomic::{fence, AtomicU64, Ordering};

#[cfg(loom)]
pub use loom::sync::atomic::{fence, AtomicU64, Ordering};

/// Hint that the caller is spinning; under loom this yields to another modelled thread.
#[inline]
pub fn spin_loop() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}

/// Records payload accesses of one slot for loom's causality checker; free in normal builds.
#[derive(Debug, Default)]
pub struct AccessTracker {
    #[cfg(loom)]
    cell: loom::cell::UnsafeCell<()>,
}

// SAFETY: the tracker holds no data (`()`); it exists only so loom can check that accesses made
// through it are ordered. Sharing it between threads is the point.
unsafe impl Sync for AccessTracker {}

impl AccessTracker {
    /// Runs `f` as a read of the tracked payload.
    #[inline]
    pub fn read<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(loom)]
        {
            self.cell.with(|_| f())
        }
        #[cfg(not(loom))]
        {
            f()
        }
    }

    /// Runs `f` as a write of the tracked payload.
    #[inline]
    pub fn write<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(loom)]
        {
            self.cell.with_mut(|_| f())
        }
        #[cfg(not(loom))]
        {
            f()
        }
    }
}
