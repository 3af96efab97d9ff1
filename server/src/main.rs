//! `portal`: parse the command line, run, and report failure as one line.

use std::process::ExitCode;

use clap::Parser;

/// Stack of each runtime thread. Rendering a page nests deeply, and debug builds (the tests,
/// `cargo leptos watch`) use several times the stack of release ones; an overflow would abort
/// the whole process, so leave room.
const THREAD_STACK: usize = 8 * 1024 * 1024;

/// Allocations from this size up get pages of their own, given back when freed. glibc would
/// otherwise raise its threshold to the largest block freed so far, and keep argon2's 19 MiB
/// blocks in each thread's arena: a burst of sign-ins spread over many addresses (two checks
/// at a time) held about 800 MB that way, against about 120 MB with the threshold fixed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 4 * 1024 * 1024;

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt changes only glibc's allocation thresholds; no other thread runs yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
    // A payload-template worker of the sandbox (app::sandbox): no runtime, no database, no
    // configuration; the serving portal starts it.
    if std::env::args_os().nth(1).is_some_and(|arg| arg == app::sandbox::WORKER_ARG) {
        return app::sandbox::worker_main();
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK)
        .build()
        .expect("the async runtime starts")
        .block_on(run())
}

async fn run() -> ExitCode {
    use server::config::{Cli, Command, ServeArgs};
    // A bad flag or environment value ends here, with clap's one-line explanation.
    let cli = Cli::try_parse().unwrap_or_else(|e| e.exit());
    let command = cli.command.unwrap_or_else(|| Command::Serve(ServeArgs::from_env().unwrap_or_else(|e| e.exit())));
    server::telemetry::init();
    match server::run(&cli.database_url, command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` puts the cause chain on one line: "could not open the database: …".
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
