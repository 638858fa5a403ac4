//! The `hotline` command line: `serve` (the default) runs the server;
//! `call` places a simulated Twilio call against one; `dial` has one place
//! a real outbound call; `doctor` checks a deployment (or this box);
//! `bench` measures a server under rising numbers of calls; `guest push`,
//! `guest test` and `guest compile` work with call-logic components.

mod bench;
mod call;
mod dial;
mod doctor;
mod guest_compile;
mod guest_test;
mod push;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{Config, ServeArgs, parse_with_env};

#[derive(Parser)]
#[command(name = "hotline", version, about = "A host for phone-call AI agents")]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `hotline` with no subcommand is `hotline serve`: the same settings.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server on $PORT (the default command). Each setting is a
    /// variable (see docs/configuration.md) or a flag, which wins.
    Serve(Box<ServeArgs>),
    /// Place a simulated Twilio call: webhook, TwiML, WebSocket, real-time audio.
    Call(call::CallArgs),
    /// Have a running server place a real outbound call (Twilio's REST API; needs its admin token).
    Dial(dial::DialArgs),
    /// Check a deployment from the outside (URL), or the box the server runs on (--local): one line per
    /// check, PASS / WARN / FAIL with the evidence and the usual fix; exit code 1 when a check fails.
    Doctor(doctor::DoctorArgs),
    /// Measure a server (this one, started pinned to a core, or --url) and
    /// optionally a peer, at rising numbers of concurrent real-time calls.
    Bench(bench::BenchArgs),
    /// Work with call-logic components.
    #[command(subcommand)]
    Guest(GuestCommand),
}

#[derive(Subcommand)]
enum GuestCommand {
    /// Upload a component to a running server (needs HOTLINE_ADMIN_TOKEN there).
    Push(push::PushArgs),
    /// Run scenario files against a component, under the same sandbox as `serve`.
    Test(guest_test::TestArgs),
    /// Compile a component (the built-in guest by default) into the compile cache, and exit.
    Compile(guest_compile::CompileArgs),
}

/// The whole command line's definition, every setting with its variable.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Parses the command line and runs the command.
pub fn run() -> anyhow::Result<ExitCode> {
    let get = |k: &str| std::env::var(k).ok();
    let (cli, matches) = parse(std::env::args_os().collect(), &get)?;
    crate::providers::install_tls();
    if let Some(Command::Bench(args)) = cli.command {
        // Pins itself to a core before it builds its own runtime.
        return bench::run(args);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        None | Some(Command::Serve(_)) => {
            let config = Config::from_matches(matches.subcommand_matches("serve").unwrap_or(&matches), &get)?;
            // Held to the end: dropping it flushes the log.
            let _log = hotline_telemetry::init(config.log_format);
            runtime.block_on(crate::http::serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Bench(_)) => unreachable!("handled above"),
        Some(Command::Call(args)) => runtime.block_on(call::run(args)),
        Some(Command::Dial(args)) => runtime.block_on(dial::run(args)),
        Some(Command::Doctor(args)) => runtime.block_on(doctor::run(args, &get)),
        Some(Command::Guest(GuestCommand::Push(args))) => runtime.block_on(push::run(args)),
        Some(Command::Guest(GuestCommand::Test(args))) => runtime.block_on(guest_test::run(args, &get)),
        Some(Command::Guest(GuestCommand::Compile(args))) => {
            // The cache's refusals are logged: show them.
            let _log = hotline_telemetry::init(hotline_telemetry::LogFormat::Text);
            runtime.block_on(guest_compile::run(args, &get))
        }
    }
}

/// The command line with the variables of the chosen command's settings;
/// clap's own errors (and help) end the process as clap does.
fn parse(argv: Vec<OsString>, get: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<(Cli, ArgMatches)> {
    let error = match parse_with_env(Cli::command(), argv.clone(), get) {
        Ok(matches) => return Ok((Cli::from_arg_matches(&matches)?, matches)),
        // Not a clap error: a variable's value was refused.
        Err(e) => e.downcast::<clap::Error>()?,
    };
    if matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
        // Help from the definitions as written, with their variables.
        Cli::command().get_matches_from(argv);
    }
    error.exit()
}
