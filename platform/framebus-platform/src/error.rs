//! Platform errors. Each message says what happened and what to do next.

use std::{fmt, io};

use framebus_core::{HeaderError, SpecError};

/// Why a platform operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The segment name breaks the naming rules.
    InvalidName {
        /// the name given
        name: String,
        /// which rule
        reason: &'static str,
    },
    /// No segment has that name.
    NotFound {
        /// the name
        name: String,
    },
    /// A segment with that name exists already.
    AlreadyExists {
        /// the name
        name: String,
    },
    /// The OS refused access (the segment is owner-only by default).
    PermissionDenied {
        /// the name
        name: String,
    },
    /// Not enough room in the shared-memory filesystem.
    NoSpace {
        /// the name
        name: String,
        /// bytes the segment needs
        needed: u64,
        /// bytes free
        available: u64,
    },
    /// The spec breaks a limit (nothing was created).
    Spec(SpecError),
    /// The object exists but is not a valid framebus segment.
    Header {
        /// the name
        name: String,
        /// what is wrong
        error: HeaderError,
    },
    /// This backing or operation does not exist on this platform.
    Unsupported {
        /// what was asked for
        what: &'static str,
    },
    /// The kernel lacks the device a backing needs (a dma-buf heap, `/dev/udmabuf`): this
    /// backing is unsupported on this machine.
    DeviceMissing {
        /// the device path that does not exist
        device: String,
        /// what it provides
        what: &'static str,
        /// what to do
        fix: &'static str,
    },
    /// Any other OS error.
    Io {
        /// the name
        name: String,
        /// the operation
        op: &'static str,
        /// the OS error
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName { name, reason } => write!(f, "invalid segment name {name:?}: {reason}; use 1-64 of [A-Za-z0-9._-]"),
            Self::NotFound { name } => write!(f, "no segment named {name:?}: is its producer running? `framebus ls` lists segments"),
            Self::AlreadyExists { name } => write!(f, "a segment named {name:?} already exists: open it, choose another name, or remove it if its creator is dead (`framebus gc`)"),
            Self::PermissionDenied { name } => write!(f, "permission denied on segment {name:?}: segments are owner-only by default; run as the creating user or create it with a wider mode"),
            Self::NoSpace { name, needed, available } => write!(
                f,
                "not enough shared memory for segment {name:?}: needs {} MiB, {} MiB free in /dev/shm; free some (`framebus gc`), use fewer or smaller slots, or enlarge /dev/shm (Docker: --shm-size={}m)",
                needed.div_ceil(1 << 20),
                available / (1 << 20),
                (needed.div_ceil(1 << 20) * 2).max(64)
            ),
            Self::Spec(e) => write!(f, "invalid segment spec: {e}"),
            Self::Header { name, error } => write!(f, "segment {name:?}: {error}"),
            Self::Unsupported { what } => write!(f, "{what} is not supported on this platform"),
            Self::DeviceMissing { device, what, fix } => {
                write!(f, "unsupported here: {device} does not exist, so this kernel offers no {what}; {fix}")
            }
            Self::Io { name, op, source } => write!(f, "{op} of segment {name:?} failed: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Spec(e) => Some(e),
            Self::Header { error, .. } => Some(error),
            _ => None,
        }
    }
}
