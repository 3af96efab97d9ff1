//! `GET /healthz` (the process answers) and `GET /readyz` (it can do its work: the database
//! answers, its schema is the one this build expects, and the dispatcher's loop is turning).
//! Both are public and cheap, for load balancers and orchestrators.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use app::state::AppState;
use app::store::{MIGRATOR, now_ms};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

/// A dispatcher whose loop has not gone round for this long is reported stuck. The loop turns
/// at least once a second.
const DISPATCHER_STALE_MS: i64 = 15_000;

/// What `/readyz` looks at besides the database: this process's dispatcher, if it runs one.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    /// The dispatcher's heartbeat; `None` with `--no-dispatcher`.
    pub dispatcher: Option<Arc<AtomicI64>>,
}

/// `GET /healthz`: 200 while the process serves requests.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 when every check passes; 503 naming the ones that failed.
pub async fn readyz(
    State(state): State<AppState>,
    axum::Extension(readiness): axum::Extension<Readiness>,
) -> (StatusCode, Json<Value>) {
    let mut checks = serde_json::Map::new();
    let mut ready = true;
    let expected = MIGRATOR.iter().map(|m| m.version).max().unwrap_or_default();
    let applied = sqlx::query("SELECT MAX(version) AS v FROM _sqlx_migrations WHERE success")
        .fetch_one(state.db.pool())
        .await
        .and_then(|row| row.try_get::<Option<i64>, _>("v"));
    match applied {
        Ok(v) => {
            checks.insert("database".into(), json!("ok"));
            if v == Some(expected) {
                checks.insert("migrations".into(), json!("ok"));
            } else {
                ready = false;
                checks.insert(
                    "migrations".into(),
                    json!(format!(
                        "the database is at {}, this build needs {expected}: run `portal migrate`",
                        v.unwrap_or(0)
                    )),
                );
            }
        }
        Err(e) => {
            ready = false;
            tracing::warn!(error = %e, "readiness: the database did not answer");
            checks.insert("database".into(), json!(format!("unreachable: {e}")));
        }
    }
    match &readiness.dispatcher {
        None => {
            checks.insert("dispatcher".into(), json!("not run by this process (--no-dispatcher)"));
        }
        Some(heartbeat) => {
            let age = now_ms() - heartbeat.load(Ordering::Relaxed);
            if age <= DISPATCHER_STALE_MS {
                checks.insert("dispatcher".into(), json!("ok"));
            } else {
                ready = false;
                checks.insert("dispatcher".into(), json!(format!("its loop has not turned for {} s", age / 1000)));
            }
        }
    }
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({ "status": if ready { "ready" } else { "not ready" }, "checks": checks })))
}
