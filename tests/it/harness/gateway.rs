//! A local stand-in for Discord's gateway: a websocket server speaking
//! enough of the protocol for serenity's client (HELLO, IDENTIFY → READY,
//! RESUME → RESUMED, heartbeats and their acknowledgements, dispatches such
//! as INTERACTION_CREATE, close codes), reached as orglink reaches Discord's:
//! `GET /gateway` and `GET /gateway/bot` on the REST recorder name its
//! address. It records what each connection did, so a test awaits what it
//! expects; it can close the connections it is told to refuse before the
//! websocket handshake, close an IDENTIFY with a code (4004), or close a
//! session mid-way.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use super::Recorder;
use super::discord::APPLICATION_ID;
use super::recorder::PATIENCE;

/// What a connection did, in order of arrival.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// Closed before the websocket handshake, as told (`refuse_next`).
    Refused,
    /// Accepted, and held before the handshake until `open` (`hold`).
    Held,
    /// A websocket opened: HELLO sent.
    Hello,
    /// An IDENTIFY (its `d`).
    Identify(Value),
    /// A RESUME (its `d`).
    Resume(Value),
    /// The gateway closed the session with this code.
    ClosedWith(u16),
    /// The connection ended.
    Ended,
}

enum Control {
    Dispatch(&'static str, Value),
    Close(u16),
}

struct Shared {
    seen: Mutex<Vec<Seen>>,
    arrivals: tokio::sync::Notify,
    refuse: AtomicU32,
    /// Whether connections go on to the handshake (else they wait).
    open: tokio::sync::watch::Sender<bool>,
    close_identify: Mutex<Option<u16>>,
    /// The session that last said READY or RESUMED.
    session: Mutex<Option<mpsc::UnboundedSender<Control>>>,
    sessions: AtomicU32,
}

impl Shared {
    fn saw(&self, seen: Seen) {
        self.seen.lock().unwrap().push(seen);
        self.arrivals.notify_waiters();
    }
}

pub struct FakeGateway {
    /// `ws://127.0.0.1:PORT`.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGateway {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            seen: Mutex::default(),
            arrivals: tokio::sync::Notify::new(),
            refuse: AtomicU32::new(0),
            open: tokio::sync::watch::Sender::new(true),
            close_identify: Mutex::default(),
            session: Mutex::default(),
            sessions: AtomicU32::new(0),
        });
        let task = tokio::spawn({
            let shared = shared.clone();
            let url = url.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(connection(stream, shared.clone(), url.clone()));
                }
            }
        });
        Self { url, shared, task }
    }

    /// Has `recorder`, standing in for Discord's REST API, name this
    /// gateway (`GET /gateway` for serenity's client, `GET /gateway/bot`
    /// for orglink's supervisor, one shard).
    pub async fn named_by(&self, recorder: &Recorder) {
        Mock::given(method("GET"))
            .and(path("/api/v10/gateway"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "url": self.url })))
            .mount(&recorder.server)
            .await;
        let limit = json!({ "total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1 });
        Mock::given(method("GET"))
            .and(path("/api/v10/gateway/bot"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "url": self.url, "shards": 1, "session_start_limit": limit })),
            )
            .mount(&recorder.server)
            .await;
    }

    /// The next `n` connections are closed before the websocket handshake.
    pub fn refuse_next(&self, n: u32) {
        self.shared.refuse.store(n, Ordering::SeqCst);
    }

    /// Connections wait before the websocket handshake until `open`.
    pub fn hold(&self) {
        self.shared.open.send_replace(false);
    }

    /// Held connections go on, and new ones do not wait.
    pub fn open(&self) {
        self.shared.open.send_replace(true);
    }

    /// Every IDENTIFY is answered by closing the session with `code`
    /// (`None`: by READY).
    pub fn close_identify_with(&self, code: Option<u16>) {
        *self.shared.close_identify.lock().unwrap() = code;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Waits until `done` holds of what the connections did; fails the
    /// test after `PATIENCE`.
    pub async fn wait_until<T>(&self, what: &str, mut done: impl FnMut(&[Seen]) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let arrived = self.shared.arrivals.notified();
            if let Some(found) = done(&self.seen()) {
                return found;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("{what}: not seen within {PATIENCE:?}: {:#?}", self.seen());
            }
        }
    }

    /// Waits for the `n`-th IDENTIFY (1 for the first).
    pub async fn identified(&self, n: usize) -> Value {
        self.wait_until(&format!("IDENTIFY #{n}"), |seen| {
            seen.iter().filter_map(|s| if let Seen::Identify(d) = s { Some(d.clone()) } else { None }).nth(n - 1)
        })
        .await
    }

    /// Sends a dispatch (`t`, `d`) on the current session.
    pub fn dispatch(&self, t: &'static str, d: Value) {
        self.current().send(Control::Dispatch(t, d)).unwrap();
    }

    /// Closes the current session with `code`.
    pub fn close_session(&self, code: u16) {
        self.current().send(Control::Close(code)).unwrap();
    }

    fn current(&self) -> mpsc::UnboundedSender<Control> {
        self.shared.session.lock().unwrap().clone().expect("a session is open")
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn send(ws: &mut Ws, frame: Value) -> bool {
    ws.send(Message::Text(frame.to_string())).await.is_ok()
}

async fn close(ws: &mut Ws, shared: &Shared, code: u16) {
    shared.saw(Seen::ClosedWith(code));
    let frame = CloseFrame { code: CloseCode::from(code), reason: "".into() };
    let _ = ws.close(Some(frame)).await;
    // Read the client's answer through.
    let _ = tokio::time::timeout(Duration::from_secs(5), async { while ws.next().await.is_some() {} }).await;
}

async fn connection(stream: tokio::net::TcpStream, shared: Arc<Shared>, url: String) {
    if shared.refuse.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
        drop(stream);
        shared.saw(Seen::Refused);
        return;
    }
    let mut open = shared.open.subscribe();
    if !*open.borrow_and_update() {
        shared.saw(Seen::Held);
        if open.wait_for(|open| *open).await.is_err() {
            return;
        }
    }
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
    if !send(&mut ws, json!({ "op": 10, "d": { "heartbeat_interval": 41250 } })).await {
        return;
    }
    shared.saw(Seen::Hello);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut seq = 0u64;
    loop {
        tokio::select! {
            message = ws.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
                match frame["op"].as_u64() {
                    Some(1) => {
                        send(&mut ws, json!({ "op": 11 })).await;
                    }
                    Some(2) => {
                        shared.saw(Seen::Identify(frame["d"].clone()));
                        let refusal = *shared.close_identify.lock().unwrap();
                        if let Some(code) = refusal {
                            close(&mut ws, &shared, code).await;
                            break;
                        }
                        let n = shared.sessions.fetch_add(1, Ordering::SeqCst) + 1;
                        seq = 1;
                        send(&mut ws, json!({ "op": 0, "s": seq, "t": "READY", "d": ready(&format!("fake-session-{n}"), &url) })).await;
                        *shared.session.lock().unwrap() = Some(tx.clone());
                    }
                    Some(6) => {
                        shared.saw(Seen::Resume(frame["d"].clone()));
                        seq = frame["d"]["seq"].as_u64().unwrap_or(0) + 1;
                        send(&mut ws, json!({ "op": 0, "s": seq, "t": "RESUMED", "d": {} })).await;
                        *shared.session.lock().unwrap() = Some(tx.clone());
                    }
                    _ => {}
                }
            }
            control = rx.recv() => match control {
                Some(Control::Dispatch(t, d)) => {
                    seq += 1;
                    send(&mut ws, json!({ "op": 0, "s": seq, "t": t, "d": d })).await;
                }
                Some(Control::Close(code)) => {
                    close(&mut ws, &shared, code).await;
                    break;
                }
                None => {}
            },
        }
    }
    shared.saw(Seen::Ended);
}

/// READY, as Discord sends it to a bot in no server yet.
fn ready(session_id: &str, url: &str) -> Value {
    let user =
        json!({ "id": APPLICATION_ID, "username": "orglink", "discriminator": "0", "avatar": null, "bot": true });
    json!({
        "v": 10,
        "user": user,
        "guilds": [],
        "session_id": session_id,
        "resume_gateway_url": url,
        "shard": [0, 1],
        "application": { "id": APPLICATION_ID, "flags": 0 },
    })
}
