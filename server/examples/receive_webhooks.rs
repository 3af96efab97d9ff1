//! Receives this webhook's deliveries: POST /hooks/verifications on port $PORT (3000 by default).
//!
//! Cargo.toml:
//!   axum = "0.8"
//!   tokio = { version = "1", features = ["full"] }
//!   hmac = "0.12"
//!   sha2 = "0.10"
//!   hex = "0.4"
//!   subtle = "2"
//!   serde_json = "1"
//!   standardwebhooks = "1"
//!
//! Run: WEBHOOK_SECRET='whsec_…' WEBHOOK_AUTH_VALUE='…' cargo run

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use standardwebhooks::Webhook;
use subtle::ConstantTimeEq as _;

#[derive(Clone)]
struct Receiver {
    /// The signing secret shown on the webhook's page (`whsec_…`).
    secret: String,
    /// The Standard Webhooks check, with the same secret.
    standard: Arc<Webhook>,
    /// The value of your "X-Partner-Key" header.
    auth_value: String,
    /// `webhook-id` of the events already handled: keep these in your database.
    seen: Arc<Mutex<HashSet<String>>>,
}

#[tokio::main]
async fn main() {
    let env = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("set {name}"));
    let receiver = Receiver {
        secret: env("WEBHOOK_SECRET"),
        standard: Arc::new(Webhook::new(&env("WEBHOOK_SECRET")).expect("WEBHOOK_SECRET is a whsec_ secret")),
        auth_value: env("WEBHOOK_AUTH_VALUE"),
        seen: Arc::default(),
    };
    let app = Router::new().route("/hooks/verifications", post(receive)).with_state(receiver);
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await.expect("the port is free");
    axum::serve(listener, app).await.expect("the server runs");
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !same(header("X-Partner-Key"), &receiver.auth_value) {
        return (StatusCode::UNAUTHORIZED, "wrong auth header".into());
    }
    // x-webhook-signature: the hex HMAC-SHA256 of the raw body, keyed with the whole secret.
    let mut mac = Hmac::<Sha256>::new_from_slice(receiver.secret.as_bytes()).expect("HMAC takes any key");
    mac.update(&body);
    if !same(header("x-webhook-signature"), &hex::encode(mac.finalize().into_bytes())) {
        return (StatusCode::BAD_REQUEST, "invalid signature".into());
    }
    // Standard Webhooks: webhook-signature over "{id}.{timestamp}.{body}", within 5 minutes.
    if let Err(why) = receiver.standard.verify(&body, &headers) {
        return (StatusCode::BAD_REQUEST, format!("invalid signature: {why}"));
    }
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "the body is not JSON".into());
    };
    // A repeated delivery of an event already handled: answer 2xx and do nothing.
    if !receiver.seen.lock().expect("not poisoned").insert(header("webhook-id").to_owned()) {
        return (StatusCode::OK, "duplicate".into());
    }
    // Answer within 10 seconds; do the work afterwards.
    tokio::spawn(handle(event));
    (StatusCode::OK, "ok".into())
}

async fn handle(event: serde_json::Value) {
    let id = event["id"].as_str().unwrap_or_default();
    match event["type"].as_str().unwrap_or_default() {
        // A verification finished and its data was verified.
        "verification.completed" => println!("received verification.completed {id}"),
        // A verification ended without verifying the data (the source refused it, a document could not be read, the data did not match).
        "verification.failed" => println!("received verification.failed {id}"),
        // A verification was started but not finished before its session expired.
        "verification.expired" => println!("received verification.expired {id}"),
        // A person finished the manual review of a verification.
        "review.completed" => println!("received review.completed {id}"),
        // A type added later: ignore it until you handle it.
        _ => {}
    }
}

/// Compares in constant time.
fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}
