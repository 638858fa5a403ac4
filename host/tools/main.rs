//! The `hotline` binary: the command line lives in `hotline::cli`
//! (`host/tools/cli/`).

use std::process::ExitCode;

fn main() -> ExitCode {
    match hotline::cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hotline: {e:#}");
            ExitCode::FAILURE
        }
    }
}
