//! The exception classes (one per failure a caller can act on) and the mapping from each Rust
//! error to its class, keeping the Rust message.

use super::*;

create_exception!(_framebus, Error, PyException, "Base class of every framebus error.");
create_exception!(_framebus, NotFound, Error, "No segment has that name (is its producer running?).");
create_exception!(_framebus, AlreadyExists, Error, "A segment with that name exists already.");
create_exception!(_framebus, PermissionDenied, Error, "The OS refused access to the segment.");
create_exception!(_framebus, BadSegment, Error, "Not a valid framebus segment (truncated, garbage, other version).");
create_exception!(_framebus, Busy, Error, "Another live producer is attached to the segment.");
create_exception!(_framebus, Evicted, Error, "This consumer was reclaimed as dead; open a new one.");
create_exception!(_framebus, Corrupt, Error, "Shared memory holds impossible values.");
create_exception!(_framebus, Superseded, Error, "Another producer took over the segment.");
create_exception!(_framebus, Released, Error, "The frame, slot or endpoint was released or closed.");
create_exception!(_framebus, Timeout, Error, "No free slot came within the timeout (Block policy).");
create_exception!(_framebus, EndOfStream, Error, "The producer finished the stream and every frame was given out.");

pub(crate) fn platform_err(e: PlatformError) -> PyErr {
    let msg = e.to_string();
    match e {
        PlatformError::NotFound { .. } => NotFound::new_err(msg),
        PlatformError::AlreadyExists { .. } => AlreadyExists::new_err(msg),
        PlatformError::PermissionDenied { .. } => PermissionDenied::new_err(msg),
        PlatformError::Header { .. } => BadSegment::new_err(msg),
        PlatformError::InvalidName { .. } | PlatformError::Spec(_) => PyValueError::new_err(msg),
        _ => Error::new_err(msg),
    }
}

pub(crate) fn claim_err(e: ClaimError) -> PyErr {
    let msg = e.to_string();
    match e {
        ClaimError::Evicted => Evicted::new_err(msg),
        ClaimError::Corrupt => Corrupt::new_err(msg),
        ClaimError::NotHeld => Released::new_err(msg),
        ClaimError::Ended => EndOfStream::new_err(msg),
        ClaimError::Empty | ClaimError::Contended => Error::new_err(msg),
    }
}

pub(crate) fn produce_err(e: ProduceError) -> PyErr {
    let msg = e.to_string();
    match e {
        ProduceError::Begin(BeginError::Superseded) => Superseded::new_err(msg),
        ProduceError::TimedOut | ProduceError::Begin(BeginError::Full) => Timeout::new_err(msg),
        _ => Error::new_err(msg),
    }
}
