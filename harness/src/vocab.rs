//! The command line's words for the core's vocabulary (`framebus_core::vocab`: pixel formats,
//! patterns, policies, consumer kinds) and for the platform's backings.
//!
//! A flag that takes a vocabulary value is declared with [`parser`] (or [`parser_of`] for a
//! subset) and typed with the core enum itself, so the accepted names, their `--help` lines
//! and the error for a wrong one all come from the core's table:
//!
//! ```
//! use framebus_harness::vocab;
//! use framebus_platform::core::OverflowPolicy;
//! #[derive(clap::Parser)]
//! struct Cli {
//!     #[arg(long, value_parser = vocab::parser::<OverflowPolicy>(), default_value_t = OverflowPolicy::Block)]
//!     policy: OverflowPolicy,
//! }
//! let cli: Cli = clap::Parser::try_parse_from(["x", "--policy", "drop-oldest"]).unwrap();
//! assert_eq!(cli.policy, OverflowPolicy::DropOldest);
//! let e = <Cli as clap::Parser>::try_parse_from(["x", "--policy", "later"]).err().unwrap();
//! assert!(e.to_string().contains("unknown overflow policy: use block, drop-oldest or drop-newest"));
//! ```

use clap::builder::{PossibleValue, TypedValueParser};
use framebus_platform::core::vocab::Vocabulary;

/// A clap value parser for every value of the vocabulary `T`.
pub fn parser<T: Vocabulary + Send + Sync>() -> VocabParser<T> {
    VocabParser { only: T::ALL }
}

/// A clap value parser for the values `only` of `T` (others are refused with the list of these).
pub fn parser_of<T: Vocabulary + Send + Sync>(only: &'static [T]) -> VocabParser<T> {
    VocabParser { only }
}

/// See [`parser`].
#[derive(Clone, Copy, Debug)]
pub struct VocabParser<T: 'static> {
    only: &'static [T],
}

impl<T: Vocabulary + Send + Sync> TypedValueParser for VocabParser<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        let flag = arg.map_or_else(|| "value".to_string(), |a| format!("--{}", a.get_id()));
        let text = value.to_str().unwrap_or("");
        let refuse = |why: &str| {
            let names: Vec<&str> = self.only.iter().map(|v| v.name()).collect();
            let list = match names.split_last() {
                Some((last, [])) => (*last).to_string(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => String::new(),
            };
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!("{flag} {text:?}: {why} {}: use {list}\n", T::WHAT),
            )
            .with_cmd(cmd)
        };
        match T::from_name(text) {
            Ok(v) if self.only.contains(&v) => Ok(v),
            Ok(_) => Err(refuse("this command does not take that")),
            Err(_) => Err(refuse("unknown")),
        }
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(self.only.iter().map(|v| PossibleValue::new(v.name()).help(v.about()))))
    }
}

/// Where a segment's memory comes from (`--backing`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackingArg {
    /// a named POSIX shared-memory object
    #[default]
    Posix,
    /// an anonymous memfd passed by descriptor
    Memfd,
    /// a dma-buf heap allocation (/dev/dma_heap/system)
    Dmabuf,
    /// a memfd exported as a dma-buf through /dev/udmabuf
    Udmabuf,
}

impl BackingArg {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            BackingArg::Posix => "posix",
            BackingArg::Memfd => "memfd",
            BackingArg::Dmabuf => "dmabuf",
            BackingArg::Udmabuf => "udmabuf",
        }
    }

    /// Creates the segment `name` for `spec` on this backing.
    ///
    /// # Errors
    /// The platform's error (an anonymous backing where the kernel lacks it says so).
    pub fn create(
        self,
        name: &str,
        spec: &framebus_platform::core::SegmentSpec,
    ) -> Result<framebus_platform::SharedSegment, framebus_platform::Error> {
        use framebus_platform::{CreateOptions, SharedSegment};
        match self {
            BackingArg::Posix => SharedSegment::create(name, spec, CreateOptions::default()),
            BackingArg::Memfd => SharedSegment::create_memfd(name, spec),
            BackingArg::Dmabuf => SharedSegment::create_dmabuf("system", name, spec),
            BackingArg::Udmabuf => SharedSegment::create_udmabuf(name, spec),
        }
    }

    /// The segment has a name other processes can open (otherwise its descriptor is passed).
    pub fn is_named(self) -> bool {
        self == BackingArg::Posix
    }
}

/// Serializes a vocabulary value as its name (for the roles' `to_argv`).
///
/// # Errors
/// Never, beyond the serializer's own.
pub fn ser<T: Vocabulary, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.name())
}

/// As [`ser`], for an optional value.
///
/// # Errors
/// Never, beyond the serializer's own.
pub fn ser_opt<T: Vocabulary, S: serde::Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(v.name()),
        None => s.serialize_none(),
    }
}
