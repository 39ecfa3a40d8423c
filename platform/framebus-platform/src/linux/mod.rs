//! Linux: POSIX shared memory (`/dev/shm`), futex on the shared wake word, liveness from
//! `/proc/PID/stat` (pid plus process start time, so a reused pid is not taken for life).

use std::fs::File;
use std::io;
use std::time::Duration;

use framebus_core::sync::AtomicU64;
use rustix::fs::{fallocate, fchmod, fstat, ftruncate, statvfs, FallocateFlags, Mode};
use rustix::io::Errno;
use rustix::shm;
use rustix::thread::futex;

use crate::{Error, SegmentName};

pub mod dmabuf;

/// Where POSIX shared memory objects live.
pub const SHM_DIR: &str = "/dev/shm";

/// A mapped segment: the descriptor (for fd passing and seals) and the shared mapping.
pub struct Memory {
    file: File,
    map: memmap2::MmapRaw,
    /// The dma-buf exported over `file`'s pages (udmabuf), for accelerators and CPU syncs.
    export: Option<File>,
    /// `file` itself is a dma-buf (a heap allocation, or one received from its creator).
    dmabuf: bool,
}

impl Memory {
    /// Base address of the mapping.
    pub fn ptr(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }
    /// The descriptor of the memory (shm object, memfd or file): what an accelerator runtime
    /// registers to import the segment.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.export.as_ref().unwrap_or(&self.file).as_fd()
    }
    /// The dma-buf whose CPU accesses must be bracketed by `DMA_BUF_IOCTL_SYNC`, if any.
    pub fn sync_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        match (&self.export, self.dmabuf) {
            (Some(e), _) => Some(e.as_fd()),
            (None, true) => Some(self.file.as_fd()),
            (None, false) => None,
        }
    }
    /// Length of the mapping.
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

/// Maps all `len` bytes of `file` shared and read-write.
fn map(file: File, len: u64, label: &str) -> Result<Memory, Error> {
    if len == 0 {
        return Err(Error::Header { name: label.to_string(), error: framebus_core::HeaderError::TooSmall { len: 0 } });
    }
    let n = usize::try_from(len).map_err(|_| Error::Unsupported { what: "segments larger than the address space" })?;
    let map = memmap2::MmapOptions::new().len(n).map_raw(&file).map_err(|source| Error::Io {
        name: label.to_string(),
        op: "map",
        source,
    })?;
    let dmabuf = {
        use std::os::fd::AsFd;
        dmabuf::is_dmabuf(file.as_fd())
    };
    if dmabuf && !futex_usable(map.as_mut_ptr()) {
        return Err(Error::Io {
            name: label.to_string(),
            op: "use",
            source: io::Error::new(
                io::ErrorKind::Unsupported,
                "shared futexes do not work on this dma-buf's mapping (the heap maps it as raw PFNs), so framebus cannot sleep and wake on it: use --backing udmabuf or memfd",
            ),
        });
    }
    Ok(Memory { file, map, export: None, dmabuf })
}

fn io_err(name: &SegmentName, op: &'static str, e: Errno) -> Error {
    match e {
        Errno::NOENT => Error::NotFound { name: name.to_string() },
        Errno::EXIST => Error::AlreadyExists { name: name.to_string() },
        Errno::ACCESS | Errno::PERM => Error::PermissionDenied { name: name.to_string() },
        e => Error::Io { name: name.to_string(), op, source: io::Error::from(e) },
    }
}

fn free_bytes() -> Option<u64> {
    let st = statvfs(SHM_DIR).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Creates `/dev/shm/framebus.NAME` with exactly `mode`, sized `size`, every page reserved.
///
/// Reserving (fallocate) is what turns a too-small `/dev/shm` into an error here instead of a
/// SIGBUS in whichever process first touches an unbacked page mid-frame.
pub fn create(name: &SegmentName, size: u64, mode: u32) -> Result<Memory, Error> {
    if let Some(available) = free_bytes() {
        if available < size {
            return Err(Error::NoSpace { name: name.to_string(), needed: size, available });
        }
    }
    let os = format!("/{}", name.os_name());
    let mode = Mode::from_raw_mode(mode);
    let fd = shm::open(os.as_str(), shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR, mode)
        .map_err(|e| io_err(name, "create", e))?;
    let undo = |e: Error| {
        let _ = shm::unlink(os.as_str());
        e
    };
    // The umask may have removed bits: set exactly what was asked for.
    fchmod(&fd, mode).map_err(|e| undo(io_err(name, "chmod", e)))?;
    ftruncate(&fd, size).map_err(|e| undo(io_err(name, "resize", e)))?;
    match fallocate(&fd, FallocateFlags::empty(), 0, size) {
        Ok(()) => {}
        Err(Errno::NOSPC) => {
            return Err(undo(Error::NoSpace {
                name: name.to_string(),
                needed: size,
                available: free_bytes().unwrap_or(0),
            }))
        }
        Err(e) => return Err(undo(io_err(name, "reserve pages of", e))),
    }
    map(File::from(fd), size, name.as_str()).map_err(undo)
}

/// Opens an existing segment for reading and writing; returns it with its size.
pub fn open(name: &SegmentName) -> Result<Memory, Error> {
    let os = format!("/{}", name.os_name());
    let fd = shm::open(os.as_str(), shm::OFlags::RDWR, Mode::empty()).map_err(|e| io_err(name, "open", e))?;
    let size = fstat(&fd).map_err(|e| io_err(name, "stat", e))?.st_size;
    map(File::from(fd), u64::try_from(size).unwrap_or(0), name.as_str())
}

/// Removes the name (mappings stay valid until unmapped).
pub fn unlink(name: &SegmentName) -> Result<(), Error> {
    shm::unlink(format!("/{}", name.os_name()).as_str()).map_err(|e| io_err(name, "remove", e))
}

/// True when `path` still names the object `mem` maps (same device and inode).
fn names_this(path: &std::path::Path, mem: &Memory) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(path), mem.file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Removes the name only if it still names the object `mem` maps: a creator whose segment was
/// replaced (by `gc` and a new creator) must not delete its successor.
pub fn unlink_if_same(name: &SegmentName, mem: &Memory) {
    if names_this(std::path::Path::new(&format!("{SHM_DIR}/{}", name.os_name())), mem) {
        let _ = unlink(name);
    }
}

/// As [`unlink_if_same`], for a file-backed segment.
pub fn remove_path_if_same(path: &std::path::Path, mem: &Memory) {
    if names_this(path, mem) {
        let _ = std::fs::remove_file(path);
    }
}

/// Names (without prefix) of every framebus object in `/dev/shm`.
pub fn list() -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(SHM_DIR)? {
        let entry = entry?;
        if let Some(n) = entry.file_name().to_str().and_then(|n| n.strip_prefix(crate::name::PREFIX)) {
            names.push(n.to_string());
        }
    }
    names.sort();
    Ok(names)
}

/// The futex word of a 64-bit wake word: its low 32 bits.
fn futex_word(word: &AtomicU64) -> &std::sync::atomic::AtomicU32 {
    let p = word.as_ptr().cast::<u32>();
    #[cfg(target_endian = "big")]
    let p = p.wrapping_add(1);
    // SAFETY: `p` points at 4 aligned bytes inside the live 8-byte word `word` (the low half on
    // this target's endianness), valid for as long as `word` is borrowed. The `AtomicU32` view is
    // only handed to the kernel's futex call; Rust code never accesses the word at 32 bits, so
    // there is no mixed-size atomic access on our side.
    unsafe { &*p.cast::<std::sync::atomic::AtomicU32>() }
}

/// Sleeps while the low 32 bits of `word` equal `expected`, at most `timeout`. Returns false
/// on timeout. Shared (not private) futex: the waker is another process.
pub fn wait(word: &AtomicU64, expected: u32, timeout: Duration) -> bool {
    let ts = rustix::time::Timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    !matches!(futex::wait(futex_word(word), futex::Flags::empty(), expected, Some(&ts)), Err(Errno::TIMEDOUT))
}

/// True when a shared futex can be keyed on the page at `p` (an 8-aligned address inside a
/// live shared mapping): a wait on a value the word does not hold returns EAGAIN at once when
/// it can, EFAULT when the kernel cannot resolve the page (e.g. a `VM_PFNMAP` mapping).
fn futex_usable(p: *mut u8) -> bool {
    // SAFETY: `p` is the 8-aligned base of a live mapping (callers pass one); the AtomicU32 view
    // is only handed to the kernel and read once here.
    let word = unsafe { &*p.cast::<std::sync::atomic::AtomicU32>() };
    let other = word.load(std::sync::atomic::Ordering::Relaxed) ^ 1;
    let zero = rustix::time::Timespec { tv_sec: 0, tv_nsec: 0 };
    !matches!(futex::wait(word, futex::Flags::empty(), other, Some(&zero)), Err(Errno::FAULT))
}

/// Wakes every process sleeping on `word` (`_sleepers`, the announced count, only matters on
/// Windows).
pub fn wake(word: &AtomicU64, _sleepers: u64) {
    let _ = futex::wake(futex_word(word), futex::Flags::empty(), i32::MAX as u32);
}

/// `(pid as /proc shows it, state, start time)` of this process, from `/proc/self/stat`.
fn self_stat() -> Option<(u32, char, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let pid = stat.split_whitespace().next()?.parse().ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    Some((pid, state, fields.nth(18)?.parse().ok()?))
}

/// `(state, start time in clock ticks since boot)` of `pid` from `/proc/PID/stat`, if readable.
fn stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: skip past it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    Some((state, fields.nth(18)?.parse().ok()?))
}

/// Prefix of the liveness lock files in `/dev/shm` (not `framebus.`: they are not segments).
pub const LIVE_PREFIX: &str = "framebus-live.";

/// The liveness lock file of `token`: `/dev/shm/framebus-live.<token as 16 hex digits>`.
pub fn live_path(token: u64) -> String {
    format!("{SHM_DIR}/{LIVE_PREFIX}{token:016x}")
}

/// The descriptor holding this process's liveness lock (-1: none), closed in a forked child
/// (see `forget_lock_in_child`).
static LIVE_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// `pthread_atfork` child handler: the child must not keep its parent's lock alive (a flock
/// belongs to the open file, which a fork shares), so it closes its copy. Async-signal-safe.
extern "C" fn forget_lock_in_child() {
    let fd = LIVE_FD.swap(-1, std::sync::atomic::Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: `fd` is this (child) process's copy of the lock descriptor, which nothing else
        // in the child uses; close(2) is async-signal-safe.
        unsafe { libc::close(fd) };
    }
}

/// This process's liveness file and the pid that made it (a forked child that never made its
/// own must not remove its parent's at its exit).
static LIVE_FILE: std::sync::Mutex<Option<(u32, String)>> = std::sync::Mutex::new(None);

/// `atexit` handler: a process that exits normally removes its liveness file (one killed leaves
/// it, unlocked: the next liveness check of its token, or `framebus gc`, removes it).
extern "C" fn remove_live_file() {
    if let Ok(g) = LIVE_FILE.lock() {
        if let Some((pid, path)) = g.as_ref() {
            if *pid == std::process::id() {
                let _ = rustix::fs::unlink(path.as_str());
            }
        }
    }
}

/// Creates and locks (exclusively, for the life of the process) the liveness file of `token`;
/// `Err` when another live process holds it (the same token in another PID namespace).
fn hold_live_lock(token: u64) -> Result<(), ()> {
    use rustix::fs::{flock, open, FlockOperation, OFlags};
    let path = live_path(token);
    let Ok(fd) = open(path.as_str(), OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC, Mode::from_raw_mode(0o644))
    else {
        return Ok(()); // no /dev/shm to write: liveness falls back to pid and start time
    };
    match flock(&fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {
            use std::os::fd::IntoRawFd;
            let old = LIVE_FD.swap(fd.into_raw_fd(), std::sync::atomic::Ordering::SeqCst);
            if old >= 0 {
                // SAFETY: `old` was our previous lock descriptor (a forked child's new token
                // replaces the inherited one, already closed by the atfork handler).
                unsafe { libc::close(old) };
            }
            *LIVE_FILE.lock().unwrap_or_else(|e| e.into_inner()) = Some((std::process::id(), path));
            static HOOKS: std::sync::Once = std::sync::Once::new();
            HOOKS.call_once(|| {
                // SAFETY: registers a handler that only closes a descriptor (see above), and one
                // that removes our file at a normal exit; neither unwinds.
                unsafe {
                    libc::pthread_atfork(None, None, Some(forget_lock_in_child));
                    libc::atexit(remove_live_file);
                }
            });
            Ok(())
        }
        Err(_) => Err(()),
    }
}

/// This process's liveness token: pid (low 32 bits, as `/proc` shows it) and start time (high
/// 32 bits; 0 when `/proc` cannot tell). Computed once per process (a forked child has another pid). The
/// process also holds an exclusive `flock` on `/dev/shm/framebus-live.TOKEN` for its whole life:
/// the kernel drops it at its death in whatever PID namespace it runs, which is how
/// [`is_alive`] judges a process it cannot see (a container sharing `/dev/shm` but not the PID
/// namespace). Two processes of different namespaces with the same pid and start tick would
/// share a token: the second bumps its start field until its lock file is its own.
pub fn process_token() -> u64 {
    static TOKEN: std::sync::Mutex<Option<(u32, u64)>> = std::sync::Mutex::new(None);
    let pid = std::process::id();
    let mut t = TOKEN.lock().unwrap_or_else(|e| e.into_inner());
    match *t {
        Some((p, token)) if p == pid => token,
        _ => {
            // The pid and start time as `/proc` shows them: in a PID namespace whose `/proc` is
            // the host's, that is our host pid (what the host's checks will look up), not
            // getpid's. Under qemu-user, /proc/self/stat is emulated per thread (state '0', the
            // calling thread's start time): no usable start time, so record none (0 = unknown).
            let (seen, ticks) = match self_stat() {
                Some((seen, state, ticks)) if state.is_ascii_alphabetic() => (seen, ticks),
                _ => (pid, 0),
            };
            let mut token = u64::from(seen) | (ticks & 0xFFFF_FFFF) << 32;
            for bump in 1..=16u64 {
                if hold_live_lock(token).is_ok() {
                    break;
                }
                token = u64::from(seen) | ((ticks + bump) & 0xFFFF_FFFF) << 32;
            }
            *t = Some((pid, token));
            token
        }
    }
}

/// What the liveness lock file of `token` says: `Some(true)` held (alive), `Some(false)` not
/// held (dead; the file is removed), `None` no such file (a peer that keeps none, or already
/// judged dead).
pub fn live_lock_says(token: u64) -> Option<bool> {
    use rustix::fs::{flock, open, FlockOperation, OFlags};
    let path = live_path(token);
    let fd = open(path.as_str(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    match flock(&fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {
            // Nobody holds it: its process is gone. Remove it while we hold it (a file is only
            // ever created by the process whose token names it, which is dead).
            let _ = rustix::fs::unlink(path.as_str());
            Some(false)
        }
        Err(Errno::WOULDBLOCK) => Some(true),
        Err(_) => None,
    }
}

/// False only when the process a token names is certainly gone. First its liveness lock
/// (kept by the kernel in every PID namespace): held is alive, free is dead. Without one (a
/// peer that keeps none), pid and start time: no such pid, a zombie, or a pid now used by a
/// process with another start time is dead; when it cannot tell (no `/proc`, `hidepid`) it says
/// alive: declaring a live process dead would let `reap` take slots it is reading.
pub fn is_alive(token: u64) -> bool {
    let pid = token as u32;
    if token == process_token() {
        return true; // we are, whatever /proc says to this thread
    }
    if let Some(alive) = live_lock_says(token) {
        return alive;
    }
    let Some(p) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else {
        return false;
    };
    // ESRCH: no such process. Success or EPERM (another user's live process): it exists.
    if let Err(Errno::SRCH) = rustix::process::test_kill_process(p) {
        return false;
    }
    match stat(pid) {
        Some(('Z' | 'X', _)) => false,
        Some((_, ticks)) if token >> 32 != 0 => ticks & 0xFFFF_FFFF == token >> 32,
        _ => true,
    }
}

/// Removes the liveness files of dead processes (`framebus gc`); returns how many.
pub fn gc_live_files() -> usize {
    let Ok(dir) = std::fs::read_dir(SHM_DIR) else { return 0 };
    dir.filter_map(Result::ok)
        .filter_map(|e| u64::from_str_radix(e.file_name().to_str()?.strip_prefix(LIVE_PREFIX)?, 16).ok())
        .filter(|t| live_lock_says(*t) == Some(false))
        .count()
}

/// Age of the named object (time since its last modification), if it can be told.
pub fn age(name: &SegmentName) -> Option<Duration> {
    std::fs::metadata(format!("{SHM_DIR}/{}", name.os_name())).ok()?.modified().ok()?.elapsed().ok()
}

/// Monotonic clock in ns, shared by all processes of one boot (leases use it).
pub fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec as u64)
}

/// Reserves every page of `fd` now (see [`create`]); `NoSpace` names the fix.
fn reserve(fd: &impl rustix::fd::AsFd, size: u64, label: &str) -> Result<(), Error> {
    match fallocate(fd, FallocateFlags::empty(), 0, size) {
        Ok(()) => Ok(()),
        Err(Errno::NOSPC) => {
            Err(Error::NoSpace { name: label.to_string(), needed: size, available: free_bytes().unwrap_or(0) })
        }
        Err(e) => Err(Error::Io { name: label.to_string(), op: "reserve pages of", source: io::Error::from(e) }),
    }
}

/// An anonymous memfd of `size` bytes, pages reserved, sealed against shrinking and growing so
/// that no holder of the fd can truncate it under a mapping (no SIGBUS by truncation).
pub fn create_memfd(label: &str, size: u64) -> Result<Memory, Error> {
    use rustix::fs::{fcntl_add_seals, memfd_create, MemfdFlags, SealFlags};
    let err = |op, e: Errno| Error::Io { name: label.to_string(), op, source: io::Error::from(e) };
    let fd = memfd_create(format!("framebus.{label}"), MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .map_err(|e| err("create memfd for", e))?;
    ftruncate(&fd, size).map_err(|e| err("resize", e))?;
    reserve(&fd, size, label)?;
    fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL).map_err(|e| err("seal", e))?;
    map(File::from(fd), size, label)
}

/// Allocates the segment from the dma-buf heap `heap` and maps it.
pub fn create_dmabuf(heap: &str, label: &str, size: u64) -> Result<Memory, Error> {
    let file = dmabuf::heap_alloc(heap, size, label)?;
    map(file, size, label)
}

/// Creates a memfd segment and exports it as a dma-buf through `/dev/udmabuf`.
pub fn create_udmabuf(label: &str, size: u64) -> Result<Memory, Error> {
    let mut mem = create_memfd(label, size)?;
    use std::os::fd::AsFd;
    mem.export = Some(dmabuf::udmabuf_export(mem.file.as_fd(), size, label)?);
    Ok(mem)
}

/// True when the memory is a memfd sealed against shrinking.
pub fn sealed(mem: &Memory) -> bool {
    rustix::fs::fcntl_get_seals(&mem.file).is_ok_and(|s| s.contains(rustix::fs::SealFlags::SHRINK))
}

/// Sends the memory's descriptor over a Unix stream socket (SCM_RIGHTS).
pub fn send_fd(sock: &std::os::unix::net::UnixStream, mem: &Memory) -> io::Result<()> {
    use rustix::fd::AsFd;
    use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    // The memory, then (udmabuf) the dma-buf exported over it, so that the receiver's
    // accelerator registration and CPU syncs use the dma-buf too.
    let fds: Vec<_> = std::iter::once(mem.file.as_fd()).chain(mem.export.as_ref().map(AsFd::as_fd)).collect();
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("ancillary buffer too small"));
    }
    // One byte of payload: some kernels drop ancillary data sent with an empty message.
    sendmsg(sock, &[io::IoSlice::new(b"F")], &mut control, SendFlags::empty())?;
    Ok(())
}

/// Receives one descriptor sent with [`send_fd`] and maps it.
pub fn recv_fd(sock: &std::os::unix::net::UnixStream) -> Result<Memory, Error> {
    let label = "<received>";
    let mut files =
        recv_files(sock).map_err(|source| Error::Io { name: label.into(), op: "receive descriptor of", source })?;
    let export = (files.len() > 1).then(|| files.remove(1));
    let file = files.remove(0);
    let size = file.metadata().map_err(|source| Error::Io { name: label.into(), op: "stat", source })?.len();
    let mut mem = map(file, size, label)?;
    mem.export = export;
    Ok(mem)
}

/// The memory's descriptor and, if sent, the dma-buf exported over it.
fn recv_files(sock: &std::os::unix::net::UnixStream) -> io::Result<Vec<File>> {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    recvmsg(sock, &mut [io::IoSliceMut::new(&mut byte)], &mut control, RecvFlags::CMSG_CLOEXEC)?;
    let mut files = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = msg {
            files.extend(fds.map(File::from));
        }
    }
    if files.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "no file descriptor received (peer sent none)"));
    }
    files.truncate(2);
    Ok(files)
}

/// Creates a segment file at `path` (a tmpfs or hugetlbfs mount, typically) with `mode`.
pub fn create_path(path: &std::path::Path, size: u64, mode: u32) -> Result<Memory, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let label = path.display().to_string();
    let file = std::fs::OpenOptions::new().read(true).write(true).create_new(true).mode(mode).open(path).map_err(
        |e| match e.kind() {
            io::ErrorKind::AlreadyExists => Error::AlreadyExists { name: label.clone() },
            io::ErrorKind::PermissionDenied => Error::PermissionDenied { name: label.clone() },
            _ => Error::Io { name: label.clone(), op: "create", source: e },
        },
    )?;
    let undo = |e: Error| {
        let _ = std::fs::remove_file(path);
        e
    };
    fchmod(&file, Mode::from_raw_mode(mode))
        .map_err(|e| undo(Error::Io { name: label.clone(), op: "chmod", source: e.into() }))?;
    file.set_len(size).map_err(|e| undo(Error::Io { name: label.clone(), op: "resize", source: e }))?;
    reserve(&file, size, &label).map_err(undo)?;
    map(file, size, &label).map_err(undo)
}

/// Opens an existing segment file at `path`; returns it with its size.
pub fn open_path(path: &std::path::Path) -> Result<Memory, Error> {
    let label = path.display().to_string();
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::NotFound { name: label.clone() },
        io::ErrorKind::PermissionDenied => Error::PermissionDenied { name: label.clone() },
        _ => Error::Io { name: label.clone(), op: "open", source: e },
    })?;
    let size = file.metadata().map_err(|e| Error::Io { name: label.clone(), op: "stat", source: e })?.len();
    map(file, size, &label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_passed_by_descriptor_carries_its_exported_dmabuf_along() {
        use std::os::fd::AsRawFd;
        // A memfd stands in for the udmabuf export (no /dev/udmabuf here): what matters is
        // that both descriptors travel and the receiver hands accelerators the export.
        let mut mem = create_memfd("two-fds", 8192).unwrap();
        let stand_in = create_memfd("two-fds-export", 4096).unwrap();
        mem.export = Some(stand_in.file.try_clone().unwrap());
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        send_fd(&a, &mem).unwrap();
        let got = recv_fd(&b).unwrap();
        assert_eq!(got.len(), 8192, "the memory itself is mapped");
        assert!(got.export.is_some(), "the export came along");
        assert_ne!(got.fd().as_raw_fd(), got.file.as_raw_fd(), "accelerators get the export");
        assert!(got.sync_fd().is_some(), "CPU accesses of an exported segment are synced");
        // A plain memfd travels alone and needs no syncs.
        send_fd(&a, &stand_in).unwrap();
        let plain = recv_fd(&b).unwrap();
        assert!(plain.export.is_none() && plain.sync_fd().is_none());
    }

    #[test]
    fn futexes_work_on_shared_memory_mappings() {
        let mem = create_memfd("futex-probe", 4096).unwrap();
        assert!(futex_usable(mem.ptr()));
    }
}
