//! The `phoebe` binary: parse the command line, start logging, run, map errors to an exit code.

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    phoebe::telemetry::init_logging();
    match phoebe::cli::main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// glibc gives threads that allocate their own malloc arenas (up to eight per core), and after
/// a burst each arena keeps the memory it freed. Measured with `phoebe bench` (100,000 events,
/// 1,000 issues): four arenas cut peak RSS from 150–159 MB to 136–145 MB for 3–9 % more CPU
/// per event; two cut it to 123 MB but cost a third more CPU. `MALLOC_ARENA_MAX`, if set, wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only adjusts allocator settings; it runs before any other thread.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 4);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
