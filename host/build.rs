//! The server's build script: builds the guest workspace (`guest/`) into
//! wasm32-wasip2 components and tells the server where they are
//! (`HOTLINE_GUEST_<NAME>_WASM`; the server embeds the default one), and
//! the `hotline` crate too, through `links` metadata (the root `build.rs`
//! passes them on to its tests); embeds the dashboard (`ui/dist`) and the
//! commit for `/version`.
//!
//! The nested cargo gets its own target dir under OUT_DIR and a scrubbed
//! environment, so the host's flags (RUSTFLAGS for x86, coverage, the
//! outer target dir) never leak into the wasm build.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
/// Guest crates that become components, and the env var naming each.
/// The binary embeds just the default guest; `examples/` and `testing/`
/// are built so the tests can load them.
const COMPONENTS: &[(&str, &str)] = &[
    ("hotline_guest_default", "HOTLINE_GUEST_DEFAULT_WASM"),
    ("hotline_guest_dtmf", "HOTLINE_GUEST_DTMF_WASM"),
    ("hotline_guest_orders", "HOTLINE_GUEST_ORDERS_WASM"),
    ("hotline_guest_probe", "HOTLINE_GUEST_PROBE_WASM"),
    ("hotline_guest_v2", "HOTLINE_GUEST_V2_WASM"),
    ("hotline_guest_broken", "HOTLINE_GUEST_BROKEN_WASM"),
    ("hotline_guest_other_world", "HOTLINE_GUEST_OTHER_WORLD_WASM"),
    ("hotline_guest_clock", "HOTLINE_GUEST_CLOCK_WASM"),
];

fn main() {
    // This package is `host/`; the repository's root is above it.
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).parent().unwrap().to_path_buf();
    let guest = root.join("guest");
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    for dir in ["Cargo.toml", "Cargo.lock", "audio", "twiml", "agent", "default", "examples", "testing"] {
        println!("cargo:rerun-if-changed={}", guest.join(dir).display());
    }
    emit_git_commit(&root);
    embed_dashboard(&root);

    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    ensure_target(&rustc);

    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let target_dir = out.join("guest-target");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&guest)
        .args(["build", "--release", "--locked", "--target", TARGET, "--workspace"])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTC", &rustc);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_LLVM_COV",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("failed to run cargo for the guest workspace");
    assert!(status.success(), "building the guest components (guest/) failed; see the errors above");

    let built = target_dir.join(TARGET).join("release");
    for (krate, var) in COMPONENTS {
        let wasm = built.join(format!("{krate}.wasm"));
        assert!(wasm.exists(), "expected component at {}", wasm.display());
        println!("cargo:rustc-env={var}={}", wasm.display());
        // For the crates that depend on this one: `DEP_HOTLINE_GUESTS_<var>`.
        println!("cargo::metadata={var}={}", wasm.display());
    }
}

/// The README's commands must work on a machine that lacks the wasm target,
/// and automatic toolchain installs may be off, so add it when missing.
fn ensure_target(rustc: &str) {
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(sysroot) = &sysroot
        && sysroot.join("lib/rustlib").join(TARGET).exists()
    {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup (needed for the guest components)");
    let ok = Command::new("rustup").args(["target", "add", TARGET]).status().map(|s| s.success()).unwrap_or(false);
    assert!(ok, "the {TARGET} target is missing and `rustup target add {TARGET}` failed; install it and build again");
}

/// The dashboard's built files (`ui/dist`, committed, so building needs no
/// Node) as a list of `include_bytes!`, for `host/http/dashboard.rs`.
fn embed_dashboard(root: &Path) {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let dist = root.join("ui/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut files = Vec::new();
    walk(&dist, &mut files);
    files.sort();
    let mut code = String::from("pub static FILES: &[(&str, &[u8])] = &[\n");
    for file in &files {
        let name = file.strip_prefix(&dist).unwrap().to_string_lossy().replace('\\', "/");
        code.push_str(&format!("    ({name:?}, include_bytes!({:?})),\n", file.display().to_string()));
    }
    code.push_str("];\n");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("dashboard_files.rs");
    std::fs::write(out, code).expect("writing the dashboard's file list");
}

fn emit_git_commit(root: &Path) {
    let head = root.join(".git/HEAD");
    if head.exists() {
        println!("cargo:rerun-if-changed={}", head.display());
        if let Ok(text) = std::fs::read_to_string(&head)
            && let Some(r) = text.strip_prefix("ref: ")
        {
            println!("cargo:rerun-if-changed={}", root.join(".git").join(r.trim()).display());
        }
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=HOTLINE_GIT_COMMIT={commit}");
}
