//! HTTP for operators and agent screens: `/metrics` (Prometheus text format), `/healthz`
//! (the process is up), `/readyz` (consuming and producing normally; 503 with the reason
//! otherwise) and `GET /subscribers/{msisdn}` (state summary, tier, active signals and
//! recent tickets as JSON, for agent screens and CRM look-ups). Read-only.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::detect::engine::SubscriberSummary;
use crate::detect::Msisdn;
use crate::kafka::service::Shared;

/// The routes, over shared service state.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/subscribers/{msisdn}", get(subscriber))
        .with_state(shared)
}

/// Binds first (so a busy port fails at start-up), then serves in the background.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// Serves on a bound listener until `shutdown` resolves.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    shared: Shared,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics(State(s): State<Shared>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

async fn readyz(State(s): State<Shared>) -> Response {
    if s.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let reason = s
            .not_ready_reason
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default();
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response()
    }
}

#[derive(Serialize)]
struct SubscriberView {
    #[serde(flatten)]
    summary: SubscriberSummary,
    recent_tickets: Vec<serde_json::Value>,
}

async fn subscriber(State(s): State<Shared>, Path(msisdn): Path<String>) -> Response {
    let Ok(m) = Msisdn::parse(&msisdn) else {
        return (StatusCode::BAD_REQUEST, "not an E.164 number\n").into_response();
    };
    let Some(summary) = s.describe(m).await else {
        return (
            StatusCode::NOT_FOUND,
            "subscriber not held by this instance\n",
        )
            .into_response();
    };
    let recent_tickets = s
        .recent_tickets
        .get(&m.0)
        .map(|l| {
            l.iter()
                .filter_map(|t| serde_json::to_value(t).ok())
                .collect()
        })
        .unwrap_or_default();
    Json(SubscriberView {
        summary,
        recent_tickets,
    })
    .into_response()
}
