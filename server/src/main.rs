//! `portal`: parse the command line, run, and report failure as one line.

use std::process::ExitCode;

use clap::Parser;

/// Stack of each runtime thread. Rendering a page nests deeply, and debug builds (the tests,
/// `cargo leptos watch`) use several times the stack of release ones; an overflow would abort
/// the whole process, so leave room.
const THREAD_STACK: usize = 8 * 1024 * 1024;

/// The allocator: mimalloc, which keeps each thread's small blocks apart where glibc's malloc
/// made the runtime's threads queue for an arena's lock (rows are allocated on the database
/// driver's threads and freed on the runtime's), and gives large blocks (argon2's 19 MiB)
/// back to the system when they are freed. The template sandbox's workers are this binary
/// too; their memory limit is set before they start (`app::sandbox`), so it holds for
/// mimalloc's own reservations as well.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
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
