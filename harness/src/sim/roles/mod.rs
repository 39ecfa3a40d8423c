//! The roles: each one process of the `framebus` binary (`framebus producer|worker`),
//! each one module owning its whole contract:
//!
//! - `Args`: the clap struct the role's subcommand parses *and* the orchestrator fills in and
//!   turns into a command line with [`to_argv`] (a unit test in each module round-trips it
//!   through clap, so the two cannot disagree); a flag is one field;
//! - its report type (JSON on stdout or in `--report FILE`);
//! - `run(&Args) -> Res<Report>`.
//!
//! Every role prints `ready` once it has opened its segments and registered ([`ready`]); the
//! orchestrator waits for that line. Roles know nothing of the orchestrator: they only meet it
//! through the frames segment (its slots and its results area) and their arguments.

pub mod producer;
pub mod worker;

use std::path::Path;

use super::Res;

/// The command line that `args` (a role's clap `Args`, also `Serialize`) parses back from:
/// each field `some_name` becomes `--some-name VALUE`; a true bool is a bare flag; a false
/// bool or a `None` is left out; a list is comma-joined (the field must say
/// `value_delimiter = ','`).
///
/// # Panics
/// When `args` does not serialize to a flat struct (a bug in a role's `Args`, caught by its
/// round-trip test).
pub fn to_argv<T: serde::Serialize>(args: &T) -> Vec<String> {
    use serde_json::Value;
    let Value::Object(fields) = serde_json::to_value(args).expect("a role's Args serialize") else {
        panic!("a role's Args serialize to a struct");
    };
    let scalar = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("a role's Args holds a nested value: {other}"),
    };
    let mut argv = Vec::new();
    for (name, value) in fields {
        let flag = format!("--{}", name.replace('_', "-"));
        match value {
            Value::Null | Value::Bool(false) => {}
            Value::Bool(true) => argv.push(flag),
            Value::Array(items) if items.is_empty() => {}
            Value::Array(items) => {
                argv.push(flag);
                argv.push(items.iter().map(scalar).collect::<Vec<_>>().join(","));
            }
            v => {
                argv.push(flag);
                argv.push(scalar(&v));
            }
        }
    }
    argv
}

/// Tells the orchestrator this role is up (its segments open, its consumers registered).
pub fn ready() {
    use std::io::Write as _;
    println!("ready");
    let _ = std::io::stdout().flush();
}

/// Writes a role's report as JSON to `path`, or to stdout.
///
/// # Errors
/// The file cannot be written.
pub fn emit<T: serde::Serialize>(report: &T, path: Option<&Path>) -> Res<()> {
    let json = serde_json::to_string(report)?;
    match path {
        Some(p) => std::fs::write(p, json).map_err(|e| format!("cannot write {}: {e}", p.display()).into()),
        None => {
            println!("{json}");
            Ok(())
        }
    }
}

/// A role started by an orchestrator dies with it: if the orchestrator is killed outright (no
/// chance to clean up), its roles do not run on; `framebus gc` then removes what it left.
pub fn die_with_parent() {
    #[cfg(target_os = "linux")]
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
}

#[cfg(test)]
pub(crate) fn round_trip<T>(args: &T)
where
    T: clap::Args + clap::FromArgMatches + serde::Serialize + PartialEq + std::fmt::Debug,
{
    let cmd = T::augment_args(clap::Command::new("role").no_binary_name(true));
    let argv = to_argv(args);
    let m = cmd.try_get_matches_from(&argv).unwrap_or_else(|e| panic!("{argv:?} does not parse: {e}"));
    let back = T::from_arg_matches(&m).unwrap();
    assert_eq!(&back, args, "{argv:?}");
}
