//! The `gavel` binary: the command line (`cli`) over the node library (`gavel`), the
//! kernel (`gavel_kernel`) and the tools (`gavel_tools`: bench and chaos).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
