//! `portal`: parse the command line, run, and report failure as one line.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
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
