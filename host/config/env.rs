//! Settings from environment variables, through a lookup function rather
//! than the process environment (`std::env::var` for `hotline`, a map in
//! tests). Each argument's `env` name is looked up, its value trimmed (an
//! empty one counts as unset) and passed as `--long=value` ahead of the
//! command line's own arguments, which override it. clap's own reading of
//! the environment is switched off, so the lookup is the only source, and a
//! bad value is reported with its variable's name.

use std::ffi::OsString;

use anyhow::anyhow;
use clap::error::{ContextKind, ContextValue};
use clap::{ArgMatches, Command};

/// A variable that has a value, as the argument it stands for.
struct Variable {
    name: String,
    long: String,
    value: String,
    secret: bool,
}

/// Parses `argv` (program name first) against `cmd`; the settings of the
/// (sub)command that `argv` names come first from `get`.
pub fn parse_with_env(
    cmd: Command,
    argv: Vec<OsString>,
    get: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<ArgMatches> {
    let mut built = cmd.clone();
    built.build();
    let (mut target, mut at) = (&built, 1);
    while let Some(sub) = argv.get(at).and_then(|token| target.find_subcommand(token)) {
        target = sub;
        at += 1;
    }
    let variables: Vec<Variable> = target
        .get_arguments()
        .filter_map(|arg| {
            let name = arg.get_env()?.to_str()?.to_string();
            let value = get(&name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())?;
            let long = arg.get_long().expect("a setting with a variable has a --flag too").to_string();
            Some(Variable { name, long, value, secret: arg.is_hide_env_values_set() })
        })
        .collect();
    let mut argv = argv;
    argv.splice(at..at, variables.iter().map(|v| OsString::from(format!("--{}={}", v.long, v.value))));
    // A flag given twice (by its variable, then by hand) keeps its last value.
    let cmd = without_env(cmd).args_override_self(true);
    cmd.try_get_matches_from(argv).map_err(|e| name_the_variable(e, &variables))
}

/// `cmd` with no argument reading the process environment.
fn without_env(cmd: Command) -> Command {
    cmd.mut_args(|arg| arg.env(None)).mut_subcommands(without_env)
}

/// A refused value that came from a variable, as `NAME="value": reason`
/// (a secret's value left out); anything else as clap reports it.
fn name_the_variable(e: clap::Error, variables: &[Variable]) -> anyhow::Error {
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    let (Some(arg), Some(value)) = (context(ContextKind::InvalidArg), context(ContextKind::InvalidValue)) else {
        return e.into();
    };
    let flag = |v: &Variable| format!("--{}", v.long);
    let from = variables.iter().find(|v| v.value == value && arg.split(' ').next() == Some(flag(v).as_str()));
    let Some(variable) = from else {
        return e.into();
    };
    let reason = match (std::error::Error::source(&e), e.get(ContextKind::ValidValue)) {
        (Some(source), _) => source.to_string(),
        (None, Some(ContextValue::Strings(valid))) => format!("must be one of {}", valid.join(", ")),
        (None, _) => e.kind().as_str().unwrap_or("invalid value").to_string(),
    };
    match variable.secret {
        true => anyhow!("{}: {reason}", variable.name),
        false => anyhow!("{}={value:?}: {reason}", variable.name),
    }
}
