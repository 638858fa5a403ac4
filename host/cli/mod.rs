//! The `hotline` command line: `serve` (the default) runs the server;
//! `call` places a simulated Twilio call against one; `guest push` and
//! `guest test` work with call-logic components.

mod call;
mod guest_test;
mod push;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Parser)]
#[command(name = "hotline", version, about = "A host for phone-call AI agents")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server on $PORT (the default command). Settings come from the
    /// environment; see the README.
    Serve(ServeArgs),
    /// Place a simulated Twilio call: webhook, TwiML, WebSocket, real-time audio.
    Call(call::CallArgs),
    /// Work with call-logic components.
    #[command(subcommand)]
    Guest(GuestCommand),
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// Call-logic component to run instead of the built-in guest (same as HOTLINE_GUEST).
    #[arg(long)]
    guest: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum GuestCommand {
    /// Upload a component to a running server (needs HOTLINE_ADMIN_TOKEN there).
    Push(push::PushArgs),
    /// Run scenario files against a component, under the same sandbox as `serve`.
    Test(guest_test::TestArgs),
}

/// Parses the command line and runs the command.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    crate::providers::install_tls();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => {
            let mut config = Config::from_env()?;
            if args.guest.is_some() {
                config.guest_path = args.guest;
            }
            crate::telemetry::init(config.log_format);
            runtime.block_on(crate::http::serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Call(args) => runtime.block_on(call::run(args)),
        Command::Guest(GuestCommand::Push(args)) => runtime.block_on(push::run(args)),
        Command::Guest(GuestCommand::Test(args)) => runtime.block_on(guest_test::run(args)),
    }
}
