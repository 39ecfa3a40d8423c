//! A raw byte region: where the segment lives. The core does not know whether it is POSIX shared
//! memory, a Windows file mapping, a dma-buf or a heap allocation.
//!
//! All access to control words goes through `Region::word`, which bounds-checks the offset
//! and hands out an atomic; payload bytes are copied with bounds-checked raw copies. No Rust
//! reference to plain bytes of the region is ever formed, because another process may write
//! them at any time (see memmap2's notes on why `&[u8]` over shared mappings is unsound).

use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::sync::{AccessTracker, AtomicU64};

/// A borrowed view of a byte region of `len` bytes at `base`, valid for `'a`.
///
/// `Region` is `Copy`: it is only an address range. Whoever created it (a platform mapping or a
/// `HeapRegion`, feature `alloc`) keeps the memory alive for `'a`.
#[derive(Clone, Copy, Debug)]
pub struct Region<'a> {
    base: NonNull<u8>,
    len: usize,
    #[cfg(loom)]
    shadow: &'a loom_shadow::Shadow,
    _life: PhantomData<&'a [u8]>,
}

// SAFETY: a region is shared memory by design; every access to it goes through atomics or
// through copies whose exclusivity the protocols guarantee. The pointer itself is just an address.
unsafe impl Send for Region<'_> {}
// SAFETY: as above; `&Region` only gives out atomics and bounds-checked copies.
unsafe impl Sync for Region<'_> {}

impl<'a> Region<'a> {
    /// Wraps `len` bytes at `base`.
    ///
    /// # Safety
    /// For all of `'a`: `base` is valid for reads and writes of `len` bytes, 8-byte aligned, and
    /// no Rust reference (`&[u8]`, `&mut [u8]`) to any of those bytes is used. Other processes may
    /// write the bytes concurrently; that is what the protocols are for.
    #[cfg(not(loom))]
    pub unsafe fn from_raw(base: NonNull<u8>, len: usize) -> Self {
        Region { base, len, _life: PhantomData }
    }

    /// Length of the region in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the region has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The base address (for handing a slot to an accelerator or DMA engine).
    pub fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// The 8-byte control word at byte offset `off`.
    ///
    /// # Panics
    /// When `off` is not 8-aligned or `off + 8` exceeds the region. Callers pass offsets computed
    /// from a validated layout and bounds-checked indices, so a panic here is a framebus bug,
    /// never a consequence of hostile shared memory.
    #[inline]
    pub(crate) fn word(&self, off: usize) -> &'a AtomicU64 {
        assert!(
            off % 8 == 0 && off.checked_add(8).is_some_and(|end| end <= self.len),
            "control word offset {off} outside region of {} bytes",
            self.len
        );
        #[cfg(not(loom))]
        {
            // SAFETY: in bounds and 8-aligned (checked above; base is 8-aligned per
            // `from_raw`'s contract). `AtomicU64` has the size and alignment of `u64`, and all
            // concurrent access to control words is atomic, so forming `&AtomicU64` is sound.
            unsafe { &*(self.base.as_ptr().add(off) as *const AtomicU64) }
        }
        #[cfg(loom)]
        {
            self.shadow.word(off)
        }
    }

    /// Copies `src` into the region at `off`.
    ///
    /// # Safety
    /// The caller owns `off..off + src.len()` exclusively under the protocol (a slot it holds for
    /// writing, or a header it is creating).
    ///
    /// # Panics
    /// When the range is outside the region.
    #[inline]
    pub(crate) unsafe fn copy_in(&self, off: usize, src: &[u8]) {
        assert!(off.checked_add(src.len()).is_some_and(|end| end <= self.len), "copy_in outside region");
        // SAFETY: in bounds (checked above); the caller guarantees exclusive ownership of the range,
        // and `src` is a Rust slice that cannot overlap the region (no references into it exist).
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), self.base.as_ptr().add(off), src.len()) }
    }

    /// Copies region bytes at `off` into `dst`.
    ///
    /// # Safety
    /// No writer may legitimately write `off..off + dst.len()` during the copy (the caller holds
    /// the slot). A hostile writer can only garble the copied bytes: the copy goes through raw
    /// pointers and never through a reference to the shared bytes.
    ///
    /// # Panics
    /// When the range is outside the region.
    #[inline]
    pub(crate) unsafe fn copy_out(&self, off: usize, dst: &mut [u8]) {
        assert!(off.checked_add(dst.len()).is_some_and(|end| end <= self.len), "copy_out outside region");
        // SAFETY: in bounds (checked above); `dst` is caller memory, not part of the region.
        unsafe { core::ptr::copy_nonoverlapping(self.base.as_ptr().add(off), dst.as_mut_ptr(), dst.len()) }
    }

    /// The loom access tracker of slot `slot` (a no-op outside loom).
    #[inline]
    pub(crate) fn tracker(&self, slot: usize) -> &'a AccessTracker {
        #[cfg(loom)]
        {
            &self.shadow.trackers[slot]
        }
        #[cfg(not(loom))]
        {
            let _ = slot;
            static NOOP: AccessTracker = AccessTracker {};
            &NOOP
        }
    }
}

#[cfg(loom)]
mod loom_shadow {
    extern crate std;
    use std::boxed::Box;
    use std::vec::Vec;

    use crate::sync::{AccessTracker, AtomicU64};

    /// Under loom, control words must be loom atomics, which cannot live in raw memory. The
    /// shadow holds one loom atomic per control word of the header, of the control area and of
    /// each result cell's header line; [`super::Region::word`] maps offsets onto it. Trackers:
    /// one per slot, then one per result cell.
    #[derive(Debug)]
    pub struct Shadow {
        pub header: Box<[AtomicU64]>,
        pub control_start: usize,
        pub control: Box<[AtomicU64]>,
        pub results_start: usize,
        pub result_stride: usize,
        pub cells: Box<[AtomicU64]>,
        pub trackers: Box<[AccessTracker]>,
    }

    /// Words of a result cell's header line.
    const CELL_WORDS: usize = 16;

    impl Shadow {
        pub fn new(layout: &crate::layout::Layout) -> Self {
            let words = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect::<Vec<_>>().into_boxed_slice();
            let (slots, cells) = (layout.spec.slot_count as usize, layout.spec.result_cells as usize);
            Shadow {
                header: words(crate::layout::HEADER_USED / 8),
                control_start: layout.control_offset as usize,
                control: words(layout.control_size as usize / 8),
                results_start: layout.results_offset as usize,
                result_stride: layout.result_stride as usize,
                cells: words(cells * CELL_WORDS),
                trackers: (0..slots + cells).map(|_| AccessTracker::default()).collect(),
            }
        }

        pub fn word(&self, off: usize) -> &AtomicU64 {
            if off < self.header.len() * 8 {
                return &self.header[off / 8];
            }
            let rel = off.checked_sub(self.control_start).expect("loom shadow: word before the control area");
            if rel < self.control.len() * 8 {
                return &self.control[rel / 8];
            }
            let rel = off.checked_sub(self.results_start).expect("loom shadow: word in the slot area");
            let (cell, within) = (rel / self.result_stride, rel % self.result_stride);
            assert!(within < CELL_WORDS * 8, "loom shadow: word in a result payload");
            &self.cells[cell * CELL_WORDS + within / 8]
        }
    }
}

/// A zeroed, page-aligned heap allocation usable as a [`Region`]: for tests, benchmarks, Miri,
/// loom and in-process pipelines. Allocation happens once, here; the data path never allocates.
#[cfg(any(feature = "alloc", loom))]
pub struct HeapRegion {
    ptr: NonNull<u8>,
    len: usize,
    #[cfg(loom)]
    shadow: loom_shadow::Shadow,
}

#[cfg(any(feature = "alloc", loom))]
mod heap {
    extern crate alloc;
    use core::ptr::NonNull;

    use super::{HeapRegion, Region};
    use crate::layout::Layout;

    const ALIGN: usize = 4096;

    impl HeapRegion {
        /// A zeroed region of `len` bytes (at least 8), aligned to 4096.
        ///
        /// # Examples
        /// ```
        /// let heap = framebus_core::HeapRegion::zeroed(4096);
        /// assert_eq!(heap.region().len(), 4096);
        /// ```
        ///
        /// # Panics
        /// When the allocation fails or `len` overflows a layout.
        #[cfg(not(loom))]
        pub fn zeroed(len: usize) -> Self {
            HeapRegion { ptr: Self::alloc(len), len }
        }

        /// A zeroed region big enough for `layout`.
        ///
        /// # Examples
        /// ```
        /// use framebus_core::{FrameGeometry, HeapRegion, Layout, PixelFormat, SegmentSpec};
        /// let spec = SegmentSpec::new(FrameGeometry::new(64, 48, PixelFormat::Bgr24), 4);
        /// let layout = Layout::compute(&spec).unwrap();
        /// let heap = HeapRegion::for_layout(&layout);
        /// assert_eq!(heap.region().len() as u64, layout.total_size);
        /// ```
        pub fn for_layout(layout: &Layout) -> Self {
            let len = usize::try_from(layout.total_size).expect("layout larger than the address space");
            HeapRegion {
                ptr: Self::alloc(len),
                len,
                #[cfg(loom)]
                shadow: super::loom_shadow::Shadow::new(layout),
            }
        }

        fn alloc(len: usize) -> NonNull<u8> {
            let l = alloc::alloc::Layout::from_size_align(len.max(8), ALIGN).expect("region size overflows");
            // SAFETY: `l` has non-zero size.
            let p = unsafe { alloc::alloc::alloc_zeroed(l) };
            NonNull::new(p).unwrap_or_else(|| alloc::alloc::handle_alloc_error(l))
        }

        /// The region view of this allocation.
        pub fn region(&self) -> Region<'_> {
            Region {
                base: self.ptr,
                len: self.len,
                #[cfg(loom)]
                shadow: &self.shadow,
                _life: core::marker::PhantomData,
            }
        }
    }

    impl Drop for HeapRegion {
        fn drop(&mut self) {
            let l = alloc::alloc::Layout::from_size_align(self.len.max(8), ALIGN).expect("checked at allocation");
            // SAFETY: allocated in `alloc` with this same layout, freed once.
            unsafe { alloc::alloc::dealloc(self.ptr.as_ptr(), l) }
        }
    }

    // SAFETY: the allocation is owned memory accessed only through `Region`, which is Send + Sync.
    unsafe impl Send for HeapRegion {}
    // SAFETY: as above.
    unsafe impl Sync for HeapRegion {}
}
