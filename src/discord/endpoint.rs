//! The HTTP side: `POST /interactions` (signed by Discord, when a public key
//! is configured; each interaction run once), `GET /healthz` and
//! `GET /metrics` (on the same listener, or on their own when
//! `http.admin_listen` is set, so they are not public).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};
use serenity::all::{Http, Interaction};
use serenity::interactions_endpoint::Verifier;

use super::Bot;
use super::replay::SeenInteractions;
use crate::clock::Clock;
use crate::health::Link;
use crate::scheduler::Schedule;

/// How far from the endpoint's clock a signed request's timestamp may be
/// (either way) before it is refused as a replay; within it, the interaction
/// IDs already run refuse it ([`SeenInteractions`]).
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
    /// The application's key: without one, no `/interactions`.
    pub verifier: Option<Verifier>,
    pub http: Arc<Http>,
    pub clock: Arc<dyn Clock>,
    /// The gateway's state, when it runs (reported by `/healthz`).
    pub gateway: Option<Arc<super::gateway::GatewayState>>,
    /// When the HTTP endpoint started listening.
    pub started: time::OffsetDateTime,
    /// How long the gateway, the only transport taking interactions, may
    /// be down before `/healthz` fails.
    pub gateway_grace: std::time::Duration,
    /// The jobs `/healthz` watches, and how many of its intervals a job may
    /// go without succeeding.
    pub schedule: Schedule,
    pub health_job_intervals: u32,
    /// The interactions run lately: the same signed request sent again is
    /// refused, not run twice. Shared by the clones axum makes.
    pub seen: Arc<Mutex<SeenInteractions>>,
    /// The last store check, which `/healthz` reuses for a few seconds
    /// (held across a check, so concurrent probes make one).
    pub store_check: Arc<tokio::sync::Mutex<crate::health::CachedCheck>>,
}

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routes {
    /// `/interactions` (with a public key), `/healthz` and `/metrics`.
    All,
    /// `/interactions` only: health and metrics are on the admin listener.
    Public,
    /// `/healthz` and `/metrics` only.
    Admin,
}

pub fn router(endpoint: Endpoint, routes: Routes) -> Router {
    let mut router = Router::new();
    if routes != Routes::Public {
        router = router.route("/healthz", get(healthz)).route("/metrics", get(metrics));
    }
    if endpoint.verifier.is_some() && routes != Routes::Admin {
        router = router.route("/interactions", post(interactions));
    }
    // Shared, not cloned per request (axum clones the state for each).
    router.layer(DefaultBodyLimit::max(MAX_BODY_BYTES)).with_state(Arc::new(endpoint))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn interactions(
    State(endpoint): State<Arc<Endpoint>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let (Some(signature), Some(timestamp)) =
        (header(&headers, "X-Signature-Ed25519"), header(&headers, "X-Signature-Timestamp"))
    else {
        return (StatusCode::UNAUTHORIZED, "missing signature").into_response();
    };
    let Some(verifier) = &endpoint.verifier else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if verifier.verify(signature, timestamp, &body).is_err() {
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
    // Recorded only once signed and fresh, so unsigned requests cannot fill
    // it; Discord never sends one interaction twice, so this is a replay.
    let id = interaction.id().get();
    let first = endpoint.seen.lock().unwrap_or_else(|e| e.into_inner()).first_sighting(id, endpoint.clock.now());
    if !first {
        endpoint.bot.app().metrics().interaction_replayed();
        tracing::warn!(interaction = id, "a replayed interaction was refused");
        return (StatusCode::CONFLICT, "interaction already received").into_response();
    }
    let token = interaction.token().to_owned();
    let bot = endpoint.bot.clone();
    let read = bot.read(&interaction);
    // A quick read is answered here; anything that may wait (a write and
    // its flush, AWS) on a blocking thread.
    let response = if read.is_quick() {
        bot.answer(read)
    } else {
        match tokio::task::spawn_blocking(move || bot.answer(read)).await {
            Ok(response) => response,
            Err(e) => {
                tracing::error!(error = %e, "answering an interaction failed");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
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

/// Fails (503) when the store cannot be written (checked at most every
/// [`crate::health::STORE_CHECK_FOR`]), a scheduled job has not
/// succeeded for longer than `health_job_intervals` of its schedule, or no
/// transport that should take interactions has taken them for
/// `gateway_grace` (the rule is [`crate::health::Health::healthy`]'s, as
/// `doctor`'s). Each transport is shown `off`, `connected` or `connecting`
/// (since when, the attempts, the last error).
async fn healthz(State(endpoint): State<Arc<Endpoint>>) -> axum::response::Response {
    let app = endpoint.bot.app();
    let mut cached = endpoint.store_check.lock().await;
    let store = match cached.fresh(endpoint.clock.now()) {
        Some(result) => result,
        None => {
            // The check writes and flushes to disk: not on the async threads.
            let result = match tokio::task::spawn_blocking({
                let store = app.store().clone();
                move || store.health_check().map_err(|e| e.to_string())
            })
            .await
            {
                Ok(result) => result,
                Err(e) => Err(e.to_string()),
            };
            cached.record(endpoint.clock.now(), result.clone());
            result
        }
    };
    drop(cached);
    let now = endpoint.clock.now();
    let jobs = app.metrics().job_health(&endpoint.schedule, now, endpoint.health_job_intervals);
    let http = match endpoint.verifier {
        Some(_) => Link::Connected { since: endpoint.started },
        None => Link::Off,
    };
    let gateway = endpoint.gateway.as_ref().map_or(Link::Off, |g| g.link());
    let grace = time::Duration::try_from(endpoint.gateway_grace).unwrap_or(time::Duration::MAX);
    let interactions = crate::health::interactions_taken(&[http.clone(), gateway.clone()], now, grace);
    let healthy = crate::health::Health {
        store: store.clone(),
        identity: None,
        stale_jobs: jobs.iter().filter(|j| j.stale).count(),
        interactions,
    }
    .healthy();
    let body = serde_json::json!({
        "status": if healthy { "ok" } else { "failing" },
        "store": match &store { Ok(()) => "ok", Err(e) => e.as_str() },
        "jobs": jobs,
        "interactions": if interactions { "taken" } else { "not_taken" },
        "transports": { "http": http, "gateway": gateway },
    });
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

/// Prometheus's scrape, in the OpenMetrics text format.
async fn metrics(State(endpoint): State<Arc<Endpoint>>) -> axum::response::Response {
    let app = endpoint.bot.app().clone();
    let now = endpoint.clock.now();
    match tokio::task::spawn_blocking(move || app.metrics().render(app.store(), now)).await {
        Ok(Ok(text)) => {
            ([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
                .into_response()
        }
        Ok(Err(e)) => {
            tracing::error!(error = format!("{e:#}"), "rendering the metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "rendering the metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
