//! `hotline guest test`: runs scenario files against a component, under the
//! same sandbox as `serve`; prints a pass/fail line per scenario.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::config::SandboxArgs;
use crate::sandbox::Sandbox;
use crate::scenario::run_file;

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The component under test (`.wasm`).
    pub component: PathBuf,
    /// Scenario files (JSON Lines; see docs/guests.md).
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
    /// The sandbox, as `serve` would have it.
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

/// Prints a pass/fail line per scenario; exits 1 if any failed.
/// `get` supplies the variables that shape the sandbox's defaults.
pub async fn run(args: TestArgs, get: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<ExitCode> {
    let sandbox = Sandbox::new(args.sandbox.config(get))?;
    let bytes = std::fs::read(&args.component).with_context(|| format!("reading {}", args.component.display()))?;
    let compiler = sandbox.clone();
    let guest = tokio::task::spawn_blocking(move || compiler.load(&bytes)).await??;
    let (mut passed, mut failed) = (0, 0);
    for path in &args.scenarios {
        let report = run_file(&guest, path).await?;
        if report.passed() {
            passed += 1;
            println!("PASS {}", report.name);
        } else {
            failed += 1;
            println!("FAIL {}", report.name);
            for failure in &report.failures {
                println!("     {failure}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
