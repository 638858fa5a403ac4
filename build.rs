//! The `hotline` crate's build script: the guest components are built
//! once, by the server's (`host/build.rs`), which hands their paths to the
//! crates that depend on it as `links` metadata; here they become the
//! `HOTLINE_GUEST_<NAME>_WASM` variables the tests and benches name with
//! `env!`.

use std::env;

const PREFIX: &str = "DEP_HOTLINE_GUESTS_";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let mut found = 0;
    for (key, value) in env::vars() {
        if let Some(var) = key.strip_prefix(PREFIX) {
            println!("cargo:rerun-if-env-changed={key}");
            println!("cargo:rustc-env={var}={value}");
            found += 1;
        }
    }
    assert!(found > 0, "hotline-server's build script passed no guest components ({PREFIX}*)");
}
