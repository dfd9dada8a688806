//! A local stand-in for an HTTP API (Discord's REST API, Freshdesk): a
//! wiremock server that records every request and signals each arrival, so
//! a test awaits the request it expects instead of sleeping and looking.

use std::time::Duration;

use tokio::sync::watch;
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

/// How long a test waits for a request before it fails. Generous: it is only
/// reached when the request never comes.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub struct Recorder {
    pub server: MockServer,
    arrivals: watch::Sender<u64>,
}

/// A matcher that matches nothing and counts every request it is shown.
/// Mounted first (priority 1), it sees each request once, after wiremock has
/// recorded it.
struct Arrival(watch::Sender<u64>);

impl Match for Arrival {
    fn matches(&self, _: &Request) -> bool {
        self.0.send_modify(|n| *n += 1);
        false
    }
}

impl Recorder {
    pub async fn start() -> Self {
        let recorder = Self { server: MockServer::start().await, arrivals: watch::Sender::new(0) };
        recorder.mount_signal().await;
        recorder
    }

    /// On `listener`: an address a client was given before anything
    /// answered there.
    pub async fn start_on(listener: std::net::TcpListener) -> Self {
        let server = MockServer::builder().listener(listener).start().await;
        let recorder = Self { server, arrivals: watch::Sender::new(0) };
        recorder.mount_signal().await;
        recorder
    }

    async fn mount_signal(&self) {
        Mock::given(Arrival(self.arrivals.clone()))
            .respond_with(ResponseTemplate::new(500))
            .with_priority(1)
            .named("arrival signal")
            .mount(&self.server)
            .await;
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Forgets every mock and every recorded request (the arrival signal
    /// stays).
    pub async fn reset(&self) {
        self.server.reset().await;
        self.mount_signal().await;
    }

    /// Every request received so far.
    pub async fn requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap_or_default()
    }

    /// Waits until `done` holds of the requests received (checked at once,
    /// then at each arrival); returns what it returned. Fails the test after
    /// `PATIENCE`.
    pub async fn wait_until<T>(&self, what: &str, mut done: impl FnMut(&[Request]) -> Option<T>) -> T {
        let found = self.wait_until_within(PATIENCE, &mut done).await;
        found.unwrap_or_else(|| panic!("{what}: not received within {PATIENCE:?}"))
    }

    /// As `wait_until`, but gives up (`None`) after `patience`.
    pub async fn wait_until_within<T>(
        &self,
        patience: Duration,
        mut done: impl FnMut(&[Request]) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut arrivals = self.arrivals.subscribe();
        loop {
            arrivals.borrow_and_update();
            if let Some(found) = done(&self.requests().await) {
                return Some(found);
            }
            match tokio::time::timeout_at(deadline, arrivals.changed()).await {
                Ok(changed) => changed.expect("the recorder outlives its waiters"),
                Err(_) => return None,
            }
        }
    }

    /// Waits for the first request by method and path pattern.
    pub async fn wait_for(&self, verb: &str, path_pattern: &str) -> Request {
        let matches = path_matcher(path_pattern);
        self.wait_until(&format!("{verb} {path_pattern}"), |requests| {
            requests.iter().find(|r| r.method.as_str() == verb && matches(r.url.path())).cloned()
        })
        .await
    }
}

/// A tiny matcher: `*` matches any run of characters except `/`.
pub fn path_matcher(pattern: &str) -> impl Fn(&str) -> bool + use<> {
    let parts: Vec<String> = pattern.split('*').map(str::to_owned).collect();
    move |path: &str| {
        let mut rest = path;
        for (i, part) in parts.iter().enumerate() {
            if i == 0 {
                let Some(r) = rest.strip_prefix(part.as_str()) else { return false };
                rest = r;
            } else {
                let Some(end) = rest.find(part.as_str()).filter(|e| !rest[..*e].contains('/')) else { return false };
                rest = &rest[end + part.len()..];
            }
        }
        rest.is_empty()
    }
}
