//! `hotline call`: places a simulated Twilio call (or many, for a load run)
//! against a server and prints the timeline.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use hotline_common::Secret;

use crate::sim::{CallOptions, CallReport, Moment, place_call, reply_latencies, wav};

#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// Base URL of the hotline server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// What the caller says: a WAV file (any rate, width and channel count).
    /// Without one, the caller stays silent and hears the greeting.
    #[arg(long)]
    pub wav: Option<PathBuf>,
    /// Media speed: 1 is real time, 4 sends four frames per 20 ms.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Write the call as a stereo WAV (caller left, agent right).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Do not offer the `audio.twilio.com` subprotocol.
    #[arg(long)]
    pub no_subprotocol: bool,
    /// Press DTMF digits at media times, e.g. `1500:7,3000:9` (ms:digit).
    #[arg(long, value_parser = parse_dtmf, default_value = "")]
    pub dtmf: DtmfScript,
    /// Place this many calls at once (a load run); prints a summary.
    #[arg(long, default_value_t = 1)]
    pub calls: usize,
    /// Seconds of agent silence, after the audio, before hanging up.
    #[arg(long, default_value_t = 1.5)]
    pub idle_secs: f64,
    /// End-of-utterance silence the timeline's detector uses (match the server's HOTLINE_EOU_MS).
    #[arg(long, default_value_t = crate::config::EOU_MS_DEFAULT)]
    pub eou_ms: u32,
    /// Sign requests as Twilio does, with this auth token (the server's TWILIO_AUTH_TOKEN).
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// The public base URL the server's signatures cover (its PUBLIC_BASE_URL) [default: --url].
    #[arg(long)]
    pub public_url: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct DtmfScript(pub Vec<(u64, char)>);

fn parse_dtmf(s: &str) -> Result<DtmfScript, String> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (ms, digit) = item.split_once(':').ok_or(format!("{item:?} is not ms:digit"))?;
        let ms: u64 = ms.parse().map_err(|e| format!("{item:?}: {e}"))?;
        let mut chars = digit.chars();
        match (chars.next(), chars.next()) {
            (Some(d), None) if d.is_ascii_digit() || "*#ABCD".contains(d) => out.push((ms, d)),
            _ => return Err(format!("{item:?}: digit must be one of 0-9 * # A-D")),
        }
    }
    Ok(DtmfScript(out))
}

pub async fn run(args: CallArgs) -> anyhow::Result<ExitCode> {
    let audio = match &args.wav {
        Some(path) => wav::read_8k_mono(path)?,
        None => vec![0; 8000 * 2],
    };
    let base = CallOptions {
        server: args.url.trim_end_matches('/').to_string(),
        audio,
        speed: args.speed,
        subprotocol: !args.no_subprotocol,
        dtmf: args.dtmf.0.clone(),
        idle_ms: (args.idle_secs * 1000.0) as u64,
        eou_silence_ms: args.eou_ms,
        auth_token: args.auth_token.as_deref().map(Secret::new),
        public_url: args.public_url.clone(),
        ..CallOptions::default()
    };
    if args.calls <= 1 {
        let report = place_call(&base).await?;
        print_timeline(&report);
        if let Some(out) = &args.out {
            wav::write_stereo(out, &report.caller, &report.agent)?;
            println!("wrote {}", out.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    load_run(&args, base).await
}

async fn load_run(args: &CallArgs, base: CallOptions) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.calls {
        let opts = CallOptions { call_sid: format!("CAload{i:028}"), ..base.clone() };
        tasks.spawn(async move { place_call(&opts).await });
    }
    let (mut ok, mut failed, mut latencies) = (0, 0, Vec::new());
    while let Some(joined) = tasks.join_next().await {
        match joined.context("call task")? {
            Ok(report) => {
                ok += 1;
                latencies.extend(reply_latencies(&report));
            }
            Err(e) => {
                failed += 1;
                eprintln!("call failed: {e:#}");
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pct =
        |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
    println!(
        "{} calls in {:.1}s: {ok} ok, {failed} failed; EoU→reply latency ms p50 {:.1} p99 {:.1} (n={})",
        args.calls,
        started.elapsed().as_secs_f64(),
        pct(0.5),
        pct(0.99),
        latencies.len()
    );
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub fn print_timeline(report: &CallReport) {
    println!("subprotocol echoed: {}", report.subprotocol_echoed);
    for entry in &report.timeline {
        let what = match &entry.moment {
            Moment::StreamStart => "stream start".to_string(),
            Moment::CallerSpeechStart => "caller speech start".to_string(),
            Moment::CallerEou => "caller end of utterance (EoU)".to_string(),
            Moment::ReplyStart => "agent audio start (first reply frame)".to_string(),
            Moment::ReplyEnd => "agent audio end".to_string(),
            Moment::Clear => "clear (barge-in)".to_string(),
            Moment::MarkReceived(n) => format!("mark sent by server: {n}"),
            Moment::MarkEchoed(n) => format!("mark echoed (played): {n}"),
            Moment::Dtmf(d) => format!("dtmf {d}"),
            Moment::Ping => "ping from server".to_string(),
            Moment::Stop => "stop (caller hung up)".to_string(),
            Moment::ServerClosed(code, reason) => format!("server closed: {code} {reason}"),
        };
        println!("{:>9.0} ms  {what}", entry.at_ms);
    }
    for latency in reply_latencies(report) {
        println!("EoU → first reply frame: {latency:.0} ms");
    }
    println!(
        "frames: sent {}, received {} ({} not 160 bytes)",
        report.caller.len() / hotline_audio::FRAME_BYTES,
        report.frames_received,
        report.odd_frames
    );
}
