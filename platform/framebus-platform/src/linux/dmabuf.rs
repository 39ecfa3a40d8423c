//! dma-buf backings: memory an accelerator can import as it is.
//!
//! - dma-buf heaps (`/dev/dma_heap/<heap>`, Linux ≥ 5.6): `DMA_HEAP_IOCTL_ALLOC` returns a
//!   dma-buf fd, which is mapped like any file and passed to other processes by SCM_RIGHTS.
//! - udmabuf (`/dev/udmabuf`, Linux ≥ 4.20): `UDMABUF_CREATE` turns a range of a memfd sealed
//!   with `F_SEAL_SHRINK` (and *not* `F_SEAL_WRITE`) into a dma-buf over the same pages, so an
//!   ordinary memfd segment can also be handed to an accelerator.
//! - CPU access to a dma-buf is bracketed by `DMA_BUF_IOCTL_SYNC` (`START` before, `END` after,
//!   with `READ` and/or `WRITE`), so that caches are made coherent with the device.
//!
//! The structures and request numbers are the kernel UAPI's (`linux/dma-heap.h`,
//! `linux/udmabuf.h`, `linux/dma-buf.h`); the tests pin their sizes and encoded values.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

use rustix::ioctl::{ioctl, opcode, Opcode, Setter, Updater};

pub use crate::Access;
use crate::Error;

/// `struct dma_heap_allocation_data`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DmaHeapAllocationData {
    /// bytes to allocate
    pub len: u64,
    /// out: the dma-buf fd
    pub fd: u32,
    /// flags of the new fd (`O_RDWR | O_CLOEXEC`)
    pub fd_flags: u32,
    /// heap-specific flags (none defined)
    pub heap_flags: u64,
}

/// `struct udmabuf_create`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct UdmabufCreate {
    /// the memfd
    pub memfd: u32,
    /// `UDMABUF_FLAGS_CLOEXEC`
    pub flags: u32,
    /// page-aligned offset into the memfd
    pub offset: u64,
    /// page-aligned size
    pub size: u64,
}

/// `struct dma_buf_sync`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DmaBufSync {
    /// `DMA_BUF_SYNC_*`
    pub flags: u64,
}

/// `DMA_HEAP_IOCTL_ALLOC` = `_IOWR('H', 0x0, struct dma_heap_allocation_data)`.
pub const DMA_HEAP_IOCTL_ALLOC: Opcode = opcode::read_write::<DmaHeapAllocationData>(b'H', 0);
/// `UDMABUF_CREATE` = `_IOW('u', 0x42, struct udmabuf_create)`.
pub const UDMABUF_CREATE: Opcode = opcode::write::<UdmabufCreate>(b'u', 0x42);
/// `DMA_BUF_IOCTL_SYNC` = `_IOW('b', 0, struct dma_buf_sync)`.
pub const DMA_BUF_IOCTL_SYNC: Opcode = opcode::write::<DmaBufSync>(b'b', 0);

const SYNC_READ: u64 = 1;
const SYNC_WRITE: u64 = 2;
const SYNC_START: u64 = 0;
const SYNC_END: u64 = 4;
const UDMABUF_FLAGS_CLOEXEC: u32 = 1;
/// `DMA_BUF_MAGIC`: the file-system magic of dma-buf fds (`fstatfs`).
const DMA_BUF_MAGIC: i64 = 0x444d_4142;

/// The `DMA_BUF_IOCTL_SYNC` flags that open (`start`) or close a CPU access.
pub fn sync_flags(access: Access, start: bool) -> u64 {
    let dir = match access {
        Access::Read => SYNC_READ,
        Access::Write => SYNC_WRITE,
    };
    dir | if start { SYNC_START } else { SYNC_END }
}

/// Runs `body` between the START and the END sync `issue` is asked to perform; END is issued
/// even when START failed (it is harmless) but the error of START is returned, after `body`.
pub fn bracket<R>(
    access: Access,
    issue: &mut dyn FnMut(u64) -> io::Result<()>,
    body: impl FnOnce() -> R,
) -> io::Result<R> {
    let started = issue(sync_flags(access, true));
    let r = body();
    let ended = issue(sync_flags(access, false));
    started.and(ended).map(|()| r)
}

/// Issues one `DMA_BUF_IOCTL_SYNC` on `fd`.
pub fn sync(fd: BorrowedFd<'_>, flags: u64) -> io::Result<()> {
    // SAFETY: DMA_BUF_IOCTL_SYNC takes a pointer to a `struct dma_buf_sync`, which
    // `DmaBufSync` is (repr(C), one u64); the kernel only reads it.
    unsafe { ioctl(fd, Setter::<DMA_BUF_IOCTL_SYNC, DmaBufSync>::new(DmaBufSync { flags })) }?;
    Ok(())
}

/// True when `fd` is a dma-buf (its file system is dma-buf's).
#[allow(clippy::unnecessary_cast)] // `f_type`'s type differs between targets
pub fn is_dmabuf(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fstatfs(fd).is_ok_and(|s| s.f_type as i64 == DMA_BUF_MAGIC)
}

fn missing(device: &str, what: &'static str, fix: &'static str) -> Error {
    Error::DeviceMissing { device: device.to_string(), what, fix }
}

/// Allocates `len` bytes from the dma-buf heap `heap`; the dma-buf as a `File`.
///
/// # Errors
/// [`Error::DeviceMissing`] when `/dev/dma_heap/<heap>` does not exist, [`Error::PermissionDenied`],
/// [`Error::Io`].
pub fn heap_alloc(heap: &str, len: u64, label: &str) -> Result<File, Error> {
    let dev = format!("/dev/dma_heap/{heap}");
    let heap_fd = match std::fs::OpenOptions::new().read(true).write(true).open(&dev) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(missing(
                &dev,
                "dma-buf heaps",
                "the kernel needs CONFIG_DMABUF_HEAPS and CONFIG_DMABUF_HEAPS_SYSTEM (Linux >= 5.6); on Android/Snapdragon use the heap your vendor names (e.g. qcom,system); or use --backing memfd",
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Err(Error::PermissionDenied { name: dev }),
        Err(source) => return Err(Error::Io { name: dev, op: "open", source }),
    };
    let mut data = DmaHeapAllocationData {
        len,
        fd: 0,
        fd_flags: (rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC).bits(),
        heap_flags: 0,
    };
    // SAFETY: DMA_HEAP_IOCTL_ALLOC reads and writes a `struct dma_heap_allocation_data`, which
    // `DmaHeapAllocationData` is (repr(C), same fields and order).
    unsafe { ioctl(&heap_fd, Updater::<DMA_HEAP_IOCTL_ALLOC, DmaHeapAllocationData>::new(&mut data)) }.map_err(
        |e| Error::Io { name: label.to_string(), op: "allocate from the dma-buf heap for", source: e.into() },
    )?;
    // SAFETY: on success the kernel returned a new fd that nobody else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(data.fd as i32) }))
}

/// Checks that `memfd` is sealed as udmabuf requires: `F_SEAL_SHRINK` set (the pages cannot
/// go away under the device), `F_SEAL_WRITE` not set (the CPU must still write frames).
///
/// # Errors
/// [`Error::Io`] naming the seal that is wrong.
pub fn check_udmabuf_seals(memfd: BorrowedFd<'_>, label: &str) -> Result<(), Error> {
    use rustix::fs::SealFlags;
    let seals = rustix::fs::fcntl_get_seals(memfd).map_err(|e| Error::Io {
        name: label.to_string(),
        op: "read the seals of",
        source: e.into(),
    })?;
    let wrong = if !seals.contains(SealFlags::SHRINK) {
        Some("it lacks F_SEAL_SHRINK (udmabuf needs the pages to stay)")
    } else if seals.contains(SealFlags::WRITE) {
        Some("it has F_SEAL_WRITE (the producer could no longer write frames)")
    } else {
        None
    };
    match wrong {
        None => Ok(()),
        Some(why) => Err(Error::Io {
            name: label.to_string(),
            op: "export as udmabuf",
            source: io::Error::new(io::ErrorKind::InvalidInput, format!("the memfd is sealed wrongly: {why}")),
        }),
    }
}

/// Exports `len` bytes of the sealed `memfd` as a dma-buf through `/dev/udmabuf`.
///
/// # Errors
/// Wrong seals ([`check_udmabuf_seals`]); [`Error::DeviceMissing`] without `/dev/udmabuf`;
/// [`Error::Io`].
pub fn udmabuf_export(memfd: BorrowedFd<'_>, len: u64, label: &str) -> Result<File, Error> {
    use std::os::fd::AsRawFd;
    check_udmabuf_seals(memfd, label)?;
    let dev = "/dev/udmabuf";
    let ctl =
        match std::fs::OpenOptions::new().read(true).write(true).open(dev) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing(
                dev,
                "udmabuf",
                "the kernel needs CONFIG_UDMABUF (Linux >= 4.20) and access to /dev/udmabuf; or use --backing memfd",
            )),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(Error::PermissionDenied { name: dev.into() })
            }
            Err(source) => return Err(Error::Io { name: dev.into(), op: "open", source }),
        };
    let arg = UdmabufCreate { memfd: memfd.as_raw_fd() as u32, flags: UDMABUF_FLAGS_CLOEXEC, offset: 0, size: len };
    // SAFETY: UDMABUF_CREATE reads a `struct udmabuf_create` (repr(C) twin) and returns a new
    // dma-buf fd as the ioctl's result.
    let fd = unsafe { rustix::ioctl::ioctl(ctl.as_fd(), UdmabufIoctl(arg)) }.map_err(|e| {
        let hint = if e == rustix::io::Errno::INVAL {
            " (udmabuf refuses buffers above its size_limit_mb module parameter, 64 MiB by default: use fewer or smaller slots, or raise it)"
        } else {
            ""
        };
        Error::Io { name: label.to_string(), op: "create a udmabuf for", source: io::Error::other(format!("{e}{hint}")) }
    })?;
    Ok(File::from(fd))
}

/// UDMABUF_CREATE returns the new fd as the ioctl's return value, which rustix's `Setter`
/// discards: this pattern keeps it.
struct UdmabufIoctl(UdmabufCreate);

// SAFETY: the opcode is UDMABUF_CREATE, the argument a pointer to its `struct udmabuf_create`
// (read only by the kernel), and a non-negative result is a new fd this call owns.
unsafe impl rustix::ioctl::Ioctl for UdmabufIoctl {
    type Output = OwnedFd;
    const IS_MUTATING: bool = false;
    fn opcode(&self) -> Opcode {
        UDMABUF_CREATE
    }
    fn as_ptr(&mut self) -> *mut std::ffi::c_void {
        (&mut self.0 as *mut UdmabufCreate).cast()
    }
    unsafe fn output_from_ptr(
        out: rustix::ioctl::IoctlOutput,
        _: *mut std::ffi::c_void,
    ) -> rustix::io::Result<OwnedFd> {
        // SAFETY: a successful UDMABUF_CREATE returns a fresh fd.
        Ok(unsafe { OwnedFd::from_raw_fd(out) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uapi_structures_and_request_numbers_match_the_kernel_headers() {
        assert_eq!(std::mem::size_of::<DmaHeapAllocationData>(), 24);
        assert_eq!(std::mem::size_of::<UdmabufCreate>(), 24);
        assert_eq!(std::mem::size_of::<DmaBufSync>(), 8);
        // The values the C macros expand to (x86-64 and aarch64 share the generic encoding).
        assert_eq!(DMA_HEAP_IOCTL_ALLOC as u64, 0xc018_4800);
        assert_eq!(UDMABUF_CREATE as u64, 0x4018_7542);
        assert_eq!(DMA_BUF_IOCTL_SYNC as u64, 0x4008_6200);
    }

    #[test]
    fn cpu_access_is_bracketed_start_then_end_around_the_body() {
        let mut log = Vec::new();
        let r = bracket(
            Access::Write,
            &mut |f| {
                log.push(f);
                Ok(())
            },
            || 42,
        );
        assert_eq!(r.unwrap(), 42);
        assert_eq!(log, [SYNC_START | SYNC_WRITE, SYNC_END | SYNC_WRITE]);
        let mut log = Vec::new();
        let mut body_ran_between = false;
        let r = bracket(
            Access::Read,
            &mut |f| {
                log.push(f);
                if f & SYNC_END == 0 {
                    Err(io::Error::other("start failed"))
                } else {
                    Ok(())
                }
            },
            || body_ran_between = true,
        );
        assert!(r.is_err(), "a failed START is reported");
        assert!(body_ran_between);
        assert_eq!(log, [SYNC_START | SYNC_READ, SYNC_END | SYNC_READ], "END is issued even so");
    }

    #[test]
    fn udmabuf_wants_shrink_sealed_writable_memfds() {
        use rustix::fs::{fcntl_add_seals, memfd_create, MemfdFlags, SealFlags};
        let fresh = || memfd_create("udmabuf-seals", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
        let none = fresh();
        let err = check_udmabuf_seals(none.as_fd(), "t").unwrap_err().to_string();
        assert!(err.contains("F_SEAL_SHRINK"), "{err}");
        let frozen = fresh();
        fcntl_add_seals(&frozen, SealFlags::SHRINK | SealFlags::WRITE).unwrap();
        let err = check_udmabuf_seals(frozen.as_fd(), "t").unwrap_err().to_string();
        assert!(err.contains("F_SEAL_WRITE"), "{err}");
        // What framebus' memfd segments carry: accepted.
        let ours = fresh();
        fcntl_add_seals(&ours, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL).unwrap();
        check_udmabuf_seals(ours.as_fd(), "t").unwrap();
        assert!(!is_dmabuf(ours.as_fd()), "a memfd is not a dma-buf");
    }
}
