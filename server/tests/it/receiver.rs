//! A real HTTP receiver on 127.0.0.1 that records what it gets and answers as a test scripts
//! it: a status, a redirect, or a hang.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// This status, with this body.
    Status(u16, &'static str),
    /// A redirect to this path on the same receiver.
    Redirect(&'static str),
    /// No answer for this long, then 200.
    Hang(Duration),
    /// No answer for this long, then this status.
    Late(Duration, u16),
    /// This status with a `Retry-After` header of this value.
    RetryAfter(u16, &'static str),
}

/// One request as the receiver got it.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    script: VecDeque<Reply>,
    otherwise: Option<Reply>,
}

/// A running receiver.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = {
        let mut inner = inner.lock().unwrap();
        inner.received.push(Received {
            at: Instant::now(),
            path: uri.path().to_owned(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        inner.script.pop_front().or_else(|| inner.otherwise.clone()).unwrap_or(Reply::Status(200, "ok"))
    };
    match reply {
        Reply::Status(code, body) => (StatusCode::from_u16(code).unwrap(), body).into_response(),
        Reply::Redirect(to) => (StatusCode::FOUND, [("location", to)]).into_response(),
        Reply::RetryAfter(code, wait) => {
            (StatusCode::from_u16(code).unwrap(), [("retry-after", wait)], "busy").into_response()
        }
        Reply::Hang(time) => {
            tokio::time::sleep(time).await;
            (StatusCode::OK, "late").into_response()
        }
        Reply::Late(time, code) => {
            tokio::time::sleep(time).await;
            (StatusCode::from_u16(code).unwrap(), "late").into_response()
        }
    }
}

impl Receiver {
    /// Starts a receiver that answers `otherwise` once its script runs out.
    pub async fn start(otherwise: Reply) -> Self {
        let inner = Arc::new(Mutex::new(Inner { otherwise: Some(otherwise), ..Default::default() }));
        let router = axum::Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, inner }
    }

    /// Answers the next requests these ways, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.lock().unwrap().script.extend(replies);
    }

    /// Answers every later request this way.
    pub fn otherwise(&self, reply: Reply) {
        self.inner.lock().unwrap().otherwise = Some(reply);
    }

    /// What arrived so far.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// Waits until `n` requests arrived, or fails after `deadline`.
    pub async fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Received> {
        let until = Instant::now() + deadline;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < until, "waited {deadline:?} for {n} requests, got {}: {got:#?}", got.len());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Waits until `check` holds, or fails after `deadline` saying `what`.
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + deadline;
    while !check().await {
        assert!(Instant::now() < until, "waited {deadline:?} for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
