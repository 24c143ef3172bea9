//! The `cryocube` program. Everything it does is in the library beside it (`lib.rs`), which
//! the Python package shares.

#![forbid(unsafe_code)]

/// mimalloc keeps freed memory for the next allocation of its size; glibc's malloc maps each
/// large buffer (a chunk, a rendered window) afresh and the kernel zeroes every page of it
/// again. That page clearing was 16 % of a 1 km polar build (0.275 s against 0.300 s, median
/// of 11 alternating runs) and a few per cent of a DAS task.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cryocube::main()
}
