//! `hotline guest compile`: compiles a component (the built-in guest by
//! default) into the compile cache with the sandbox `serve` would have,
//! and exits. An image build runs it, so a container's first call does
//! not wait for the compiler (about half a second uncached).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::config::SandboxArgs;
use crate::sandbox::Sandbox;
use crate::versions::DEFAULT_GUEST;

#[derive(Debug, clap::Args)]
pub struct CompileArgs {
    /// The component (`.wasm`) [default: the built-in guest].
    pub component: Option<PathBuf>,
    /// The sandbox, as `serve` will have it: the cache entry is keyed by
    /// its settings, so give the same ones (the same variables do).
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

/// Exits 0 once the component's entry is in the cache; fails when there
/// is no cache to write (the reason is logged on stderr) or the component
/// does not load.
pub async fn run(args: CompileArgs, get: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<ExitCode> {
    let bytes = match &args.component {
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        None => DEFAULT_GUEST.to_vec(),
    };
    let sandbox = Sandbox::new(args.sandbox.config(get))?;
    let Some(dir) = sandbox.cache_dir().map(Path::to_path_buf) else {
        bail!("no compile cache to write to: set HOTLINE_CACHE_DIR to a directory only this user can write");
    };
    let started = Instant::now();
    let compiler = sandbox.clone();
    let guest = tokio::task::spawn_blocking(move || compiler.load(&bytes)).await??;
    let ms = started.elapsed().as_millis();
    let entry = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(guest.digest())));
    let Some(entry) = entry else {
        bail!("{} was compiled but could not be written to {} (see the log above)", guest.digest(), dir.display());
    };
    let how = if guest.from_cache() { "already compiled" } else { "compiled" };
    println!("{how} in {ms} ms: {} ({}), {}", guest.digest(), guest.contract(), entry.display());
    Ok(ExitCode::SUCCESS)
}
