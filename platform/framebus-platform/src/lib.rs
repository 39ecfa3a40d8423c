//! framebus-platform: framebus segments in real operating-system shared memory.
//!
//! [`SharedSegment::create`] makes a named segment (Linux: `/dev/shm/framebus.NAME`,
//! owner-only, every page reserved up front), [`SharedSegment::open`] maps one by name and
//! validates its whole header and its size; both hand out the core's
//! [`Segment`] with endpoints identified by this process's liveness
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
pub mod owned;
pub mod reap;
pub mod wait;
mod wake;

#[cfg(target_os = "linux")]
#[path = "linux/mod.rs"]
mod os;
#[cfg(windows)]
#[path = "windows/mod.rs"]
mod os;
#[cfg(not(any(target_os = "linux", windows)))]
#[path = "stub.rs"]
mod os;

use std::ptr::NonNull;

pub use error::Error;
pub use framebus_core as core;
use framebus_core::layout::HEADER_SIZE;
use framebus_core::segment::{AttachError, Reclaimed, RegisterError};
use framebus_core::{Consumer, ConsumerKind, Creator, HeaderError, Layout, Producer, Region, Segment, SegmentSpec};
pub use name::{SegmentName, MAX_NAME_LEN, PREFIX};
pub use owned::{HeldFrame, OwnedConsumer, OwnedProducer, OwnedReader, ProduceError, SlotView};
pub use reap::reap;
pub use wait::WaitError;

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

/// How old an unreadable segment must be before `gc` or a new creator treats it as stale
/// (a segment being created is unreadable for a moment).
pub const STALE_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// What the CPU is about to do with a segment's frame memory ([`SharedSegment::cpu_access`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// read it (a consumer)
    Read,
    /// write it (a producer)
    Write,
}

/// Where a segment's memory comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backing {
    /// A named POSIX shared-memory object (`/dev/shm/framebus.NAME`).
    Shm(SegmentName),
    /// An anonymous memfd, shared by passing its descriptor (sealed against resizing).
    Memfd,
    /// A file at a path (a tmpfs or hugetlbfs mount, typically).
    Path(std::path::PathBuf),
    /// A dma-buf allocated from the heap `/dev/dma_heap/<name>`, shared by passing its fd.
    DmaBuf(String),
    /// A memfd also exported as a dma-buf through `/dev/udmabuf`, shared by passing its fd.
    Udmabuf,
}

/// A mapped segment: named, memfd or file-backed.
pub struct SharedSegment {
    /// Borrows `mem` (declared first so it is dropped first; it has no destructor anyway).
    seg: Segment<'static>,
    mem: os::Memory,
    label: String,
    backing: Backing,
    unlink_on_drop: bool,
}

impl std::fmt::Debug for SharedSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSegment").field("backing", &self.backing).field("len", &self.mem.len()).finish()
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
    /// Creates the named segment `name` for `spec`.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::Spec`] (nothing is created), [`Error::AlreadyExists`],
    /// [`Error::NoSpace`] (with the `--shm-size` hint), [`Error::PermissionDenied`], [`Error::Io`].
    pub fn create(name: &str, spec: &SegmentSpec, opts: CreateOptions) -> Result<Self, Error> {
        let name = SegmentName::new(name)?;
        let layout = Layout::compute(spec).map_err(Error::Spec)?;
        let mem = match os::create(&name, layout.total_size, opts.mode) {
            Err(Error::AlreadyExists { .. }) if opts.replace_stale && Self::creator_dead(&name) => {
                os::unlink(&name)?;
                os::create(&name, layout.total_size, opts.mode)?
            }
            r => r?,
        };
        Self::init(name.to_string(), Backing::Shm(name), mem, spec, opts.unlink_on_drop)
    }

    /// Creates an anonymous segment in a memfd (Linux), sealed so that nobody holding the
    /// descriptor can shrink or grow it. Share it with [`SharedSegment::send_fd`]; it disappears
    /// when the last process holding its descriptor or a mapping exits.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for a bad `label`, [`Error::Spec`], [`Error::NoSpace`], [`Error::Io`],
    /// [`Error::Unsupported`] off Linux.
    pub fn create_memfd(label: &str, spec: &SegmentSpec) -> Result<Self, Error> {
        let label = SegmentName::new(label)?.to_string();
        let layout = Layout::compute(spec).map_err(Error::Spec)?;
        let mem = os::create_memfd(&label, layout.total_size)?;
        Self::init(label, Backing::Memfd, mem, spec, false)
    }

    /// Allocates a segment from the dma-buf heap `heap` (`/dev/dma_heap/<heap>`, e.g.
    /// `system`): memory an accelerator imports as it is. Share it with
    /// [`SharedSegment::send_fd`]; bracket CPU access with [`SharedSegment::cpu_access`].
    ///
    /// # Errors
    /// [`Error::DeviceMissing`] naming the heap device when the kernel has none (then use
    /// [`SharedSegment::create_memfd`]), [`Error::InvalidName`], [`Error::Spec`],
    /// [`Error::PermissionDenied`], [`Error::Io`]; [`Error::Unsupported`] off Linux.
    pub fn create_dmabuf(heap: &str, label: &str, spec: &SegmentSpec) -> Result<Self, Error> {
        let label = SegmentName::new(label)?.to_string();
        let layout = Layout::compute(spec).map_err(Error::Spec)?;
        #[cfg(target_os = "linux")]
        let mem = os::create_dmabuf(heap, &label, layout.total_size)?;
        #[cfg(not(target_os = "linux"))]
        let mem: os::Memory = return Err(Error::Unsupported { what: "dma-buf heap segments (Linux only)" });
        Self::init(label, Backing::DmaBuf(heap.to_string()), mem, spec, false)
    }

    /// Creates a memfd segment (as [`SharedSegment::create_memfd`]) and exports it as a
    /// dma-buf through `/dev/udmabuf`, so an accelerator can import the same pages:
    /// [`SharedSegment::fd`] is then the dma-buf.
    ///
    /// # Errors
    /// [`Error::DeviceMissing`] naming `/dev/udmabuf` when the kernel lacks it, and as
    /// [`SharedSegment::create_memfd`].
    pub fn create_udmabuf(label: &str, spec: &SegmentSpec) -> Result<Self, Error> {
        let label = SegmentName::new(label)?.to_string();
        let layout = Layout::compute(spec).map_err(Error::Spec)?;
        #[cfg(target_os = "linux")]
        let mem = os::create_udmabuf(&label, layout.total_size)?;
        #[cfg(not(target_os = "linux"))]
        let mem: os::Memory = return Err(Error::Unsupported { what: "udmabuf segments (Linux only)" });
        Self::init(label, Backing::Udmabuf, mem, spec, false)
    }

    /// Runs `body` — a CPU write (producer) or read (consumer) of frame memory — bracketed by
    /// `DMA_BUF_IOCTL_SYNC` START and END when the segment is a dma-buf (heap, udmabuf, or one
    /// received by fd), so that CPU caches and the device agree; other backings just run it.
    ///
    /// # Errors
    /// [`Error::Io`] when a sync fails (`body` has run; its result is lost).
    pub fn cpu_access<R>(&self, access: Access, body: impl FnOnce() -> R) -> Result<R, Error> {
        #[cfg(target_os = "linux")]
        if let Some(fd) = self.mem.sync_fd() {
            return os::dmabuf::bracket(access, &mut |flags| os::dmabuf::sync(fd, flags), body).map_err(|source| {
                Error::Io { name: self.label.clone(), op: "sync (DMA_BUF_IOCTL_SYNC) the dma-buf of", source }
            });
        }
        let _ = access;
        Ok(body())
    }

    /// Creates a segment in a new file at `path` (e.g. on a hugetlbfs mount), owner-only by
    /// default, pages reserved.
    ///
    /// # Errors
    /// [`Error::Spec`], [`Error::AlreadyExists`], [`Error::NoSpace`], [`Error::PermissionDenied`],
    /// [`Error::Io`], [`Error::Unsupported`] off Linux.
    pub fn create_at(path: &std::path::Path, spec: &SegmentSpec, opts: CreateOptions) -> Result<Self, Error> {
        let layout = Layout::compute(spec).map_err(Error::Spec)?;
        let mem = os::create_path(path, layout.total_size, opts.mode)?;
        Self::init(path.display().to_string(), Backing::Path(path.to_path_buf()), mem, spec, opts.unlink_on_drop)
    }

    /// Writes a new segment into freshly created, correctly sized memory.
    fn init(
        label: String,
        backing: Backing,
        mem: os::Memory,
        spec: &SegmentSpec,
        unlink_on_drop: bool,
    ) -> Result<Self, Error> {
        let remove = |backing: &Backing| match backing {
            Backing::Shm(n) => {
                let _ = os::unlink(n);
            }
            Backing::Path(p) => {
                let _ = std::fs::remove_file(p);
            }
            Backing::Memfd | Backing::DmaBuf(_) | Backing::Udmabuf => {}
        };
        let creator = Creator { id: os::process_token(), created_ns: os::now_ns() };
        // SAFETY: `mem` is a live shared mapping of `mem.len()` bytes, page-aligned (so
        // 8-aligned), that lives as long as the returned value; no Rust reference to its bytes
        // is formed.
        let region = unsafe { Region::from_raw(NonNull::new(mem.ptr()).expect("mapping is non-null"), mem.len()) };
        let seg = Segment::create(region, spec, creator).map_err(|e| {
            remove(&backing);
            match e {
                framebus_core::segment::CreateError::Spec(s) => Error::Spec(s),
                framebus_core::segment::CreateError::RegionSize { .. } => {
                    Error::Io { name: label.clone(), op: "map", source: std::io::Error::other(e.to_string()) }
                }
            }
        })?;
        // SAFETY: `seg` borrows the mapping owned by the returned value, whose address never
        // changes; `segment()` hands it out only for the lifetime of `&self`.
        let seg: Segment<'static> = unsafe { std::mem::transmute::<Segment<'_>, Segment<'static>>(seg) };
        Ok(SharedSegment { seg, mem, label, backing, unlink_on_drop })
    }

    /// Opens the existing named segment `name`, validating its header and size.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::NotFound`], [`Error::PermissionDenied`],
    /// [`Error::Header`] (truncated, garbage, other version, …), [`Error::Io`].
    pub fn open(name: &str) -> Result<Self, Error> {
        let name = SegmentName::new(name)?;
        let mem = os::open(&name)?;
        Self::attach(name.to_string(), Backing::Shm(name), mem)
    }

    /// Opens the segment file at `path`, validating its header and size.
    ///
    /// # Errors
    /// As [`SharedSegment::open`].
    pub fn open_at(path: &std::path::Path) -> Result<Self, Error> {
        let mem = os::open_path(path)?;
        Self::attach(path.display().to_string(), Backing::Path(path.to_path_buf()), mem)
    }

    /// Validates an existing segment in mapped memory.
    fn attach(label: String, backing: Backing, mem: os::Memory) -> Result<Self, Error> {
        if (mem.len() as u64) < HEADER_SIZE {
            return Err(Error::Header { name: label, error: HeaderError::TooSmall { len: mem.len() as u64 } });
        }
        // SAFETY: as in `init`: a live shared mapping owned by the result.
        let region = unsafe { Region::from_raw(NonNull::new(mem.ptr()).expect("mapping is non-null"), mem.len()) };
        let seg = Segment::open(region).map_err(|error| Error::Header { name: label.clone(), error })?;
        // SAFETY: as in `init`.
        let seg: Segment<'static> = unsafe { std::mem::transmute::<Segment<'_>, Segment<'static>>(seg) };
        Ok(SharedSegment { seg, mem, label, backing, unlink_on_drop: false })
    }

    #[cfg(target_os = "linux")]
    /// Sends this segment's descriptor to the process at the other end of `sock` (SCM_RIGHTS),
    /// which maps it with [`SharedSegment::receive_fd`]. Any backing can be sent this way.
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::Unsupported`] off Linux.
    pub fn send_fd(&self, sock: &std::os::unix::net::UnixStream) -> Result<(), Error> {
        os::send_fd(sock, &self.mem).map_err(|source| Error::Io {
            name: self.label.clone(),
            op: "send descriptor of",
            source,
        })
    }

    #[cfg(target_os = "linux")]
    /// Receives a segment descriptor sent with [`SharedSegment::send_fd`] and maps it,
    /// validating header and size as [`SharedSegment::open`] does.
    ///
    /// # Errors
    /// As [`SharedSegment::open`], plus [`Error::Io`] when no descriptor arrives.
    pub fn receive_fd(sock: &std::os::unix::net::UnixStream) -> Result<Self, Error> {
        let mem = os::recv_fd(sock)?;
        Self::attach("<received>".into(), Backing::Memfd, mem)
    }

    #[cfg(target_os = "linux")]
    /// The descriptor of the segment's memory (the shm object, memfd or file), for runtimes
    /// that import buffers by `(fd, offset)`: slot `k` is at [`Layout::slot_offset`]`(k)` from
    /// its start, and the whole mapping is [`Layout::total_size`] bytes. Valid while `self` is.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.mem.fd()
    }

    /// True when the segment's memory cannot be shrunk by anyone (a sealed memfd): then no peer
    /// can turn a mapping into SIGBUS by truncating it.
    pub fn sealed(&self) -> bool {
        os::sealed(&self.mem)
    }

    fn creator_dead(name: &SegmentName) -> bool {
        match Self::open(name.as_str()) {
            Ok(s) => !os::is_alive(s.creator().id),
            // An unreadable header is stale only once it is old: a segment being created has
            // no magic yet for a moment, and must not be removed under its creator.
            Err(Error::Header { .. }) => os::age(name).is_some_and(|a| a > STALE_GRACE),
            Err(_) => false,
        }
    }

    /// The core segment (layout, endpoints, counters).
    pub fn segment(&self) -> Segment<'_> {
        self.seg
    }

    /// The segment's name, label or path (for messages).
    pub fn name(&self) -> &str {
        &self.label
    }

    /// Where the memory comes from.
    pub fn backing(&self) -> &Backing {
        &self.backing
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

    /// Attaches this process as the segment's ordered results reader, taking over from a dead
    /// one (it goes on from the shared read head).
    ///
    /// # Errors
    /// [`AttachError::ReaderBusy`] when a live reader is attached; [`AttachError::NoResults`].
    pub fn attach_reader(&self) -> Result<framebus_core::ResultReader<'_>, AttachError> {
        let me = os::process_token();
        match self.seg.attach_reader(me, 0) {
            Err(AttachError::ReaderBusy { owner }) if owner != me && !os::is_alive(owner) => {
                self.seg.attach_reader(me, owner)
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
        let me = os::process_token();
        match self.seg.register_with(kind, me, os::is_alive) {
            Err(RegisterError::TableFull { .. } | RegisterError::TooManyProcesses { .. }) => {
                self.reap();
                self.seg.register_with(kind, me, os::is_alive)
            }
            r => r,
        }
    }

    /// Reclaims every consumer whose process is dead (pid gone, or reused by another process),
    /// including entries a dead reaper left half-reclaimed, and wakes a producer sleeping for
    /// space when that freed anything. Returns `(entry, what was reclaimed)` for each.
    pub fn reap(&self) -> Vec<(u32, Reclaimed)> {
        reap(&self.seg)
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
                let creator_alive = match &header {
                    Ok((_, c)) => os::is_alive(c.id),
                    // Unreadable: stale only once older than the grace period (see `creator_dead`).
                    Err(_) => SegmentName::new(&name).ok().and_then(|n| os::age(&n)).is_none_or(|a| a <= STALE_GRACE),
                };
                SegmentInfo { name, header, creator_alive }
            })
            .collect())
    }

    /// Removes every segment whose creator is dead, or whose header has been unreadable for
    /// longer than [`STALE_GRACE`], and (Linux) the liveness files of dead processes; returns
    /// the segments' names.
    ///
    /// # Errors
    /// [`Error::Io`] when the namespace cannot be listed.
    pub fn gc() -> Result<Vec<String>, Error> {
        // The liveness lock files of processes that died without removing theirs (SIGKILL).
        #[cfg(target_os = "linux")]
        os::gc_live_files();
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
            // Only if the name still refers to our object: after `gc` and a new creator, it names
            // a successor that must survive us.
            match &self.backing {
                Backing::Shm(name) => os::unlink_if_same(name, &self.mem),
                Backing::Path(path) => os::remove_path_if_same(path, &self.mem),
                Backing::Memfd | Backing::DmaBuf(_) | Backing::Udmabuf => {}
            }
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
    os::wake(word, u64::MAX)
}

/// The README's example, compiled and run as a doctest so that it cannot rot.
#[cfg(all(doctest, target_os = "linux"))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
