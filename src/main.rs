//! The `gavel` binary: everything it does lives in `gavel::cli`.

fn main() -> std::process::ExitCode {
    gavel::cli::main()
}
