//! A thin Freshdesk API v2 client (no Freshdesk crate exists): tickets,
//! private notes, search by tag. Built from a base URL, so tests point it
//! at a local recorder.

pub mod desk;

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::config::Secret;

/// Freshdesk's ticket statuses and sources orglink uses.
pub const STATUS_OPEN: u8 = 2;
pub const SOURCE_PORTAL: u8 = 2;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NewTicket {
    pub email: String,
    pub subject: String,
    /// HTML.
    pub description: String,
    pub status: u8,
    pub priority: u8,
    pub source: u8,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<u64>,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Ticket {
    pub id: u64,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub status: u8,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// One field Freshdesk refused, as its 400 body says.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct FieldError {
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub code: String,
}

/// What went wrong, typed; never holding the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FreshdeskError {
    #[error("Freshdesk refused the request: {description} ({errors:?})")]
    Invalid { description: String, errors: Vec<FieldError> },
    #[error("Freshdesk refused the API key: check freshdesk.api_key (ORGLINK_FRESHDESK_API_KEY)")]
    Unauthorized,
    #[error("the Freshdesk API key's agent may not do this: give it the permission to create tickets and notes")]
    Forbidden,
    #[error("Freshdesk has no such ticket or path: check freshdesk.base_url")]
    NotFound,
    #[error("Freshdesk's rate limit is reached (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    #[error("Freshdesk failed ({status})")]
    Server { status: u16 },
    #[error("Freshdesk did not answer in time")]
    Timeout,
    #[error("Freshdesk could not be reached: {0}")]
    Network(String),
    #[error("Freshdesk answered {status} unexpectedly")]
    Unexpected { status: u16 },
}

impl FreshdeskError {
    /// Worth trying again later (the request may or may not have landed).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Server { .. } | Self::Timeout | Self::Network(_))
    }
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    description: String,
    #[serde(default)]
    errors: Vec<FieldError>,
}

#[derive(Debug, Deserialize)]
struct SearchResults {
    #[serde(default)]
    results: Vec<Ticket>,
}

pub struct Freshdesk {
    http: reqwest::Client,
    base_url: String,
    api_key: Secret,
    /// `X-RateLimit-Remaining` of the last answer (-1: not seen yet).
    remaining: AtomicI64,
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
}

impl Freshdesk {
    /// A client for `base_url` (`https://<domain>.freshdesk.com`).
    pub fn new(base_url: &str, api_key: Secret, timeout: Duration) -> Result<Self, FreshdeskError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("orglink/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FreshdeskError::Network(e.to_string()))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            remaining: AtomicI64::new(-1),
            metrics: None,
        })
    }

    /// Counts every call in `metrics`.
    pub fn with_metrics(mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The agent-facing address of a ticket.
    pub fn ticket_url(&self, id: u64) -> String {
        format!("{}/a/tickets/{id}", self.base_url)
    }

    /// Requests left in Freshdesk's current rate-limit window, as last seen.
    pub fn rate_limit_remaining(&self) -> Option<u32> {
        u32::try_from(self.remaining.load(Ordering::Relaxed)).ok()
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base_url)).basic_auth(self.api_key.expose(), Some("X"))
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, FreshdeskError> {
        let response = request.send().await;
        if let Some(metrics) = &self.metrics {
            metrics.freshdesk_call(crate::metrics::http_outcome(response.as_ref().ok().map(|r| r.status().as_u16())));
        }
        let response = response.map_err(|e| {
            if e.is_timeout() { FreshdeskError::Timeout } else { FreshdeskError::Network(without_url(&e)) }
        })?;
        if let Some(n) = response
            .headers()
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
        {
            self.remaining.store(n, Ordering::Relaxed);
        }
        let status = response.status();
        if status.is_success() {
            return response.json::<T>().await.map_err(|e| {
                if e.is_timeout() { FreshdeskError::Timeout } else { FreshdeskError::Network(without_url(&e)) }
            });
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Err(match status {
            StatusCode::BAD_REQUEST => {
                let body: ErrorBody =
                    response.json().await.unwrap_or(ErrorBody { description: String::new(), errors: vec![] });
                FreshdeskError::Invalid { description: body.description, errors: body.errors }
            }
            StatusCode::UNAUTHORIZED => FreshdeskError::Unauthorized,
            StatusCode::FORBIDDEN => FreshdeskError::Forbidden,
            StatusCode::NOT_FOUND => FreshdeskError::NotFound,
            StatusCode::TOO_MANY_REQUESTS => FreshdeskError::RateLimited { retry_after },
            s if s.is_server_error() => FreshdeskError::Server { status: s.as_u16() },
            s => FreshdeskError::Unexpected { status: s.as_u16() },
        })
    }

    /// `POST /api/v2/tickets`.
    pub async fn create_ticket(&self, ticket: &NewTicket) -> Result<Ticket, FreshdeskError> {
        self.send(self.request(reqwest::Method::POST, "/api/v2/tickets").json(ticket)).await
    }

    /// `GET /api/v2/tickets/{id}`.
    pub async fn view_ticket(&self, id: u64) -> Result<Ticket, FreshdeskError> {
        self.send(self.request(reqwest::Method::GET, &format!("/api/v2/tickets/{id}"))).await
    }

    /// `POST /api/v2/tickets/{id}/notes`, private.
    pub async fn add_private_note(&self, id: u64, body_html: &str) -> Result<(), FreshdeskError> {
        let note = serde_json::json!({ "body": body_html, "private": true });
        let _: serde_json::Value =
            self.send(self.request(reqwest::Method::POST, &format!("/api/v2/tickets/{id}/notes")).json(&note)).await?;
        Ok(())
    }

    /// One authenticated read, `GET /api/v2/tickets?per_page=1`: whether
    /// the base URL answers and the API key's agent may read tickets
    /// (`doctor`). Nothing is written.
    pub async fn check_access(&self) -> Result<(), FreshdeskError> {
        let _: Vec<serde_json::Value> =
            self.send(self.request(reqwest::Method::GET, "/api/v2/tickets").query(&[("per_page", "1")])).await?;
        Ok(())
    }

    /// The ticket carrying `tag`, if one exists. Freshdesk's search index
    /// lags by minutes, so the most recently updated tickets are read too.
    pub async fn find_by_tag(&self, tag: &str) -> Result<Option<Ticket>, FreshdeskError> {
        let query = format!("\"tag:'{tag}'\"");
        let found: SearchResults = self
            .send(self.request(reqwest::Method::GET, "/api/v2/search/tickets").query(&[("query", query.as_str())]))
            .await?;
        if let Some(ticket) = found.results.into_iter().find(|t| t.tags.iter().any(|t| t == tag)) {
            return Ok(Some(ticket));
        }
        let recent: Vec<Ticket> = self
            .send(self.request(reqwest::Method::GET, "/api/v2/tickets").query(&[
                ("order_by", "updated_at"),
                ("order_type", "desc"),
                ("per_page", "100"),
            ]))
            .await?;
        Ok(recent.into_iter().find(|t| t.tags.iter().any(|t| t == tag)))
    }
}

/// A reqwest error's text without its URL (which holds no secret, but a
/// message to a user is better without it).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "Freshdesk");
    }
    // reqwest's own words are "error sending request": the cause
    // (refused, no such host, TLS) is in its sources.
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
