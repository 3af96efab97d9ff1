//! The `portal` process: configuration, start-up, the sign-in guard, the REST API and the
//! command line. The application itself (pages, server functions, store) is the `app` crate.

pub mod cli;
pub mod config;
pub mod dispatcher;
pub mod guard;
pub mod health;
pub mod inspect;
pub mod metrics;
pub mod notifier;
pub mod refusals;
pub mod rest;
pub mod retention;
pub mod security;
pub mod session_ids;
pub mod site;
pub mod startup;
pub mod telemetry;

use config::{Command, ServeArgs};

/// Runs one command against the database at `database_url`.
pub async fn run(database_url: &str, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve(database_url, args).await,
        Command::Migrate => cli::migrate(database_url).await,
        Command::Partner(command) => cli::partner(database_url, command).await,
        Command::ApiKey(command) => cli::api_key(database_url, command).await,
        Command::User(command) => cli::user(database_url, command).await,
        Command::Event(command) => cli::event(database_url, command).await,
    }
}

async fn serve(database_url: &str, args: ServeArgs) -> anyhow::Result<()> {
    let application = startup::Application::build(database_url, args).await?;
    application.run_until(startup::shutdown_signal()).await
}
