//! framebus-harness: the edge runtime and simulation around the `framebus` binary.
//!
//! Built so far: [`video`] (recorded video decoded into segment frames). The producer, worker
//! and collector roles and the simulation arrive with step 3.
#![deny(missing_docs)]

pub mod video;
