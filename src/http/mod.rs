//! HTTP, on two listeners. `http.listen` is for operators and monitoring: `/metrics`
//! (Prometheus text format), `/healthz` (the process is up) and `/readyz` (consuming and
//! producing normally; 503 with the reason otherwise); it holds nothing about any
//! subscriber. `http.lookup_listen` (off by default) serves `/subscribers/{msisdn}` behind
//! a bearer token ([`lookup`]), because that answer holds personal data and must not be
//! reachable wherever the metrics are scraped. Both are read-only.
//!
//! [`start`] binds every configured listener before it serves any (so a busy port or a
//! missing token fails start-up) and returns the bound addresses.

pub mod lookup;
pub mod token;

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::config::HttpConfig;
use crate::kafka::service::Shared;
use token::{LookupToken, TokenError};

/// Why HTTP could not start. Each message names the key to fix.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{key}: `{addr}` is not host:port")]
    Address { key: &'static str, addr: String },
    #[error("{key}: cannot listen on {addr}: {source}")]
    Listen {
        key: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// Where the listeners were bound (`None`: turned off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// `http.listen`: metrics and probes.
    pub ops: Option<SocketAddr>,
    /// `http.lookup_listen`: subscriber look-ups.
    pub lookup: Option<SocketAddr>,
}

/// The operators' routes: metrics and probes, nothing about a subscriber.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(shared)
}

/// Binds the configured listeners, then serves each in the background until its
/// `stopped()` future resolves. `env_token` is the value of [`token::TOKEN_ENV`], read
/// only when the lookup listener is on and no token file is named.
pub async fn start<F, S>(
    http: &HttpConfig,
    env_token: Option<String>,
    shared: Shared,
    stopped: S,
) -> Result<Bound, HttpError>
where
    S: Fn() -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let token = if http.lookup_listen.is_empty() {
        None
    } else {
        Some(LookupToken::load(http, env_token)?)
    };
    let ops = bind("http.listen", &http.listen).await?;
    let lookup = bind("http.lookup_listen", &http.lookup_listen).await?;
    let mut bound = Bound {
        ops: None,
        lookup: None,
    };
    if let Some(listener) = ops {
        bound.ops = listener.local_addr().ok();
        info!(addr = ?bound.ops, "http (metrics, probes) listening");
        spawn_serve(listener, router(shared.clone()), stopped());
    }
    if let (Some(listener), Some(token)) = (lookup, token) {
        bound.lookup = listener.local_addr().ok();
        info!(addr = ?bound.lookup, "http (subscriber look-ups) listening");
        spawn_serve(listener, lookup::router(shared, token), stopped());
    }
    Ok(bound)
}

/// Binds `addr` (the value of `key`); `None` when it is empty (off).
async fn bind(key: &'static str, addr: &str) -> Result<Option<TcpListener>, HttpError> {
    if addr.is_empty() {
        return Ok(None);
    }
    let parsed: SocketAddr = addr.parse().map_err(|_| HttpError::Address {
        key,
        addr: addr.to_string(),
    })?;
    TcpListener::bind(parsed)
        .await
        .map(Some)
        .map_err(|source| HttpError::Listen {
            key,
            addr: addr.to_string(),
            source,
        })
}

fn spawn_serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        if let Err(e) = served {
            warn!(error = %e, "http server stopped");
        }
    });
}

async fn metrics(State(s): State<Shared>) -> Response {
    // Read at the scrape, so the figures are as fresh as the scrape (src/memory.rs).
    s.metrics.memory.refresh();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

/// 200 when no readiness condition holds, else 503; either way one line per condition
/// that holds and per warning (see `kafka::readiness`).
async fn readyz(State(s): State<Shared>) -> Response {
    let failing = s.readiness.failing();
    let mut body = match failing.is_empty() {
        true => "ready\n".to_string(),
        false => failing
            .iter()
            .map(|c| format!("not ready: {c}\n"))
            .collect(),
    };
    for w in s.readiness.warnings() {
        body.push_str(&format!("warning: {w}\n"));
    }
    let status = match failing.is_empty() {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, body).into_response()
}
