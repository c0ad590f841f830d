//! The lookup listener (`http.lookup_listen`): `GET /subscribers/{msisdn}` for agent
//! screens and CRM look-ups (state summary, tier, active signals and recent tickets as
//! JSON). It answers with a full number, do-not-disturb flags and spend, so it has a port
//! of its own, apart from the metrics and probes that monitoring scrapes, and every
//! request on it, to any path, needs the bearer token ([`LookupToken`]). A refused request
//! gets a bare 401; neither the token nor the number is ever logged.

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::token::LookupToken;
use crate::detect::engine::SubscriberSummary;
use crate::detect::Msisdn;
use crate::kafka::service::Shared;

/// The look-up routes over shared service state, behind the token.
pub fn router(shared: Shared, token: LookupToken) -> Router {
    Router::new()
        .route("/subscribers/{msisdn}", get(subscriber))
        .with_state(shared)
        .layer(middleware::from_fn_with_state(token, require_token))
}

/// Lets a request through only with the right `Authorization: Bearer` header.
async fn require_token(State(token): State<LookupToken>, req: Request, next: Next) -> Response {
    if token.accepts(req.headers().get(header::AUTHORIZATION)) {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
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
