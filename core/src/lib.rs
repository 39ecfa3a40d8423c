//! framebus-core: the shared-memory layout and lock-free protocols of framebus.
//!
//! A *segment* is one region of memory shared by one producer and several consumers. This
//! crate lays it out ([`layout`]), moves frames through it ([`segment`]: work queue, broadcast
//! and latest delivery with Block / DropOldest / DropNewest overflow), and provides the
//! building blocks beside it: an SPSC ring ([`spsc`]), a bounded MPMC queue ([`mpmc`]) and a
//! reorder window ([`reorder`]).
//!
//! `#![no_std]`, no allocation on the data path, no system calls: the platform crates map the
//! memory and sleep; this crate only reads and writes it. Under `--cfg loom` every atomic is
//! a loom atomic ([`sync`]).
//!
//! # Examples
//! ```
//! use framebus_core::*;
//! let spec = SegmentSpec::new(FrameGeometry::new(4, 4, PixelFormat::Gray8), 3);
//! let heap = HeapRegion::for_layout(&Layout::compute(&spec).unwrap());
//! let seg = Segment::create(heap.region(), &spec, Creator::default()).unwrap();
//! let mut producer = seg.attach_producer(1).unwrap();
//! let mut worker = seg.register(ConsumerKind::Worker, 2).unwrap();
//! for i in 0..3u8 {
//!     let mut slot = producer.begin().unwrap();
//!     slot.write(0, &[i; 16]);
//!     slot.publish(FrameMeta { payload_len: 16, ..Default::default() });
//! }
//! let frame = worker.claim().unwrap();
//! assert_eq!(frame.seq, 0);
//! worker.release(frame).unwrap();
//! ```
#![no_std]
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod layout;
pub mod mpmc;
pub mod region;
pub mod reorder;
pub mod segment;
pub mod spsc;
pub mod sync;
pub mod vocab;

// Every public type at the root: the endpoints, their errors, the building blocks.
pub use layout::{
    Creator, FrameGeometry, HeaderError, Layout, OverflowPolicy, Pattern, PixelFormat, Plane, Planes, SegmentSpec,
    SpecError,
};
pub use mpmc::Mpmc;
#[cfg(any(feature = "alloc", loom))]
pub use region::HeapRegion;
pub use region::Region;
pub use reorder::{Rejected, Released, ReorderStats, ReorderWindow, SkipReason};
pub use segment::{
    AttachError, BeginError, Census, ClaimError, Consumer, ConsumerKind, CreateError, EntryState, EntryStatus, Frame,
    FrameMeta, Next, PendingSlot, PostError, Posted, Producer, Published, ReadError, Reclaim, ReclaimError, Reclaimed,
    RegisterError, ResultReader, Segment, SlotKind, SlotState, Stats, WriteSlot,
};
pub use spsc::{RingError, SpscConsumer, SpscLayout, SpscProducer};
pub use vocab::{SkipCause, UnknownName, Vocabulary};
