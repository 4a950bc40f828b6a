//! The `lanceflow` binary: everything lives in the `lanceflow_cli` library,
//! which the Python package's entry point runs too.

fn main() -> std::process::ExitCode {
    lanceflow_cli::main()
}
