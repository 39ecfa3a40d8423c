//! Windows: `Local\framebus.NAME` named file mappings backed by the paging file, named
//! semaphores for sleeping (WaitOnAddress does not cross processes), liveness from the process
//! creation time.
//!
//! A named mapping has no file: it exists while at least one process holds a handle to it (or a
//! view of it). The creator's `SharedSegment` holds one; when every process has closed the
//! segment it is gone, whatever `unlink_on_drop` says. `list` and `gc` have nothing to do here.

use std::collections::HashMap;
use std::io;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use framebus_core::layout::{ctl, HEADER_SIZE};
use framebus_core::sync::{AtomicU64, Ordering};
use windows_sys::Win32::Foundation::{
    CloseHandle, GetLastError, ERROR_ACCESS_DENIED, ERROR_ALREADY_EXISTS, ERROR_COMMITMENT_LIMIT, ERROR_FILE_NOT_FOUND,
    ERROR_NOT_ENOUGH_MEMORY, FILETIME, HANDLE, INVALID_HANDLE_VALUE, STILL_ACTIVE, WAIT_TIMEOUT,
};
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, MapViewOfFile, OpenFileMappingW, UnmapViewOfFile, VirtualQuery, FILE_MAP_ALL_ACCESS,
    MEMORY_BASIC_INFORMATION, MEMORY_MAPPED_VIEW_ADDRESS, PAGE_READWRITE, SEC_COMMIT,
};
use windows_sys::Win32::System::SystemInformation::GetTickCount64;
use windows_sys::Win32::System::Threading::{
    CreateSemaphoreW, GetCurrentProcessId, GetExitCodeProcess, GetProcessTimes, OpenProcess, ReleaseSemaphore,
    WaitForSingleObject, PROCESS_QUERY_LIMITED_INFORMATION,
};

use crate::{Error, SegmentName};

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}

fn object(name: &SegmentName, suffix: &str) -> Vec<u16> {
    wide(&format!("Local\\{}{suffix}", name.os_name()))
}

fn last_error(name: &SegmentName, op: &'static str) -> Error {
    // SAFETY: reads the calling thread's last-error value; no preconditions.
    let code = unsafe { GetLastError() };
    match code {
        ERROR_FILE_NOT_FOUND => Error::NotFound { name: name.to_string() },
        ERROR_ALREADY_EXISTS => Error::AlreadyExists { name: name.to_string() },
        ERROR_ACCESS_DENIED => Error::PermissionDenied { name: name.to_string() },
        c => Error::Io { name: name.to_string(), op, source: io::Error::from_raw_os_error(c as i32) },
    }
}

/// Semaphores of live segments, by the address of the wake word they serve.
fn registry() -> &'static Mutex<HashMap<usize, usize>> {
    static R: OnceLock<Mutex<HashMap<usize, usize>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A mapped view of a named mapping, with the semaphores of its two wake words.
pub struct Memory {
    mapping: HANDLE,
    view: *mut u8,
    len: usize,
    sems: [(usize, HANDLE); 2],
}

// SAFETY: the handles and the view are process-wide kernel objects and memory; nothing in
// `Memory` is tied to the thread that created it.
unsafe impl Send for Memory {}
// SAFETY: as above; shared access goes through the core's atomics.
unsafe impl Sync for Memory {}

impl Memory {
    /// Base address of the view.
    pub fn ptr(&self) -> *mut u8 {
        self.view
    }
    /// Length of the view.
    pub fn len(&self) -> usize {
        self.len
    }

    fn new(name: &SegmentName, mapping: HANDLE, view: *mut u8, len: usize) -> Result<Self, Error> {
        let mut mem = Memory { mapping, view, len, sems: [(0, std::ptr::null_mut()); 2] };
        if len < HEADER_SIZE as usize + 3 * 128 {
            return Err(Error::Header {
                name: name.to_string(),
                error: framebus_core::HeaderError::TooSmall { len: len as u64 },
            });
        }
        for (i, (off, suffix)) in [(ctl::FRAME_WAKE, ".frames"), (ctl::SPACE_WAKE, ".space")].into_iter().enumerate() {
            let n = object(name, suffix);
            // SAFETY: `n` is a NUL-terminated UTF-16 string; default security; creates the
            // semaphore or opens the one the other side created.
            let sem = unsafe { CreateSemaphoreW(std::ptr::null(), 0, i32::MAX, n.as_ptr()) };
            if sem.is_null() {
                return Err(last_error(name, "create wake semaphore of"));
            }
            let addr = view as usize + (HEADER_SIZE + off) as usize;
            mem.sems[i] = (addr, sem);
            registry().lock().unwrap_or_else(|e| e.into_inner()).insert(addr, sem as usize);
        }
        Ok(mem)
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
        for (addr, sem) in self.sems {
            if !sem.is_null() {
                reg.remove(&addr);
                // SAFETY: a handle we opened and nobody else closes.
                unsafe { CloseHandle(sem) };
            }
        }
        // SAFETY: the view and the mapping handle were created by us and are released once.
        unsafe {
            UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: self.view.cast() });
            CloseHandle(self.mapping);
        }
    }
}

fn map_view(name: &SegmentName, mapping: HANDLE, len: usize) -> Result<Memory, Error> {
    // SAFETY: `mapping` is a valid file-mapping handle; len 0 maps the whole object.
    let view = unsafe { MapViewOfFile(mapping, FILE_MAP_ALL_ACCESS, 0, 0, len) };
    if view.Value.is_null() {
        let e = last_error(name, "map");
        // SAFETY: our handle, closed once.
        unsafe { CloseHandle(mapping) };
        return Err(e);
    }
    let len = if len != 0 {
        len
    } else {
        let mut info: MEMORY_BASIC_INFORMATION = unsafe {
            // SAFETY: a plain-data struct that VirtualQuery fills in; all-zero is a valid value.
            std::mem::zeroed()
        };
        // SAFETY: `view.Value` is the base of our view; `info` is a valid out-buffer.
        unsafe { VirtualQuery(view.Value, &mut info, std::mem::size_of::<MEMORY_BASIC_INFORMATION>()) };
        info.RegionSize
    };
    Memory::new(name, mapping, view.Value.cast(), len)
}

/// Creates `Local\framebus.NAME`, `size` bytes, committed now (SEC_COMMIT): a system short of
/// paging-file space fails here, not at first touch. `mode` has no Windows equivalent: the
/// object gets the creator's default security (its user, SYSTEM and administrators).
pub fn create(name: &SegmentName, size: u64, _mode: u32) -> Result<Memory, Error> {
    let n = object(name, "");
    // SAFETY: paging-file backed mapping (INVALID_HANDLE_VALUE), default security, a
    // NUL-terminated name.
    let h = unsafe {
        CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            std::ptr::null(),
            PAGE_READWRITE | SEC_COMMIT,
            (size >> 32) as u32,
            size as u32,
            n.as_ptr(),
        )
    };
    // SAFETY: reads the thread's last error right after the call.
    let code = unsafe { GetLastError() };
    if h.is_null() {
        return Err(match code {
            ERROR_COMMITMENT_LIMIT | ERROR_NOT_ENOUGH_MEMORY => {
                Error::NoSpace { name: name.to_string(), needed: size, available: 0 }
            }
            _ => last_error(name, "create"),
        });
    }
    if code == ERROR_ALREADY_EXISTS {
        // SAFETY: our handle to the existing object, closed once.
        unsafe { CloseHandle(h) };
        return Err(Error::AlreadyExists { name: name.to_string() });
    }
    let len =
        usize::try_from(size).map_err(|_| Error::Unsupported { what: "segments larger than the address space" })?;
    map_view(name, h, len)
}

/// Opens `Local\framebus.NAME` and maps all of it.
pub fn open(name: &SegmentName) -> Result<Memory, Error> {
    let n = object(name, "");
    // SAFETY: a NUL-terminated name; no handle inheritance.
    let h = unsafe { OpenFileMappingW(FILE_MAP_ALL_ACCESS, 0, n.as_ptr()) };
    if h.is_null() {
        return Err(last_error(name, "open"));
    }
    map_view(name, h, 0)
}

/// Nothing to remove: a named mapping disappears with the last handle to it.
pub fn unlink(_: &SegmentName) -> Result<(), Error> {
    Ok(())
}

/// Windows cannot enumerate named mappings.
pub fn list() -> io::Result<Vec<String>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "named file mappings cannot be listed on Windows; they vanish with their last handle",
    ))
}

pub fn create_memfd(_: &str, _: u64) -> Result<Memory, Error> {
    Err(Error::Unsupported { what: "memfd segments (Linux only)" })
}
pub fn sealed(_: &Memory) -> bool {
    false
}
pub fn create_path(_: &std::path::Path, _: u64, _: u32) -> Result<Memory, Error> {
    Err(Error::Unsupported { what: "file-backed segments on Windows" })
}
pub fn open_path(_: &std::path::Path) -> Result<Memory, Error> {
    Err(Error::Unsupported { what: "file-backed segments on Windows" })
}

fn semaphore(word: &AtomicU64) -> Option<HANDLE> {
    let addr = word.as_ptr() as usize;
    registry().lock().unwrap_or_else(|e| e.into_inner()).get(&addr).map(|&h| h as HANDLE)
}

/// Sleeps while the low 32 bits of `word` equal `expected`, at most `timeout`.
pub fn wait(word: &AtomicU64, expected: u32, timeout: Duration) -> bool {
    if word.load(Ordering::Acquire) as u32 != expected {
        return true;
    }
    let Some(sem) = semaphore(word) else {
        std::thread::sleep(timeout.min(Duration::from_millis(1)));
        return true;
    };
    // Sleep in slices and re-check the word: semaphore tokens are not tied to a wake value,
    // so another sleeper may take ours; the slice bounds what that can cost (10 ms).
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        let ms = u32::try_from(left.as_millis().clamp(1, 10)).unwrap_or(10);
        // SAFETY: a live semaphore handle from the registry (closed only when its segment
        // drops, which cannot happen while `word` is borrowed).
        if unsafe { WaitForSingleObject(sem, ms) } != WAIT_TIMEOUT || word.load(Ordering::Acquire) as u32 != expected {
            return true;
        }
    }
}

/// Wakes the processes sleeping on `word`: releases the semaphore once per announced sleeper
/// (`sleepers`, at least one, at most 64). A release nobody consumes only causes one spurious
/// wake-up later, which the wait loops absorb.
pub fn wake(word: &AtomicU64, sleepers: u64) {
    if let Some(sem) = semaphore(word) {
        let n = sleepers.clamp(1, 64) as i32;
        // SAFETY: live semaphore handle (see `wait`).
        unsafe { ReleaseSemaphore(sem, n, std::ptr::null_mut()) };
    }
}

/// `Some(creation ms)` for a running process, `None` for a gone one, `Some(0)` when the
/// process exists but may not be queried (another user's: alive, start time unknown).
fn creation_ms(pid: u32) -> Option<u64> {
    // SAFETY: querying another process with the least privilege; the handle is closed below.
    let h = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if h.is_null() {
        // SAFETY: reads the thread's last error right after the call.
        return (unsafe { GetLastError() } == ERROR_ACCESS_DENIED).then_some(0);
    }
    let mut code = 0u32;
    let z = FILETIME { dwLowDateTime: 0, dwHighDateTime: 0 };
    let (mut created, mut exited, mut kernel, mut user) = (z, z, z, z);
    // SAFETY: valid handle and out-pointers to local variables.
    let ok = unsafe {
        GetExitCodeProcess(h, &mut code) != 0
            && GetProcessTimes(h, &mut created, &mut exited, &mut kernel, &mut user) != 0
    };
    // SAFETY: our handle, closed once.
    unsafe { CloseHandle(h) };
    (ok && code == STILL_ACTIVE as u32)
        .then(|| ((u64::from(created.dwHighDateTime) << 32) | u64::from(created.dwLowDateTime)) / 10_000)
}

/// This process's liveness token: pid (low 32 bits) and creation time in ms (high 32 bits).
pub fn process_token() -> u64 {
    // SAFETY: no preconditions.
    let pid = unsafe { GetCurrentProcessId() };
    u64::from(pid) | (creation_ms(pid).unwrap_or(0) & 0xFFFF_FFFF) << 32
}

/// True when the process a token names is running (same pid and same creation time).
pub fn is_alive(token: u64) -> bool {
    let pid = token as u32;
    // 0: exists but not queryable (alive); otherwise compare creation times when both known.
    pid != 0 && creation_ms(pid).is_some_and(|ms| ms == 0 || token >> 32 == 0 || ms & 0xFFFF_FFFF == token >> 32)
}

/// Windows cannot tell a named mapping's age.
pub fn age(_: &SegmentName) -> Option<Duration> {
    None
}

/// Milliseconds since boot, in ns (comparable across processes).
pub fn now_ns() -> u64 {
    // SAFETY: no preconditions.
    unsafe { GetTickCount64() }.saturating_mul(1_000_000)
}

/// Nothing to remove on Windows (see [`unlink`]).
pub fn unlink_if_same(_: &SegmentName, _: &Memory) {}
/// No file-backed segments on Windows.
pub fn remove_path_if_same(_: &std::path::Path, _: &Memory) {}
