#![cfg(not(loom))]
//! Integration tests of framebus-core (one binary, STYLE.md).
mod header;
mod model;
mod protocol;
mod rings;
mod stress;
mod util;
