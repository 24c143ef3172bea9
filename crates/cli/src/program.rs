//! What the two programs, `cryocube` (`main.rs`) and `cryocube-geo` (`bin/cryocube-geo.rs`),
//! share: the allocator and its setting. Everything they do is in the library beside them
//! (`lib.rs`), which the Python package shares.

/// mimalloc keeps freed memory for the next allocation of its size; glibc's malloc maps each
/// large buffer (a chunk, a rendered window) afresh and the kernel zeroes every page of it
/// again. That page clearing was 16 % of a 1 km polar build (0.275 s against 0.300 s, median
/// of 11 alternating runs) and a few per cent of a DAS task.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option (the same index in its versions 2 and 3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets the allocator up for the command on the command line; called first thing in `main`.
pub(crate) fn tune_allocator() {
    if std::env::args_os().nth(1).is_some_and(|a| a == "view") {
        // The viewer's server promises a peak of its cache budget plus 100 MB. Faces are made
        // on many threads, and mimalloc keeps what each frees for 10 ms before returning it:
        // 40 concurrent faces peaked 211-227 MiB against 187-189 MiB when returned at once
        // (cache 128 MiB). Returning at once costs a page fault per reuse, which a batch job
        // pays dearly and a server answering a person does not.
        #[allow(unsafe_code)]
        // SAFETY: an option of the allocator, set before any other thread exists, as
        // mimalloc requires (`mi_option_set` is not thread safe).
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        }
    }
}
