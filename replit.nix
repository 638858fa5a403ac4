# Replit's system packages for .replit (see the comment there).
{ pkgs }: {
  deps = [
    # cargo and rustc through rustup: rust-toolchain.toml's pinned toolchain
    # and the wasm32-wasip2 target the guests need are installed on first use.
    pkgs.rustup
    # ring and wasmtime compile a little C.
    pkgs.gcc
  ];
}
