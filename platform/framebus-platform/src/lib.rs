//! framebus-platform: framebus segments in real operating-system shared memory.
//!
//! [`SharedSegment::create`] makes a named segment (Linux: `/dev/shm/framebus.NAME`,
//! owner-only, every page reserved up front), [`SharedSegment::open`] maps one by name and
//! validates its whole header and its size; both hand out the core's
//! [`Segment`](framebus_core::Segment) with endpoints identified by this process's liveness
//! token (pid + start time). [`wait`] sleeps and wakes across processes; [`SharedSegment::reap`]
//! reclaims the slots of consumers whose process died.
//!
//! # When does a segment disappear?
//! On Linux the name lives in `/dev/shm` until it is removed: by the creator's
//! `SharedSegment` when it is dropped (the default, [`CreateOptions::unlink_on_drop`]), by
//! [`SharedSegment::remove`], or by `framebus gc` once the creator is dead. Mappings already
//! open stay valid after the name is removed.
//!
//! # Examples
//! ```
//! use std::time::Duration;
//! use framebus_core::{ConsumerKind, FrameGeometry, PixelFormat, SegmentSpec};
//! use framebus_platform::{wait, CreateOptions, SharedSegment};
//!
//! let name = format!("doc-{}", std::process::id());
//! let spec = SegmentSpec::new(FrameGeometry::new(64, 48, PixelFormat::Gray8), 4);
//! let created = SharedSegment::create(&name, &spec, CreateOptions::default())?;
//! let opened = SharedSegment::open(&name)?;          // e.g. in the worker process
//! let mut producer = created.attach_producer()?;
//! let mut worker = opened.register(ConsumerKind::Worker)?;
//! let seg = created.segment();
//! let mut slot = producer.begin()?;
//! slot.write(0, &[42; 64 * 48]);
//! wait::publish(slot, Default::default(), &seg);
//! let frame = wait::claim(&mut worker, Duration::from_secs(1))?;
//! assert_eq!(frame.seq, 0);
//! wait::release(&mut worker, frame)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod error;
mod name;
pub mod wait;

#[cfg(target_os = "linux")]
#[path = "linux/mod.rs"]
mod os;
#[cfg(not(target_os = "linux"))]
#[path = "stub.rs"]
mod os;

use std::fs::File;
use std::ptr::NonNull;

pub use error::Error;
pub use framebus_core as core;
use framebus_core::layout::HEADER_SIZE;
use framebus_core::segment::{AttachError, Reclaimed, RegisterError};
use framebus_core::{Consumer, ConsumerKind, Creator, HeaderError, Layout, Producer, Region, Segment, SegmentSpec};
use memmap2::{MmapOptions, MmapRaw};
pub use name::{SegmentName, MAX_NAME_LEN, PREFIX};

/// How to create a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateOptions {
    /// Permission bits of the OS object (default `0o600`: owner only).
    pub mode: u32,
    /// Remove the name when the creating `SharedSegment` is dropped (default true).
    pub unlink_on_drop: bool,
    /// Replace an existing segment of the same name whose creator is dead (default true).
    pub replace_stale: bool,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions { mode: 0o600, unlink_on_drop: true, replace_stale: true }
    }
}

/// A named, mapped segment.
pub struct SharedSegment {
    /// Borrows `map` (declared first so it is dropped first; it has no destructor anyway).
    seg: Segment<'static>,
    map: MmapRaw,
    _file: File,
    name: SegmentName,
    unlink_on_drop: bool,
}

impl std::fmt::Debug for SharedSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSegment").field("name", &self.name).field("len", &self.map.len()).finish()
    }
}

/// A segment found by [`SharedSegment::list`].
#[derive(Debug)]
pub struct SegmentInfo {
    /// Its name.
    pub name: String,
    /// Its layout and creator, or why it could not be read.
    pub header: Result<(Layout, Creator), Error>,
    /// Whether the creating process is still running.
    pub creator_alive: bool,
}

impl SharedSegment {
    /// Creates the segment `name` for `spec`.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::Spec`] (nothing is created), [`Error::AlreadyExists`],
    /// [`Error::NoSpace`] (with the `--shm-size` hint), [`Error::PermissionDenied`], [`Error::Io`].
    pub fn create(name: &str, spec: &SegmentSpec, opts: CreateOptions) -> Result<Self, Error> {
        let name = SegmentName::new(name)?;
        let layout = Layout::compute(spec).map_err(Error::Spec)?;
        let file = match os::create(&name, layout.total_size, opts.mode) {
            Err(Error::AlreadyExists { .. }) if opts.replace_stale && Self::creator_dead(&name) => {
                os::unlink(&name)?;
                os::create(&name, layout.total_size, opts.mode)?
            }
            r => r?,
        };
        let map = Self::map(&name, &file, layout.total_size).inspect_err(|_| {
            let _ = os::unlink(&name);
        })?;
        let creator = Creator { id: os::process_token(), created_ns: os::now_ns() };
        // SAFETY: `map` is a live shared mapping of exactly `total_size` bytes, page-aligned (so
        // 8-aligned), that lives as long as `self`; no Rust reference to its bytes is formed.
        let region = unsafe { Region::from_raw(NonNull::new(map.as_mut_ptr()).expect("mmap is non-null"), map.len()) };
        let seg = Segment::create(region, spec, creator).map_err(|e| match e {
            framebus_core::segment::CreateError::Spec(s) => Error::Spec(s),
            framebus_core::segment::CreateError::RegionSize { .. } => {
                Error::Io { name: name.to_string(), op: "map", source: std::io::Error::other(e.to_string()) }
            }
        })?;
        // SAFETY: `seg` borrows the mapping owned by the returned value, whose address never
        // changes; `segment()` hands it out only for the lifetime of `&self`.
        let seg: Segment<'static> = unsafe { std::mem::transmute::<Segment<'_>, Segment<'static>>(seg) };
        Ok(SharedSegment { seg, map, _file: file, name, unlink_on_drop: opts.unlink_on_drop })
    }

    /// Opens the existing segment `name`, validating its header and size.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::NotFound`], [`Error::PermissionDenied`],
    /// [`Error::Header`] (truncated, garbage, other version, …), [`Error::Io`].
    pub fn open(name: &str) -> Result<Self, Error> {
        let name = SegmentName::new(name)?;
        let (file, size) = os::open(&name)?;
        if size < HEADER_SIZE {
            return Err(Error::Header { name: name.to_string(), error: HeaderError::TooSmall { len: size } });
        }
        let map = Self::map(&name, &file, size)?;
        // SAFETY: as in `create`: a live shared mapping of `size` bytes owned by the result.
        let region = unsafe { Region::from_raw(NonNull::new(map.as_mut_ptr()).expect("mmap is non-null"), map.len()) };
        let seg = Segment::open(region).map_err(|error| Error::Header { name: name.to_string(), error })?;
        // SAFETY: as in `create`.
        let seg: Segment<'static> = unsafe { std::mem::transmute::<Segment<'_>, Segment<'static>>(seg) };
        Ok(SharedSegment { seg, map, _file: file, name, unlink_on_drop: false })
    }

    fn map(name: &SegmentName, file: &File, len: u64) -> Result<MmapRaw, Error> {
        let len =
            usize::try_from(len).map_err(|_| Error::Unsupported { what: "segments larger than the address space" })?;
        MmapOptions::new().len(len).map_raw(file).map_err(|source| Error::Io {
            name: name.to_string(),
            op: "map",
            source,
        })
    }

    fn creator_dead(name: &SegmentName) -> bool {
        match Self::open(name.as_str()) {
            Ok(s) => !os::is_alive(s.creator().id),
            // Garbage under our prefix is stale by definition.
            Err(Error::Header { .. }) => true,
            Err(_) => false,
        }
    }

    /// The core segment (layout, endpoints, counters).
    pub fn segment(&self) -> Segment<'_> {
        self.seg
    }

    /// The segment's name.
    pub fn name(&self) -> &SegmentName {
        &self.name
    }

    /// Who created the segment (from its validated header).
    pub fn creator(&self) -> Creator {
        Segment::read_header(self.seg.region()).map(|(_, c)| c).unwrap_or_default()
    }

    /// Attaches this process as the producer. If the registered producer's process is dead,
    /// takes over from it (the epoch moves; consumers see the restart).
    ///
    /// # Errors
    /// [`AttachError::Busy`] when a live producer is attached.
    pub fn attach_producer(&self) -> Result<Producer<'_>, AttachError> {
        let me = os::process_token();
        match self.seg.attach_producer(me) {
            Err(AttachError::Busy { owner }) if owner != me && !os::is_alive(owner) => {
                self.seg.take_over_producer(me, owner)
            }
            r => r,
        }
    }

    /// Registers this process as a consumer of `kind`. When the table is full, dead consumers
    /// are reaped first.
    ///
    /// # Errors
    /// As [`Segment::register`].
    pub fn register(&self, kind: ConsumerKind) -> Result<Consumer<'_>, RegisterError> {
        match self.seg.register(kind, os::process_token()) {
            Err(RegisterError::TableFull { .. }) => {
                self.reap();
                self.seg.register(kind, os::process_token())
            }
            r => r,
        }
    }

    /// Reclaims every consumer whose process is dead (pid gone, or reused by another process),
    /// including entries a dead reaper left half-reclaimed, and wakes a producer sleeping for
    /// space when that freed anything. Returns `(entry, what was reclaimed)` for each.
    pub fn reap(&self) -> Vec<(u32, Reclaimed)> {
        let mut out = Vec::new();
        for idx in 0..self.seg.layout().spec.max_consumers {
            let st = self.seg.entry_state(idx);
            if st.status == 0 {
                continue;
            }
            let (owner, _) = self.seg.entry_owner(idx);
            if os::is_alive(owner) {
                continue;
            }
            // The process is dead: it can never resume, so forcing is sound.
            if let Ok(r) = self.seg.reclaim(idx, st.gen, true) {
                if r.wake {
                    wait::wake_space(&self.seg);
                }
                out.push((idx, r));
            }
        }
        out
    }

    /// Removes the segment `name` from the namespace (open mappings stay valid).
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::NotFound`], [`Error::PermissionDenied`], [`Error::Io`].
    pub fn remove(name: &str) -> Result<(), Error> {
        os::unlink(&SegmentName::new(name)?)
    }

    /// Every framebus segment on this machine, with its header (or why it is unreadable) and
    /// whether its creator still runs.
    ///
    /// # Errors
    /// [`Error::Io`] when the namespace cannot be listed.
    pub fn list() -> Result<Vec<SegmentInfo>, Error> {
        let names = os::list().map_err(|source| Error::Io { name: "*".into(), op: "list", source })?;
        Ok(names
            .into_iter()
            .map(|name| {
                let header = Self::open(&name).and_then(|s| {
                    Segment::read_header(s.seg.region()).map_err(|error| Error::Header { name: name.clone(), error })
                });
                let creator_alive = header.as_ref().is_ok_and(|(_, c)| os::is_alive(c.id));
                SegmentInfo { name, header, creator_alive }
            })
            .collect())
    }

    /// Removes every segment whose creator is dead or whose header is unreadable; returns
    /// their names.
    ///
    /// # Errors
    /// [`Error::Io`] when the namespace cannot be listed.
    pub fn gc() -> Result<Vec<String>, Error> {
        let mut removed = Vec::new();
        for info in Self::list()? {
            if !info.creator_alive && Self::remove(&info.name).is_ok() {
                removed.push(info.name);
            }
        }
        Ok(removed)
    }
}

impl Drop for SharedSegment {
    fn drop(&mut self) {
        if self.unlink_on_drop {
            let _ = os::unlink(&self.name);
        }
    }
}

/// This process's liveness token (pid and start time on Linux).
pub fn process_token() -> u64 {
    os::process_token()
}

/// True when the process named by `token` is running.
pub fn is_alive(token: u64) -> bool {
    os::is_alive(token)
}

/// Monotonic time in ns, comparable across the processes of one machine.
pub fn now_ns() -> u64 {
    os::now_ns()
}

/// Sleeps while the low 32 bits of `word` (in shared memory) equal `expected`, at most
/// `timeout`; returns false on timeout. A shared futex on Linux. Used by [`wait`]; public for
/// benchmarks and for other wait protocols on segment memory.
pub fn futex_wait(word: &framebus_core::sync::AtomicU64, expected: u32, timeout: std::time::Duration) -> bool {
    os::wait(word, expected, timeout)
}

/// Wakes every process sleeping in [`futex_wait`] on `word`.
pub fn futex_wake(word: &framebus_core::sync::AtomicU64) {
    os::wake(word)
}
