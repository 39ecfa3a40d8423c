//! Video sources: files decoded into frames of the segment's pixel format, behind one trait.
//!
//! A source is one file here plus one row of [`SOURCES`], the sniffing table [`open`] reads:
//! MP4 / H.264 ([`mp4`], openh264) and YUV4MPEG2 ([`y4m`]) today; GStreamer's `decodebin`
//! (step 11) plugs in as another row. Colour conversion (BT.601 limited range, as H.264
//! streams of this kind are) is `convert.rs`'s, rows in parallel.

mod convert;
pub mod mp4;
pub mod y4m;

use std::fs::File;
use std::path::{Path, PathBuf};

use framebus_platform::core::PixelFormat;

pub use convert::write_frame;
pub use mp4::Mp4Source;
pub use y4m::Y4mSource;

/// A video decoded frame by frame into caller-provided buffers.
pub trait FrameSource {
    /// The stream's properties.
    fn info(&self) -> VideoInfo;
    /// What the frames are coded as ("H.264", "Y4M"), for reports.
    fn codec(&self) -> &'static str;
    /// Starts again from the first frame.
    ///
    /// # Errors
    /// The file cannot be read again.
    fn rewind(&mut self) -> Result<(), VideoError>;
    /// Decodes the next frame into `out` (one frame of `format` at the stream's size);
    /// `Ok(false)` at the end.
    ///
    /// # Errors
    /// A damaged or undecodable frame ([`VideoError`] says which and what to do).
    fn next_frame(&mut self, out: &mut [u8], format: PixelFormat) -> Result<bool, VideoError>;
}

/// An open source of any kind.
pub type Source = Box<dyn FrameSource>;

/// Bytes of a file's beginning the sniffers see.
pub const SNIFF_BYTES: usize = 16;

/// One kind of source: how to recognise its files and how to open one.
pub struct SourceKind {
    /// Name in messages.
    pub name: &'static str,
    /// Whether a file starting with these bytes (up to [`SNIFF_BYTES`]) is of this kind.
    pub sniff: fn(&[u8]) -> bool,
    /// Opens such a file.
    pub open: fn(&Path) -> Result<Source, VideoError>,
}

/// The sniffing table, tried in order; the last row takes any file, so that a file of no known
/// kind gets the MP4 reader's precise complaint.
pub const SOURCES: [SourceKind; 2] = [
    SourceKind {
        name: "Y4M",
        sniff: |head| head.starts_with(b"YUV4MPEG2"),
        open: |p| Ok(Box::new(Y4mSource::open(p)?)),
    },
    SourceKind { name: "MP4 (H.264)", sniff: |_| true, open: |p| Ok(Box::new(Mp4Source::open(p)?)) },
];

/// Opens `path` with the first row of [`SOURCES`] that recognises its first bytes.
///
/// # Errors
/// [`VideoError::Open`] when it cannot be read; the chosen source's own errors.
pub fn open(path: &Path) -> Result<Source, VideoError> {
    let mut head = [0u8; SNIFF_BYTES];
    let n = {
        use std::io::Read;
        let mut f = File::open(path).map_err(|source| VideoError::Open { path: path.into(), source })?;
        f.read(&mut head).map_err(|source| VideoError::Open { path: path.into(), source })?
    };
    let kind = SOURCES.iter().find(|k| (k.sniff)(&head[..n])).expect("the last row takes any file");
    (kind.open)(path)
}

/// What went wrong with a video. Each message names the file and what to do.
#[derive(Debug)]
pub enum VideoError {
    /// The file does not exist or cannot be read.
    Open {
        /// the file
        path: PathBuf,
        /// the OS error
        source: std::io::Error,
    },
    /// The file is not an MP4 this source understands.
    Unsupported {
        /// the file
        path: PathBuf,
        /// why
        what: String,
    },
    /// The file is damaged: a box or a sample could not be read.
    Corrupt {
        /// the file
        path: PathBuf,
        /// what failed
        detail: String,
    },
    /// The decoder rejected a frame.
    Decode {
        /// the file
        path: PathBuf,
        /// sample number (1-based, as in the MP4)
        sample: u32,
        /// the decoder's message
        detail: String,
    },
}

impl std::fmt::Display for VideoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Open { path, source } => {
                write!(f, "cannot open video {}: {source}; check the path (--video PATH)", path.display())
            }
            Self::Unsupported { path, what } => {
                write!(f, "video {} is not supported: {what}; use an MP4 with an H.264 video track", path.display())
            }
            Self::Corrupt { path, detail } => {
                write!(f, "video {} is damaged ({detail}); re-encode or re-download it", path.display())
            }
            Self::Decode { path, sample, detail } => {
                write!(f, "H.264 decoding of {} failed at sample {sample}: {detail}; the stream may be damaged or use features openh264 lacks (try a stream without B-frames)", path.display())
            }
        }
    }
}

impl std::error::Error for VideoError {}

/// Properties of a video track.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VideoInfo {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second (from the track's timing).
    pub fps: f64,
    /// Frames in the track.
    pub frames: u32,
}
