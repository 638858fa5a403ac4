//! The WASI a guest's standard library links against, and all a guest
//! gets from it: no environment, no arguments, an empty stdin, a stdout
//! that discards, and a stderr kept (bounded) for the trap message, where
//! a panic's text lands. No clocks, random, files or sockets
//! (`engine.rs` refuses components that import them).
//!
//! Why not wasmtime-wasi: its synchronous bindings run their stream
//! methods through a Tokio `block_on`, which panics on a Tokio worker, and
//! its asynchronous ones make every guest call run on a fiber of its own.
//! A guest call here is a few microseconds, 50 times a second in every
//! call; a fiber made and switched to for each was a twentieth of the
//! host's CPU, and its stack 8 KiB of each call's memory. These streams
//! never wait, so every function returns at once and a guest call is a
//! plain function call on the worker's stack.
//!
//! Resources are never stored: a stream's handle names which stream it is
//! (`STDOUT`, `STDERR`, `STDIN`), and every pollable is always ready.

use wasmtime::component::{HasSelf, Linker, Resource};

use super::engine::CallState;

wasmtime::component::bindgen!({
    path: "wasi/wit",
    world: "guest-std",
    imports: { default: trappable },
});

use wasi::cli::{environment, exit, stderr, stdin, stdout, terminal_input, terminal_output};
use wasi::cli::{terminal_stderr, terminal_stdin, terminal_stdout};
use wasi::io::error::{self, Error};
use wasi::io::poll::{self, Pollable};
use wasi::io::streams::{self, InputStream, OutputStream, StreamError};

/// The handles' representations: which stream a handle is.
const STDIN: u32 = 0;
const STDOUT: u32 = 1;
const STDERR: u32 = 2;

/// What a write may take at once (`check-write`), as WASI hosts commonly
/// allow.
const WRITE_BUDGET: u64 = 4096;

type Result<T> = wasmtime::Result<T>;
type StreamResult<T> = wasmtime::Result<std::result::Result<T, StreamError>>;

pub(super) fn add_to_linker(linker: &mut Linker<CallState>) -> Result<()> {
    GuestStd::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| state)
}

impl CallState {
    /// Keeps what fits of a write to stderr; stdout discards.
    fn take(&mut self, stream: &Resource<OutputStream>, bytes: &[u8]) {
        if stream.rep() == STDERR {
            let room = self.stderr_limit.saturating_sub(self.stderr.len());
            self.stderr.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }
}

impl streams::Host for CallState {}

impl streams::HostOutputStream for CallState {
    fn check_write(&mut self, _: Resource<OutputStream>) -> StreamResult<u64> {
        Ok(Ok(WRITE_BUDGET))
    }

    fn write(&mut self, stream: Resource<OutputStream>, contents: Vec<u8>) -> StreamResult<()> {
        self.take(&stream, &contents);
        Ok(Ok(()))
    }

    fn blocking_write_and_flush(&mut self, stream: Resource<OutputStream>, contents: Vec<u8>) -> StreamResult<()> {
        self.write(stream, contents)
    }

    fn flush(&mut self, _: Resource<OutputStream>) -> StreamResult<()> {
        Ok(Ok(()))
    }

    fn blocking_flush(&mut self, _: Resource<OutputStream>) -> StreamResult<()> {
        Ok(Ok(()))
    }

    fn subscribe(&mut self, _: Resource<OutputStream>) -> Result<Resource<Pollable>> {
        Ok(Resource::new_own(0))
    }

    fn write_zeroes(&mut self, stream: Resource<OutputStream>, len: u64) -> StreamResult<()> {
        let len = len.min(self.stderr_limit as u64) as usize;
        self.take(&stream, &vec![0; len]);
        Ok(Ok(()))
    }

    fn blocking_write_zeroes_and_flush(&mut self, stream: Resource<OutputStream>, len: u64) -> StreamResult<()> {
        self.write_zeroes(stream, len)
    }

    /// Only stdin can be read from, and it is empty.
    fn splice(&mut self, _: Resource<OutputStream>, _: Resource<InputStream>, _: u64) -> StreamResult<u64> {
        Ok(Err(StreamError::Closed))
    }

    fn blocking_splice(&mut self, _: Resource<OutputStream>, _: Resource<InputStream>, _: u64) -> StreamResult<u64> {
        Ok(Err(StreamError::Closed))
    }

    fn drop(&mut self, _: Resource<OutputStream>) -> Result<()> {
        Ok(())
    }
}

/// Stdin: at its end from the start.
impl streams::HostInputStream for CallState {
    fn read(&mut self, _: Resource<InputStream>, _: u64) -> StreamResult<Vec<u8>> {
        Ok(Err(StreamError::Closed))
    }

    fn blocking_read(&mut self, _: Resource<InputStream>, _: u64) -> StreamResult<Vec<u8>> {
        Ok(Err(StreamError::Closed))
    }

    fn skip(&mut self, _: Resource<InputStream>, _: u64) -> StreamResult<u64> {
        Ok(Err(StreamError::Closed))
    }

    fn blocking_skip(&mut self, _: Resource<InputStream>, _: u64) -> StreamResult<u64> {
        Ok(Err(StreamError::Closed))
    }

    fn subscribe(&mut self, _: Resource<InputStream>) -> Result<Resource<Pollable>> {
        Ok(Resource::new_own(0))
    }

    fn drop(&mut self, _: Resource<InputStream>) -> Result<()> {
        Ok(())
    }
}

/// Every pollable is ready: nothing here ever waits.
impl poll::Host for CallState {
    fn poll(&mut self, pollables: Vec<Resource<Pollable>>) -> Result<Vec<u32>> {
        Ok((0..pollables.len() as u32).collect())
    }
}

impl poll::HostPollable for CallState {
    fn ready(&mut self, _: Resource<Pollable>) -> Result<bool> {
        Ok(true)
    }

    fn block(&mut self, _: Resource<Pollable>) -> Result<()> {
        Ok(())
    }

    fn drop(&mut self, _: Resource<Pollable>) -> Result<()> {
        Ok(())
    }
}

/// No stream here fails with an error, so none is ever made.
impl error::Host for CallState {}

impl error::HostError for CallState {
    fn to_debug_string(&mut self, _: Resource<Error>) -> Result<String> {
        Ok(String::new())
    }

    fn drop(&mut self, _: Resource<Error>) -> Result<()> {
        Ok(())
    }
}

impl environment::Host for CallState {
    fn get_environment(&mut self) -> Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }

    fn get_arguments(&mut self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn initial_cwd(&mut self) -> Result<Option<String>> {
        Ok(None)
    }
}

/// A guest that exits ends its call the way a trap does.
impl exit::Host for CallState {
    fn exit(&mut self, status: std::result::Result<(), ()>) -> Result<()> {
        let status = if status.is_ok() { "success" } else { "failure" };
        Err(wasmtime::format_err!("guest called exit ({status})"))
    }

    fn exit_with_code(&mut self, code: u8) -> Result<()> {
        Err(wasmtime::format_err!("guest called exit ({code})"))
    }
}

impl stdin::Host for CallState {
    fn get_stdin(&mut self) -> Result<Resource<InputStream>> {
        Ok(Resource::new_own(STDIN))
    }
}

impl stdout::Host for CallState {
    fn get_stdout(&mut self) -> Result<Resource<OutputStream>> {
        Ok(Resource::new_own(STDOUT))
    }
}

impl stderr::Host for CallState {
    fn get_stderr(&mut self) -> Result<Resource<OutputStream>> {
        Ok(Resource::new_own(STDERR))
    }
}

/// No terminal: the guest's std then prints without colours.
impl terminal_input::Host for CallState {}
impl terminal_input::HostTerminalInput for CallState {
    fn drop(&mut self, _: Resource<terminal_input::TerminalInput>) -> Result<()> {
        Ok(())
    }
}
impl terminal_output::Host for CallState {}
impl terminal_output::HostTerminalOutput for CallState {
    fn drop(&mut self, _: Resource<terminal_output::TerminalOutput>) -> Result<()> {
        Ok(())
    }
}
impl terminal_stdin::Host for CallState {
    fn get_terminal_stdin(&mut self) -> Result<Option<Resource<terminal_input::TerminalInput>>> {
        Ok(None)
    }
}
impl terminal_stdout::Host for CallState {
    fn get_terminal_stdout(&mut self) -> Result<Option<Resource<terminal_output::TerminalOutput>>> {
        Ok(None)
    }
}
impl terminal_stderr::Host for CallState {
    fn get_terminal_stderr(&mut self) -> Result<Option<Resource<terminal_output::TerminalOutput>>> {
        Ok(None)
    }
}
