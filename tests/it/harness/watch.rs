//! What the background tasks of a test did wrong: the panics on the test's
//! threads (a spawned task's panic is caught by tokio and otherwise never
//! seen) and orglink's ERROR events (the notifier, the scheduler, the HTTP
//! server and the gateway report a failed round by logging it and going on).
//!
//! Events are captured on the threads of the test's runtime only: other
//! tests run in the same binary at the same time.

use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;

use tracing::field::{Field, Visit};
use tracing::{Dispatch, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::{EnvFilter, Layer};

/// Every panic in the process, with the thread it happened on.
static PANICS: Mutex<Vec<(ThreadId, String)>> = Mutex::new(Vec::new());

/// Chains a recorder of panics before the default hook (which still prints).
fn record_panics() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let at = info.location().map(|l| format!(" at {l}")).unwrap_or_default();
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            PANICS.lock().unwrap_or_else(|e| e.into_inner()).push((std::thread::current().id(), message + &at));
            default(info);
        }));
    });
}

/// A log capture: formatted text at the level `filter` asks for, and every
/// ERROR event, whatever the filter.
#[derive(Clone)]
pub struct Logs {
    text: Arc<Mutex<Vec<u8>>>,
    errors: Arc<Mutex<Vec<String>>>,
    dispatch: Dispatch,
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Errors(Arc<Mutex<Vec<String>>>);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        } else {
            self.0 += &format!(" {}={value:?}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for Errors {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if *event.metadata().level() == Level::ERROR {
            let mut message = Message(String::new());
            event.record(&mut message);
            self.0.lock().unwrap().push(format!("{}: {}", event.metadata().target(), message.0));
        }
    }
}

impl Logs {
    /// Captures text as `filter` (an `EnvFilter` directive, "off" for none)
    /// says.
    pub fn new(filter: &str) -> Self {
        let text = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let writer = text.clone();
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(move || Writer(writer.clone()))
                    .with_filter(EnvFilter::new(filter)),
            )
            .with(Errors(errors.clone()).with_filter(tracing_subscriber::filter::LevelFilter::ERROR));
        Self { text, errors, dispatch: Dispatch::new(subscriber) }
    }

    /// Makes this capture the current thread's for as long as the guard
    /// lives.
    pub fn capture(&self) -> tracing::dispatcher::DefaultGuard {
        tracing::dispatcher::set_default(&self.dispatch)
    }

    /// A runtime whose every thread (the caller's, running `block_on`, and
    /// each blocking thread) logs here.
    pub fn runtime(&self) -> tokio::runtime::Runtime {
        let dispatch = self.dispatch.clone();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&dispatch)))
            .build()
            .unwrap()
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.text.lock().unwrap().clone()).unwrap()
    }

    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }
}

/// Watches the current thread: its panics and its ERROR events.
pub struct Watch {
    thread: ThreadId,
    panics_before: usize,
    pub logs: Logs,
    _capture: tracing::dispatcher::DefaultGuard,
}

impl Watch {
    pub fn new(logs: Logs) -> Self {
        record_panics();
        Self {
            thread: std::thread::current().id(),
            panics_before: PANICS.lock().unwrap().len(),
            _capture: logs.capture(),
            logs,
        }
    }

    /// The panics on the watched thread since the watch began.
    pub fn panics(&self) -> Vec<String> {
        let panics = PANICS.lock().unwrap();
        panics[self.panics_before..].iter().filter(|(t, _)| *t == self.thread).map(|(_, m)| m.clone()).collect()
    }
}
