#![cfg(loom)]
//! placeholder
