//! placeholder
use std::process::ExitCode;
#[derive(clap::Args)]
pub struct CallArgs {}
pub async fn run_cli(_a: CallArgs) -> anyhow::Result<ExitCode> { Ok(ExitCode::SUCCESS) }
