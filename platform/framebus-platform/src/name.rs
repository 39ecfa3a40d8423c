//! Segment names: 1–64 characters of `[A-Za-z0-9._-]`, not `.` or `..`.
//!
//! A name never contains a path separator, so it cannot escape `/dev/shm` (or the `Local\`
//! namespace on Windows). On Linux the object is `/dev/shm/framebus.NAME`; Python's
//! `multiprocessing.shared_memory.SharedMemory(name="framebus.NAME")` and C's
//! `shm_open("/framebus.NAME", ...)` open the same object.

use std::fmt;

use crate::Error;

/// Prefix of every framebus object in the OS namespace (lets `framebus ls` find them).
pub const PREFIX: &str = "framebus.";
/// Longest name accepted.
pub const MAX_NAME_LEN: usize = 64;

/// A validated segment name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SegmentName(String);

impl SegmentName {
    /// Validates `name`.
    ///
    /// # Examples
    /// ```
    /// use framebus_platform::SegmentName;
    /// assert_eq!(SegmentName::new("cam0.bgr").unwrap().os_name(), "framebus.cam0.bgr");
    /// assert!(SegmentName::new("../etc/passwd").is_err());
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidName`] naming the rule broken.
    pub fn new(name: &str) -> Result<Self, Error> {
        let bad = |reason| Err(Error::InvalidName { name: name.to_string(), reason });
        if name.is_empty() {
            return bad("it is empty");
        }
        if name.len() > MAX_NAME_LEN {
            return bad("it is longer than 64 characters");
        }
        if name == "." || name == ".." {
            return bad("'.' and '..' are reserved");
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
            return bad("only letters, digits, '.', '_' and '-' are allowed (no path separators)");
        }
        Ok(SegmentName(name.to_string()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of the OS object: `framebus.NAME`.
    pub fn os_name(&self) -> String {
        format!("{PREFIX}{}", self.0)
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
