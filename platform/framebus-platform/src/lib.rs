//! framebus-platform: maps the core's segments onto operating-system shared memory.
//!
//! Not built yet (step 2 of the plan: POSIX shm / memfd on Linux, named file mappings on
//! Windows, futex wait/wake, liveness). Today it only re-exports the core so that the
//! workspace has its final shape.
#![deny(missing_docs)]

pub use framebus_core as core;
