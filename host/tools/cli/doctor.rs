//! `hotline doctor`: checks a deployment from the outside (`URL`), or the
//! box the server runs on (`--local`), and prints one line per check
//! (`doctor/`). The exit code is 1 when a check failed.

use std::path::PathBuf;
use std::process::ExitCode;

use hotline_common::Secret;

use crate::doctor::{Report, Target};

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("where").required(true).args(["url", "local"]))]
pub struct DoctorArgs {
    /// The deployment's base URL, e.g. https://agent.example.
    pub url: Option<String>,
    /// Check this machine instead: $PORT and its listener, limits, disk, memory (the server's settings
    /// from the environment).
    #[arg(long, conflicts_with = "url")]
    pub local: bool,
    /// Sign the webhooks and the upgrade as Twilio does, with this auth token (the server's
    /// TWILIO_AUTH_TOKEN).
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// The public base URL the server's signatures cover (its PUBLIC_BASE_URL) [default: URL].
    #[arg(long)]
    pub public_url: Option<String>,
    /// Extra root certificates to trust (PEM), as the providers' clients do.
    #[arg(long, env = "HOTLINE_PROVIDER_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Print the checks as one JSON array of {check, status, evidence, fix}.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: DoctorArgs, get: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<ExitCode> {
    let report = match &args.url {
        Some(url) if !args.local => {
            crate::doctor::run_remote(Target {
                url: url.clone(),
                auth_token: args.auth_token.as_deref().map(Secret::new),
                public_url: args.public_url.clone(),
                ca_file: args.ca_file.clone(),
            })
            .await
        }
        _ => crate::doctor::run_local(get),
    };
    print(&report, args.json);
    Ok(if report.failed() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn print(report: &Report, json: bool) {
    if json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
}
