//! framebus-harness: the edge runtime and simulation around the `framebus` binary.
//!
//! - [`video`]: recorded video (MP4/H.264, Y4M) decoded into segment frames;
//! - [`sim`]: the producer and worker roles, the simulation's sinks and `framebus simulate`;
//! - [`runtime`]: the edge runtime — one pipeline's segment, source, workers, supervision,
//!   ordered reader and sinks (`framebus run`, and under `framebus simulate`);
//! - [`cli`]: `ls`, `gc`, `inspect`, `probe`;
//! - [`vocab`]: the command line's words for the core's vocabulary (formats, policies, …).
#![deny(missing_docs)]

pub mod cli;
pub mod runtime;
pub mod sim;
pub mod video;
pub mod vocab;

/// The harness's errors: a message for the user, already saying what to do.
pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;
