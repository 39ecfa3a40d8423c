//! framebus-harness: the edge runtime and simulation around the `framebus` binary.
//!
//! - [`video`]: recorded video (MP4/H.264, Y4M) decoded into segment frames;
//! - [`sim`]: the producer, worker and collector roles and the multi-process simulation.
#![deny(missing_docs)]

pub mod sim;
pub mod video;
