//! Platforms without a backing: every operation returns [`Error::Unsupported`], so the
//! workspace builds everywhere.

use std::io;
use std::time::Duration;

use framebus_core::sync::AtomicU64;

use crate::{Error, SegmentName};

const WHAT: &str = "shared-memory segments (implemented for Linux and Windows)";

/// Never constructed here.
pub enum Memory {}

impl Memory {
    pub fn ptr(&self) -> *mut u8 {
        match *self {}
    }
    pub fn len(&self) -> usize {
        match *self {}
    }
}

pub fn create(_: &SegmentName, _: u64, _: u32) -> Result<Memory, Error> {
    Err(Error::Unsupported { what: WHAT })
}
pub fn open(_: &SegmentName) -> Result<Memory, Error> {
    Err(Error::Unsupported { what: WHAT })
}
pub fn unlink(_: &SegmentName) -> Result<(), Error> {
    Err(Error::Unsupported { what: WHAT })
}
pub fn list() -> io::Result<Vec<String>> {
    Err(io::Error::new(io::ErrorKind::Unsupported, WHAT))
}
pub fn create_memfd(_: &str, _: u64) -> Result<Memory, Error> {
    Err(Error::Unsupported { what: "memfd segments (Linux only)" })
}
pub fn sealed(_: &Memory) -> bool {
    false
}
pub fn create_path(_: &std::path::Path, _: u64, _: u32) -> Result<Memory, Error> {
    Err(Error::Unsupported { what: WHAT })
}
pub fn open_path(_: &std::path::Path) -> Result<Memory, Error> {
    Err(Error::Unsupported { what: WHAT })
}
pub fn wait(_: &AtomicU64, _: u32, timeout: Duration) -> bool {
    std::thread::sleep(timeout.min(Duration::from_millis(1)));
    true
}
pub fn wake(_: &AtomicU64, _: u64) {}
pub fn process_token() -> u64 {
    u64::from(std::process::id())
}
pub fn is_alive(_: u64) -> bool {
    true
}
pub fn now_ns() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}
pub fn age(_: &SegmentName) -> Option<Duration> {
    None
}
pub fn unlink_if_same(_: &SegmentName, _: &Memory) {}
pub fn remove_path_if_same(_: &std::path::Path, _: &Memory) {}
