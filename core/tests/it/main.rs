//! Integration tests of framebus-core (one binary, STYLE.md).
#![cfg(not(loom))]
// Test bookkeeping (done flags, seen-bitmaps) uses std atomics on purpose: it is not part of
// the protocol under test, and it must not be swapped for loom types.
#![allow(clippy::disallowed_types)]
mod header;
mod model;
mod protocol;
mod results;
mod results_model;
mod rings;
mod scribbler;
mod stress;
mod util;
