//! The `cryocube` program. A command that needs GDAL runs in `cryocube-geo`, the same program
//! with GDAL linked in, installed beside this one (see `cryocube::main_handing_gdal_over`):
//! a DAS task then starts without loading GDAL's hundred-odd libraries.

#![deny(unsafe_code)]

mod program;

fn main() -> std::process::ExitCode {
    program::tune_allocator();
    cryocube::main_handing_gdal_over()
}
