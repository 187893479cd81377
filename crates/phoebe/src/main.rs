//! The `phoebe` binary: parse the command line, start logging, run, map errors to an exit code.

fn main() -> std::process::ExitCode {
    phoebe::telemetry::init_logging();
    match phoebe::cli::main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
