//! `webissued-bench`: see the library's documentation.

fn main() -> std::process::ExitCode {
    webissued_bench::main(clap::Parser::parse())
}
