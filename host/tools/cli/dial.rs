//! `hotline dial +1555…`: asks a running server to place an outbound call
//! (`POST /api/calls`, which uses that server's Twilio account and public
//! URL); prints the new call's SID, or the server's reason and exits 2.

use std::process::ExitCode;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct DialArgs {
    /// The number to call (E.164, e.g. +15551234567).
    pub to: String,
    /// The caller ID to show (one of the account's numbers). [default: the server's HOTLINE_DIAL_FROM]
    #[arg(long)]
    pub from: Option<String>,
    /// Answering-machine detection: true or false. [default: on when the server has HOTLINE_VOICEMAIL_MESSAGE]
    #[arg(long)]
    pub detect_machine: Option<bool>,
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The server's HOTLINE_ADMIN_TOKEN.
    #[arg(long, env = "HOTLINE_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
}

pub async fn run(args: DialArgs) -> anyhow::Result<ExitCode> {
    let url = format!("{}/api/calls", args.url.trim_end_matches('/'));
    let mut body = serde_json::json!({ "to": args.to });
    if let Some(from) = &args.from {
        body["from"] = from.as_str().into();
    }
    if let Some(detect) = args.detect_machine {
        body["detect_machine"] = detect.into();
    }
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&args.token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await.unwrap_or_default();
    if status.is_success() {
        println!("{} ({})", answer["call_sid"].as_str().unwrap_or("?"), answer["status"].as_str().unwrap_or("?"));
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("not placed: {}", answer["error"].as_str().unwrap_or(status.as_str()));
    Ok(ExitCode::from(2))
}
