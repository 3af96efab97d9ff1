//! Black-box tests: each starts a portal on port 0 with a fresh database and talks HTTP to it,
//! or runs the `portal` binary.

pub mod accounts;
mod alerts;
mod api;
mod cli;
pub mod crash;
mod dispatcher;
mod environments;
mod event_search;
mod helpers;
mod inspectors;
mod integration;
mod isolation;
mod layers;
mod logs;
mod operations;
mod portal_webhooks;
mod receiver;
mod roles;
mod scale;
mod security;
mod sessions;
mod webhooks;
