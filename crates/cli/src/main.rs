//! The `cryocube` program. Everything it does is in the library beside it (`lib.rs`), which
//! the Python package shares.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    cryocube::main()
}
