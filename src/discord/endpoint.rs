//! The HTTP transport: `POST /interactions` (signed by Discord) and
//! `GET /healthz`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};
use serenity::all::{Http, Interaction};
use serenity::interactions_endpoint::Verifier;

use super::Bot;
use crate::clock::Clock;

/// How old a signed request may be before it is refused as a replay.
pub const MAX_REQUEST_AGE_SECS: i64 = 300;
/// Discord's interaction bodies are a few KiB; anything this big is not one.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The Ed25519 verifier of an application's public key, given in hex as
/// the developer portal shows it; `None` if it is not a valid key.
pub fn verifier(public_key_hex: &str) -> Option<Verifier> {
    let bytes: [u8; 32] = hex::decode(public_key_hex.trim()).ok()?.try_into().ok()?;
    Verifier::try_new(bytes).ok()
}

#[derive(Clone)]
pub struct Endpoint {
    pub bot: Arc<Bot>,
    pub verifier: Verifier,
    pub http: Arc<Http>,
    pub clock: Arc<dyn Clock>,
    /// Whether the gateway transport runs too (reported by `/healthz`).
    pub gateway: bool,
}

pub fn router(endpoint: Endpoint) -> Router {
    Router::new()
        .route("/interactions", post(interactions))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(endpoint)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn interactions(State(endpoint): State<Endpoint>, headers: HeaderMap, body: Bytes) -> axum::response::Response {
    let (Some(signature), Some(timestamp)) =
        (header(&headers, "X-Signature-Ed25519"), header(&headers, "X-Signature-Timestamp"))
    else {
        return (StatusCode::UNAUTHORIZED, "missing signature").into_response();
    };
    if endpoint.verifier.verify(signature, timestamp, &body).is_err() {
        return (StatusCode::UNAUTHORIZED, "invalid signature").into_response();
    }
    // The Verifier checks the signature, not the age: refuse replays.
    let now = endpoint.clock.now().unix_timestamp();
    match timestamp.parse::<i64>() {
        Ok(at) if (now - at).abs() <= MAX_REQUEST_AGE_SECS => {}
        _ => return (StatusCode::UNAUTHORIZED, "stale timestamp").into_response(),
    }
    let interaction: Interaction = match serde_json::from_slice(&body) {
        Ok(interaction) => interaction,
        Err(e) => {
            tracing::warn!(error = %e, "a signed interaction could not be read");
            return (StatusCode::BAD_REQUEST, "unreadable interaction").into_response();
        }
    };
    let token = interaction.token().to_owned();
    let bot = endpoint.bot.clone();
    let response = match tokio::task::spawn_blocking(move || bot.respond(&interaction)).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "answering an interaction failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    if matches!(response.immediate, serenity::all::CreateInteractionResponse::Pong) {
        // Exactly the PONG Discord's documentation shows (serenity adds `"data": null`).
        return Json(serde_json::json!({ "type": 1 })).into_response();
    }
    if response.followup.is_some() {
        tokio::spawn(super::send_followup(endpoint.http.clone(), token, response.followup));
    }
    Json(response.immediate).into_response()
}

async fn healthz(State(endpoint): State<Endpoint>) -> axum::response::Response {
    let store = endpoint.bot.app().store().health_check();
    let body = serde_json::json!({
        "status": if store.is_ok() { "ok" } else { "failing" },
        "store": match &store { Ok(()) => "ok".to_owned(), Err(e) => e.to_string() },
        "transports": { "http": true, "gateway": endpoint.gateway },
    });
    let status = if store.is_ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}
