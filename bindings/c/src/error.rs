//! Errors on their way to C: every Rust error becomes a status code and a message kept per
//! thread (`fb_last_error`); every export runs inside [`guard`], which also turns a panic into
//! `FB_ERR_INTERNAL` instead of unwinding into C.

use super::*;

thread_local! {
    pub(crate) static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// An error on its way to C: its status and its message.
pub(crate) struct Failure(pub(crate) fb_status, pub(crate) String);

impl Failure {
    pub(crate) fn arg(msg: impl Into<String>) -> Self {
        Failure(FB_ERR_INVALID_ARGUMENT, msg.into())
    }
}

impl From<PlatformError> for Failure {
    fn from(e: PlatformError) -> Self {
        let code = match &e {
            PlatformError::InvalidName { .. } | PlatformError::Spec(_) => FB_ERR_INVALID_ARGUMENT,
            PlatformError::NotFound { .. } => FB_ERR_NOT_FOUND,
            PlatformError::AlreadyExists { .. } => FB_ERR_EXISTS,
            PlatformError::PermissionDenied { .. } => FB_ERR_PERMISSION,
            PlatformError::NoSpace { .. } => FB_ERR_NO_SPACE,
            PlatformError::Header { .. } => FB_ERR_BAD_SEGMENT,
            PlatformError::Unsupported { .. } | PlatformError::DeviceMissing { .. } => FB_ERR_UNSUPPORTED,
            _ => FB_ERR_IO,
        };
        Failure(code, e.to_string())
    }
}

impl From<AttachError> for Failure {
    fn from(e: AttachError) -> Self {
        Failure(FB_ERR_BUSY, e.to_string())
    }
}

impl From<RegisterError> for Failure {
    fn from(e: RegisterError) -> Self {
        let code = match e {
            // Both mean "no room for this process's consumer"; the message says which.
            RegisterError::TableFull { .. } | RegisterError::TooManyProcesses { .. } => FB_ERR_TABLE_FULL,
            RegisterError::WrongPattern { .. } => FB_ERR_WRONG_PATTERN,
            RegisterError::ZeroToken => FB_ERR_INTERNAL,
        };
        Failure(code, e.to_string())
    }
}

impl From<ClaimError> for Failure {
    fn from(e: ClaimError) -> Self {
        let code = match e {
            ClaimError::Evicted => FB_ERR_EVICTED,
            ClaimError::NotHeld => FB_ERR_NOT_HELD,
            ClaimError::Empty | ClaimError::Contended => FB_TIMED_OUT,
            ClaimError::Ended => FB_END,
            ClaimError::Corrupt => FB_ERR_CORRUPT,
        };
        Failure(code, e.to_string())
    }
}

impl From<framebus_core::PostError> for Failure {
    fn from(e: framebus_core::PostError) -> Self {
        use framebus_core::PostError;
        let code = match e {
            PostError::NoResults => FB_ERR_UNSUPPORTED,
            PostError::NotHeld => FB_ERR_NOT_HELD,
            PostError::TooLarge { .. } | PostError::Duplicate => FB_ERR_INVALID_ARGUMENT,
            PostError::WindowFull => FB_TIMED_OUT,
            PostError::Claim(c) => return Failure::from(c),
        };
        Failure(code, e.to_string())
    }
}

impl From<framebus_core::ReadError> for Failure {
    fn from(e: framebus_core::ReadError) -> Self {
        use framebus_core::ReadError;
        let code = match e {
            ReadError::BufferTooSmall { .. } => FB_ERR_INVALID_ARGUMENT,
            ReadError::Corrupt => FB_ERR_CORRUPT,
            ReadError::Superseded => FB_ERR_SUPERSEDED,
        };
        Failure(code, e.to_string())
    }
}

impl From<ProduceError> for Failure {
    fn from(e: ProduceError) -> Self {
        let code = match e {
            ProduceError::Begin(BeginError::Superseded) => FB_ERR_SUPERSEDED,
            ProduceError::Begin(BeginError::DroppedNewest { .. }) => FB_DROPPED,
            ProduceError::Begin(BeginError::Full) | ProduceError::TimedOut => FB_TIMED_OUT,
            ProduceError::NoSlot | ProduceError::SlotPending => FB_ERR_INVALID_ARGUMENT,
        };
        Failure(code, e.to_string())
    }
}

/// Runs `f`, turning a `Failure` or a panic into a status and this thread's last error.
pub(crate) fn guard(f: impl FnOnce() -> Result<fb_status, Failure>) -> fb_status {
    let outcome = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Failure(FB_ERR_INTERNAL, format!("internal error (a framebus bug; please report it): {what}")))
    });
    match outcome {
        Ok(status) => status,
        Err(Failure(status, msg)) => {
            set_last_error(&msg);
            status
        }
    }
}

pub(crate) fn set_last_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// The message of the last error on the calling thread ("" before any). Valid until the next
/// failing call on this thread; copy it to keep it. Never NULL.
#[no_mangle]
pub extern "C" fn fb_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// A short name for a status code (`"FB_ERR_NOT_FOUND"`), static, never NULL.
#[no_mangle]
pub extern "C" fn fb_status_name(status: fb_status) -> *const c_char {
    let s: &'static CStr = match status {
        FB_OK => c"FB_OK",
        FB_TIMED_OUT => c"FB_TIMED_OUT",
        FB_DROPPED => c"FB_DROPPED",
        FB_LATE => c"FB_LATE",
        FB_END => c"FB_END",
        FB_ERR_INVALID_ARGUMENT => c"FB_ERR_INVALID_ARGUMENT",
        FB_ERR_NOT_FOUND => c"FB_ERR_NOT_FOUND",
        FB_ERR_EXISTS => c"FB_ERR_EXISTS",
        FB_ERR_PERMISSION => c"FB_ERR_PERMISSION",
        FB_ERR_NO_SPACE => c"FB_ERR_NO_SPACE",
        FB_ERR_BAD_SEGMENT => c"FB_ERR_BAD_SEGMENT",
        FB_ERR_BUSY => c"FB_ERR_BUSY",
        FB_ERR_TABLE_FULL => c"FB_ERR_TABLE_FULL",
        FB_ERR_WRONG_PATTERN => c"FB_ERR_WRONG_PATTERN",
        FB_ERR_EVICTED => c"FB_ERR_EVICTED",
        FB_ERR_CORRUPT => c"FB_ERR_CORRUPT",
        FB_ERR_NOT_HELD => c"FB_ERR_NOT_HELD",
        FB_ERR_SUPERSEDED => c"FB_ERR_SUPERSEDED",
        FB_ERR_UNSUPPORTED => c"FB_ERR_UNSUPPORTED",
        FB_ERR_IO => c"FB_ERR_IO",
        FB_ERR_INTERNAL => c"FB_ERR_INTERNAL",
        _ => c"FB_UNKNOWN_STATUS",
    };
    s.as_ptr()
}
