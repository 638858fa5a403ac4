//! `hotline guest push`: uploads a component to a running server's admin
//! API and reports the outcome; exits non-zero when the server rejects it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The component to upload (`.wasm`).
    pub component: PathBuf,
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The server's HOTLINE_ADMIN_TOKEN.
    #[arg(long, env = "HOTLINE_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
}

pub async fn run(args: PushArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.component).with_context(|| format!("reading {}", args.component.display()))?;
    let url = format!("{}/admin/guest", args.url.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .put(&url)
        .bearer_auth(&args.token)
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .with_context(|| format!("PUT {url}"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if status.is_success() {
        let active = &body["active"];
        println!(
            "active: {} (validated in {} ms)",
            active["digest"].as_str().unwrap_or("?"),
            active["load_ms"].as_u64().unwrap_or(0)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let error = &body["error"];
    match (error["step"].as_str(), error["reason"].as_str()) {
        (Some(step), Some(reason)) => eprintln!("rejected at {step}: {reason}"),
        _ => eprintln!("server answered {status}"),
    }
    eprintln!("the active version is unchanged");
    Ok(ExitCode::from(2))
}
