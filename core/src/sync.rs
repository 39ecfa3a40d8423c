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
use core::sync::atomic as imp;
#[cfg(loom)]
use loom::sync::atomic as imp;

pub use core::sync::atomic::Ordering;

/// A 64-bit atomic: `core`'s normally, loom's under `--cfg loom`.
///
/// A `#[repr(transparent)]` wrapper rather than a re-export so that `clippy.toml` can forbid the
/// underlying types everywhere else. Outside loom it has the size and alignment of `u64`, which
/// is what lets [`crate::Region`] view 8 aligned bytes of shared memory as one.
#[derive(Debug, Default)]
#[repr(transparent)]
pub struct AtomicU64(imp::AtomicU64);

impl AtomicU64 {
    /// A new atomic holding `v`.
    #[cfg(not(loom))]
    pub const fn new(v: u64) -> Self {
        AtomicU64(imp::AtomicU64::new(v))
    }

    /// A new atomic holding `v`.
    #[cfg(loom)]
    pub fn new(v: u64) -> Self {
        AtomicU64(imp::AtomicU64::new(v))
    }

    /// Atomic load.
    #[inline]
    pub fn load(&self, order: Ordering) -> u64 {
        self.0.load(order)
    }

    /// Atomic store.
    #[inline]
    pub fn store(&self, v: u64, order: Ordering) {
        self.0.store(v, order)
    }

    /// Atomic add, returning the previous value.
    #[inline]
    pub fn fetch_add(&self, v: u64, order: Ordering) -> u64 {
        self.0.fetch_add(v, order)
    }

    /// Atomic bitwise or, returning the previous value.
    #[inline]
    pub fn fetch_or(&self, v: u64, order: Ordering) -> u64 {
        self.0.fetch_or(v, order)
    }

    /// Atomic subtract, returning the previous value.
    #[inline]
    pub fn fetch_sub(&self, v: u64, order: Ordering) -> u64 {
        self.0.fetch_sub(v, order)
    }

    /// Address of the word, for a kernel wait primitive (futex) in the platform layer. On
    /// little-endian targets the low 32 bits of the word are at this same address.
    #[cfg(not(loom))]
    #[inline]
    pub fn as_ptr(&self) -> *mut u64 {
        self.0.as_ptr()
    }

    /// Strong compare-and-swap.
    ///
    /// # Errors
    /// The current value when it is not `current`.
    #[inline]
    pub fn compare_exchange(&self, current: u64, new: u64, success: Ordering, failure: Ordering) -> Result<u64, u64> {
        self.0.compare_exchange(current, new, success, failure)
    }

    /// Weak compare-and-swap (may fail spuriously; use in loops).
    ///
    /// # Errors
    /// The current value when it is not `current`, or spuriously.
    #[inline]
    pub fn compare_exchange_weak(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        self.0.compare_exchange_weak(current, new, success, failure)
    }
}

/// A memory fence.
#[inline]
pub fn fence(order: Ordering) {
    imp::fence(order)
}

/// Hints the CPU to start bringing the cache line at `p` in for reading. Not a memory
/// access (it cannot fault or race), so any address is fine; a no-op where no stable
/// intrinsic exists and under loom and Miri.
#[inline(always)]
pub fn prefetch_read(p: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(loom), not(miri)))]
    // SAFETY: PREFETCHT0 is a hint, not an access: it never faults, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom), not(miri))))]
    let _ = p;
}

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
