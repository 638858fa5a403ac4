//! The `hotline` command: `serve` (the default) runs the server; `call`
//! places a simulated Twilio call against one.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hotline::config::Config;

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
    Call(hotline::sim::CallArgs),
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
    Push(hotline::push::PushArgs),
    /// Run scenario files against a component, under the same sandbox as `serve`.
    Test(hotline::scenario::TestArgs),
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hotline: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    hotline::providers::install_tls();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => {
            let mut config = Config::from_env()?;
            if args.guest.is_some() {
                config.guest_path = args.guest;
            }
            hotline::telemetry::init(config.log_format);
            runtime.block_on(hotline::http::serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Call(args) => runtime.block_on(hotline::sim::run_cli(args)),
        Command::Guest(GuestCommand::Push(args)) => runtime.block_on(hotline::push::run(args)),
        Command::Guest(GuestCommand::Test(args)) => runtime.block_on(hotline::scenario::run_cli(args)),
    }
}
