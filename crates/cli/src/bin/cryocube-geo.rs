//! `cryocube-geo`: the `cryocube` program with GDAL linked in, which `cryocube` hands the
//! commands that need GDAL to (`fetch`, `build`, a task or commit of a build plan, `view` with
//! vector overlays). It runs every command itself.

#![deny(unsafe_code)]

#[path = "../program.rs"]
mod program;

fn main() -> std::process::ExitCode {
    program::tune_allocator();
    cryocube::main()
}
