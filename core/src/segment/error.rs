//! Why a segment operation failed: one error type per operation, each message saying what to
//! do next.

use super::*;

/// Why [`Segment::create`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateError {
    /// The spec breaks a limit.
    Spec(SpecError),
    /// The region's size differs from the layout's.
    RegionSize {
        /// bytes the layout needs
        need: u64,
        /// bytes the region has
        have: u64,
    },
}

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spec(e) => e.fmt(f),
            Self::RegionSize { need, have } => write!(
                f,
                "region has {have} bytes but the layout needs exactly {need}; size the mapping with Layout::total_size"
            ),
        }
    }
}
impl core::error::Error for CreateError {}

/// Why a producer could not attach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachError {
    /// Another producer is attached (its owner token is given). If it is dead, take over with
    /// [`Segment::take_over_producer`].
    Busy {
        /// current owner token
        owner: u64,
    },
    /// Owner tokens must be non-zero.
    ZeroToken,
    /// A results reader was asked of a segment without a results area.
    NoResults,
    /// Another results reader is attached (its owner token is given).
    ReaderBusy {
        /// current owner token
        owner: u64,
    },
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Busy { owner } => {
                write!(f, "segment already has a producer (owner {owner:#x}); stop it, or take over if it is dead")
            }
            Self::ZeroToken => write!(f, "owner token 0 is reserved for 'no owner'"),
            Self::NoResults => {
                write!(f, "the segment has no results area: create it with results (SegmentSpec::with_results)")
            }
            Self::ReaderBusy { owner } => write!(
                f,
                "segment already has a results reader (owner {owner:#x}); stop it, or take over if it is dead"
            ),
        }
    }
}
impl core::error::Error for AttachError {}

/// Why a consumer could not register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// All consumer entries are in use.
    TableFull {
        /// table size
        max: u32,
    },
    /// Every process slot is held by a running process (each process that registers keeps one
    /// slot, for all its consumers, until it exits).
    TooManyProcesses {
        /// process slots (one per consumer entry)
        max: u32,
    },
    /// Owner tokens must be non-zero (0 marks a free process slot).
    ZeroToken,
    /// Workers need a work-queue segment, subscribers a broadcast one.
    WrongPattern {
        /// the segment's pattern
        pattern: Pattern,
        /// what was asked for
        kind: ConsumerKind,
    },
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TableFull { max } => write!(f, "all {max} consumer entries are in use; reclaim dead consumers or create the segment with more"),
            Self::TooManyProcesses { max } => write!(f, "all {max} process slots are held by running processes (a process keeps its slot until it exits, even with no consumer left); stop one of them or create the segment with more consumer entries"),
            Self::ZeroToken => write!(f, "owner token 0 is reserved for 'no process'"),
            Self::WrongPattern { pattern, kind } => write!(f, "a {kind:?} cannot attach to a {pattern:?} segment (workers need WorkQueue, subscribers Broadcast; Latest readers fit both)"),
        }
    }
}
impl core::error::Error for RegisterError {}

/// Why the producer got no slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeginError {
    /// `Block` policy and every slot is in use: wait for a release and retry.
    Full,
    /// The frame was dropped (`DropNewest`, or `DropOldest` with nothing droppable) and counted;
    /// its sequence number is consumed. Move on to the next frame.
    DroppedNewest {
        /// the skipped sequence number
        seq: u64,
    },
    /// Another producer took over this segment (epoch moved); this handle is dead.
    Superseded,
}

impl fmt::Display for BeginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => write!(f, "no free slot (Block policy): wait for consumers to release frames"),
            Self::DroppedNewest { seq } => {
                write!(f, "frame {seq} dropped: no slot could be freed (counted in dropped_newest)")
            }
            Self::Superseded => write!(f, "another producer took over the segment; this producer must stop"),
        }
    }
}
impl core::error::Error for BeginError {}

/// Why a claim or release failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimError {
    /// No frame is available now.
    Empty,
    /// This consumer was reclaimed (presumed dead); register again.
    Evicted,
    /// Shared memory holds an impossible value; the segment is corrupt (or a peer is hostile).
    Corrupt,
    /// The words kept changing under us for [`RETRY_LIMIT`] attempts: frames recycled faster
    /// than we could claim them (DropOldest), or a misbehaving peer. Retrying is safe.
    Contended,
    /// Release of a frame this consumer does not hold (double release or stale handle).
    NotHeld,
    /// Nothing is left to claim and the producer ended the stream ([`Producer::end_stream`]):
    /// no frame will come unless a producer attaches again.
    ///
    /// [`Producer::end_stream`]: crate::segment::Producer::end_stream
    Ended,
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "no frame available"),
            Self::Evicted => write!(f, "this consumer was reclaimed as dead (lease expired or liveness lost); register again"),
            Self::Corrupt => write!(f, "shared control area holds impossible values: segment corrupt or a peer misbehaves; recreate the segment"),
            Self::Contended => write!(f, "control words kept changing for {RETRY_LIMIT} attempts: retry; under DropOldest a consumer far slower than the producer can see this, a persistent one means a misbehaving peer"),
            Self::NotHeld => write!(f, "frame is not held by this consumer (double release or stale frame)"),
            Self::Ended => write!(f, "the stream ended: the producer finished and every frame was given out"),
        }
    }
}
impl core::error::Error for ClaimError {}

/// Why a reclaim did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReclaimError {
    /// Index outside the consumer table.
    NoSuchEntry,
    /// The entry is not that occupant any more: freed (by this or another reclaim), reused,
    /// or its process slot no longer names the owner judged dead.
    Stale,
    /// The consumer is inside an operation; retry, or use [`Reclaim::Dead`] if its process is
    /// known dead.
    Busy,
    /// The consumer holds frames; only [`Reclaim::Dead`] (its process is known dead) takes them.
    Holding {
        /// frames held
        frames: u16,
    },
    /// The entry or a slot word kept changing for [`RETRY_LIMIT`] attempts (a misbehaving
    /// peer). The entry is left RECLAIMING if it got that far: any later reclaim or
    /// [`Segment::reap`] finishes it.
    Contended,
}

impl fmt::Display for ReclaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchEntry => write!(f, "no such consumer entry"),
            Self::Stale => write!(f, "consumer entry was already reclaimed or reused, or names another process now"),
            Self::Busy => {
                write!(f, "consumer is inside an operation; retry, or reclaim it as dead if its process is dead")
            }
            Self::Holding { frames } => write!(
                f,
                "consumer holds {frames} frame(s) and may be reading them: kill its process, then reclaim it as dead"
            ),
            Self::Contended => {
                write!(f, "consumer entry or slot words kept changing (misbehaving peer); retry, a later reclaim or reap finishes it")
            }
        }
    }
}
impl core::error::Error for ReclaimError {}

/// Why [`Consumer::post`](super::Consumer::post) did not post.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostError {
    /// The segment has no results area.
    NoResults,
    /// This consumer does not hold the frame (post before release).
    NotHeld,
    /// The result is longer than the segment's `result_max`.
    TooLarge {
        /// bytes offered
        len: usize,
        /// the segment's maximum
        max: u32,
    },
    /// The reader is a whole results window behind: retry shortly, or give up.
    WindowFull,
    /// The frame already has a result.
    Duplicate,
    /// From the consumer's bracket or the cell: evicted, contended, corrupt.
    Claim(ClaimError),
}

impl fmt::Display for PostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoResults => write!(f, "the segment has no results area: create it with results to post them"),
            Self::NotHeld => write!(f, "post a result while holding its frame (before releasing it)"),
            Self::TooLarge { len, max } => write!(f, "result of {len} bytes exceeds the segment's {max}-byte maximum: create the segment with a larger result size"),
            Self::WindowFull => write!(f, "the results reader is a whole window behind; retry, or the result is lost (counted)"),
            Self::Duplicate => write!(f, "this frame already has a result"),
            Self::Claim(e) => e.fmt(f),
        }
    }
}
impl core::error::Error for PostError {}

/// Why [`ResultReader::next`](super::ResultReader::next) failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The buffer cannot hold the head result (nothing was consumed).
    BufferTooSmall {
        /// bytes needed
        need: usize,
    },
    /// A cell holds impossible values (a misbehaving peer).
    Corrupt,
    /// Another reader took over this segment's results.
    Superseded,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { need } => write!(f, "result buffer too small: the head result has {need} bytes"),
            Self::Corrupt => {
                write!(f, "a result cell holds impossible values (misbehaving peer); recreate the segment")
            }
            Self::Superseded => write!(f, "another results reader took over this segment"),
        }
    }
}
impl core::error::Error for ReadError {}
