//! The vocabulary of the layout: pixel formats, delivery patterns, overflow policies and
//! consumer kinds, each defined once, here — numeric code (the value stored in shared memory),
//! name, aliases, one line of meaning, and the list of all.
//!
//! Everything else derives from these tables: header decoding ([`Vocabulary::from_code`]), the
//! C constants (`FB_FORMAT_*`, … checked against the codes at compile time), the Python package
//! (names out, names in), the harness command line (`--format`, `--policy`, … and their
//! `--help`) and `docs/LAYOUT.md` §2. Adding a value is one row in one table below; the compiler
//! then points at every `match` that must learn it.
//!
//! Names are lower-case, words joined by `-` (`drop-oldest`, `work-queue`). Parsing ignores ASCII
//! case and takes `_` for `-`, so `drop_oldest` (the Python spelling before step 9) still works.
//!
//! # Examples
//! ```
//! use framebus_core::{OverflowPolicy, vocab::Vocabulary};
//! let p: OverflowPolicy = "drop_oldest".parse().unwrap();
//! assert_eq!(p, OverflowPolicy::DropOldest);
//! assert_eq!(p.name(), "drop-oldest");
//! assert_eq!(OverflowPolicy::from_code(1), Some(p));
//! let e = "fastest".parse::<OverflowPolicy>().unwrap_err();
//! assert_eq!(e.to_string(), "unknown overflow policy: use block, drop-oldest or drop-newest");
//! ```

use core::fmt;

/// A closed set of named values with stable numeric codes.
pub trait Vocabulary: Copy + Eq + Sized + 'static {
    /// What a value is, for messages ("pixel format").
    const WHAT: &'static str;
    /// Every value, in code order.
    const ALL: &'static [Self];
    /// The code stored in shared memory and used by the C ABI.
    fn code(self) -> u32;
    /// The canonical name (command line, Python, reports).
    fn name(self) -> &'static str;
    /// Other accepted spellings.
    fn aliases(self) -> &'static [&'static str];
    /// One line saying what the value means (the `--help` text).
    fn about(self) -> &'static str;

    /// The value with code `code`, if any.
    fn from_code(code: u32) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.code() == code)
    }

    /// The value named `s` (its name or an alias; ASCII case ignored, `_` read as `-`).
    ///
    /// # Errors
    /// [`UnknownName`], which lists the accepted names.
    fn from_name(s: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| same_name(s, v.name()) || v.aliases().iter().any(|a| same_name(s, a)))
            .ok_or(UnknownName { what: Self::WHAT, name_at: name_at::<Self> })
    }
}

fn name_at<T: Vocabulary>(i: usize) -> Option<&'static str> {
    T::ALL.get(i).map(|v| v.name())
}

/// A name no value of a vocabulary has. Its message lists the accepted names.
#[derive(Clone, Copy, Debug)]
pub struct UnknownName {
    /// What was being named ("pixel format").
    pub what: &'static str,
    name_at: fn(usize) -> Option<&'static str>,
}

impl UnknownName {
    /// The accepted names, canonical spellings only.
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        let at = self.name_at;
        (0..).map_while(at)
    }
}

/// Two errors are equal when they are about the same vocabulary (`what` names it).
impl PartialEq for UnknownName {
    fn eq(&self, other: &Self) -> bool {
        self.what == other.what
    }
}

impl Eq for UnknownName {}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {}: use ", self.what)?;
        let n = self.names().count();
        for (i, name) in self.names().enumerate() {
            let sep = match i {
                0 => "",
                _ if i + 1 == n => " or ",
                _ => ", ",
            };
            write!(f, "{sep}{name}")?;
        }
        Ok(())
    }
}

impl core::error::Error for UnknownName {}

/// `a` and `b` name the same value: ASCII case ignored, `_` and `-` alike.
fn same_name(a: &str, b: &str) -> bool {
    let norm = |c: u8| if c == b'_' { b'-' } else { c.to_ascii_lowercase() };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| norm(x) == norm(y))
}

/// Defines one vocabulary enum: each row is `Variant = code, "name" [| "alias"]*, "about"`.
/// The about line is also the variant's rustdoc.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $ty:ident ($what:literal) {
            $( $var:ident = $code:literal, $name:literal $(| $alias:literal)*, $about:literal; )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum $ty {
            $( #[doc = $about] $var = $code, )+
        }

        impl $ty {
            /// The value with numeric code `v`, if any (usable in `const` context).
            pub const fn from_u32(v: u32) -> Option<Self> {
                match v {
                    $( $code => Some(Self::$var), )+
                    _ => None,
                }
            }
        }

        impl Vocabulary for $ty {
            const WHAT: &'static str = $what;
            const ALL: &'static [Self] = &[$(Self::$var),+];
            fn code(self) -> u32 {
                self as u32
            }
            fn name(self) -> &'static str {
                match self { $( Self::$var => $name, )+ }
            }
            fn aliases(self) -> &'static [&'static str] {
                match self { $( Self::$var => &[$($alias),*], )+ }
            }
            fn about(self) -> &'static str {
                match self { $( Self::$var => $about, )+ }
            }
        }

        impl core::str::FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                Self::from_name(s)
            }
        }

        /// The canonical name.
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

vocabulary! {
    /// Pixel format of the frames in a segment (header field `pixel_format`).
    pub enum PixelFormat ("pixel format") {
        Raw = 0, "raw", "opaque bytes: `width` bytes per row, `height` rows";
        Bgr24 = 1, "bgr24" | "bgr", "packed 8-bit B, G, R (OpenCV's default)";
        Rgb24 = 2, "rgb24" | "rgb", "packed 8-bit R, G, B";
        Gray8 = 3, "gray8" | "gray", "8-bit luma only";
        Nv12 = 4, "nv12", "4:2:0, a Y plane then one interleaved UV plane (even width and height)";
        I420 = 5, "i420", "4:2:0, Y, U and V planes (even width and height)";
    }
}

vocabulary! {
    /// How frames reach consumers (header field `pattern`).
    pub enum Pattern ("delivery pattern") {
        WorkQueue = 0, "work-queue", "each frame goes to exactly one worker (parallel inference)";
        Broadcast = 1, "broadcast", "each frame goes to every subscriber";
    }
}

vocabulary! {
    /// What the producer does when no slot is free (header field `policy`).
    pub enum OverflowPolicy ("overflow policy") {
        Block = 0, "block", "wait for a free slot: nothing is lost, latency grows when consumers are slow";
        DropOldest = 1, "drop-oldest", "reuse the oldest frame nobody has claimed (a live camera); counted as dropped";
        DropNewest = 2, "drop-newest", "skip the incoming frame; counted as dropped and visible as a sequence gap";
    }
}

vocabulary! {
    /// How a consumer takes frames (entry word bits 4–5; 0 there means "still joining").
    pub enum ConsumerKind ("consumer kind") {
        Worker = 1, "worker", "work queue: each frame to exactly one worker";
        Subscriber = 2, "subscriber", "broadcast: every frame to every subscriber";
        Latest = 3, "latest", "the newest complete frame, skipping older ones (any pattern)";
    }
}

vocabulary! {
    /// Why the ordered results reader delivers a frame without a result (result cell `cause`).
    pub enum SkipCause ("skip cause") {
        DroppedOldest = 1, "dropped-oldest", "the producer reused the frame's slot before any worker claimed it (drop-oldest)";
        DroppedNewest = 2, "dropped-newest", "the producer never published the frame: no slot was free (drop-newest)";
        WorkerDied = 3, "worker-died", "the worker holding the frame died before posting its result";
        Deadline = 4, "deadline", "no result came within the reader's deadline";
        NoResult = 5, "no-result", "the worker released the frame without posting a result";
        Overflow = 6, "overflow", "the reader was a whole results window behind when the frame's fate was decided";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: Vocabulary + core::fmt::Debug + core::str::FromStr<Err = UnknownName>>() {
        for (i, v) in T::ALL.iter().enumerate() {
            assert_eq!(T::from_code(v.code()), Some(*v));
            assert_eq!(T::from_name(v.name()), Ok(*v));
            for a in v.aliases() {
                assert_eq!(T::from_name(a), Ok(*v), "alias {a}");
            }
            assert!(T::ALL[..i].iter().all(|w| w.code() < v.code()), "codes ascend: {v:?}");
            assert!(T::ALL[..i].iter().all(|w| w.name() != v.name()), "names are unique: {v:?}");
            assert!(!v.about().is_empty());
        }
        let e = T::from_name("no-such-value").unwrap_err();
        assert_eq!(e.names().count(), T::ALL.len());
        assert!(e.names().zip(T::ALL).all(|(n, v)| n == v.name()));
    }

    #[test]
    fn every_vocabulary_round_trips_codes_and_names() {
        check::<PixelFormat>();
        check::<Pattern>();
        check::<OverflowPolicy>();
        check::<ConsumerKind>();
        check::<SkipCause>();
        assert_eq!(PixelFormat::from_u32(9), None);
        assert_eq!(ConsumerKind::from_code(0), None, "0 in the entry word means joining, not a kind");
    }

    /// `docs/LAYOUT.md` lists each code with its name: the rows agree with the tables here.
    #[test]
    fn the_layout_doc_names_every_code() {
        let doc = include_str!("../../docs/LAYOUT.md");
        fn row<T: Vocabulary>(doc: &str, field: &str) {
            let line = doc
                .lines()
                .find(|l| l.starts_with('|') && l.contains(field))
                .unwrap_or_else(|| panic!("LAYOUT.md has no row for {field}"));
            for v in T::ALL {
                let mut want: heapless::String<32> = heapless::String::new();
                core::fmt::write(&mut want, format_args!("{} `{}`", v.code(), v.name())).unwrap();
                assert!(line.contains(want.as_str()), "LAYOUT.md's {field} row lacks {want}: {line}");
            }
        }
        row::<Pattern>(doc, "| `pattern` |");
        row::<OverflowPolicy>(doc, "| `policy` |");
        row::<PixelFormat>(doc, "| `pixel_format` |");
        row::<ConsumerKind>(doc, "| `kind` |");
        // The skip causes are listed in the text of §6b, on the line that introduces them.
        let causes = doc.lines().skip_while(|l| !l.contains("`cause`: 1")).take(2).collect::<heapless::Vec<&str, 2>>();
        for c in SkipCause::ALL {
            let mut want: heapless::String<32> = heapless::String::new();
            core::fmt::write(&mut want, format_args!("{} `{}`", c.code(), c.name())).unwrap();
            assert!(causes.iter().any(|l| l.contains(want.as_str())), "LAYOUT.md §6b lacks {want}");
        }
    }

    #[test]
    fn parsing_ignores_case_and_takes_underscores_for_dashes() {
        assert_eq!("Drop_Newest".parse(), Ok(OverflowPolicy::DropNewest));
        assert_eq!("work_queue".parse(), Ok(Pattern::WorkQueue));
        assert_eq!("BGR".parse(), Ok(PixelFormat::Bgr24));
        assert!("drop oldest".parse::<OverflowPolicy>().is_err());
        assert!("drop-oldes".parse::<OverflowPolicy>().is_err());
    }
}
