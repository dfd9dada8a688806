//! The command line through a running `orglink serve`.
//!
//! sled locks the store for one process: while `serve` runs, a CLI command
//! cannot open it. `serve` listens on a Unix socket in the data directory
//! ([`SOCKET_NAME`], owner-only, and a peer of another uid is refused), and
//! a CLI command that finds it answering sends its arguments there instead.
//! The server runs them exactly as the CLI would, on its own app (so
//! Discord sees the change at once and the notifier is woken), and sends
//! back what the CLI would have printed and its exit code; the client
//! prints them. The client stays thin: it parses its arguments first (bad
//! input exits 2 without asking anyone), then hands them over.
//!
//! One request and one response per connection, each a line of JSON.

use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

/// The socket's name in the data directory (`survey` in `store` knows it
/// as orglink's own).
pub const SOCKET_NAME: &str = "orglink.sock";

/// A request longer than this is no CLI's: refused, not read into memory.
/// It carries an import's file: 10,000 rows of long names fit.
const MAX_REQUEST_BYTES: u64 = 32 << 20;

/// How long a client waits for the server's answer: a slow command (a
/// verification retrying AWS) takes seconds, never this long.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(300);

/// Where `serve` listens for the CLI of the store in `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// A CLI command, as typed: the server parses it as the client did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// The client's `CARGO_PKG_VERSION`: another version may parse the
    /// same arguments otherwise, so it is refused.
    pub version: String,
    /// Who runs the CLI (`USER`): the audit's `cli:<user>`.
    pub user: String,
    /// The language the client would have printed in.
    pub lang: crate::domain::Lang,
    /// The client's output is a terminal that shows bold.
    #[serde(default)]
    pub bold: bool,
    /// The arguments after the program's name.
    pub args: Vec<String>,
    /// The files the command reads, as the client read them (path as
    /// typed → text): an import's CSV. The server may see other files, from
    /// another working directory.
    #[serde(default)]
    pub files: std::collections::BTreeMap<String, String>,
}

/// What the CLI would have printed, and its exit code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub exit_code: u8,
    pub stdout: String,
    pub stderr: String,
}

/// What the server does with a request (the CLI's own execution, given by
/// `cli`, which `server` does not import).
pub type Handler = Arc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Response> + Send>> + Send + Sync>;

/// Whether a peer may use the socket: only the user the server runs as.
/// The file's mode already keeps others out; this holds even if the
/// directory's or the file's permissions are loosened.
pub fn peer_allowed(peer_uid: u32, own_uid: u32) -> bool {
    peer_uid == own_uid
}

/// The uid this process runs as.
fn own_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Listens on `path` until `shutdown`, then removes the socket file. A file
/// left there by a server that died is removed first: the store's lock,
/// taken before this, says no other server runs on this directory.
pub async fn listen(
    path: PathBuf,
    handler: Handler,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<JoinHandle<()>> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing the stale socket {}", path.display()));
        }
        _ => {}
    }
    let listener = tokio::net::UnixListener::bind(&path).with_context(|| format!("listening on {}", path.display()))?;
    // The process's umask already makes it 0600; said again, in case a
    // caller (a test, a library user) runs with another.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("making {} owner-only", path.display()))?;
    tracing::info!(socket = %path.display(), "the command line is served on this socket");
    let own = own_uid();
    Ok(tokio::spawn(async move {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(serve_one(stream, handler.clone(), own));
                    }
                    Err(e) => tracing::warn!(error = %e, "accepting on the command line's socket"),
                },
                _ = &mut shutdown => break,
            }
        }
        let _ = std::fs::remove_file(&path);
    }))
}

/// One connection: a request line in, a response line out.
async fn serve_one(stream: tokio::net::UnixStream, handler: Handler, own: u32) {
    match stream.peer_cred() {
        Ok(cred) if peer_allowed(cred.uid(), own) => {}
        Ok(cred) => {
            tracing::warn!(uid = cred.uid(), "refused a command line of another user on the socket");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "the socket's peer could not be identified: refused");
            return;
        }
    }
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(read.take(MAX_REQUEST_BYTES));
    if let Err(e) = reader.read_line(&mut line).await {
        tracing::warn!(error = %e, "reading a request on the command line's socket");
        return;
    }
    let request: Request = match serde_json::from_str(&line) {
        Ok(request) => request,
        Err(e) => {
            tracing::warn!(error = %e, "a request on the command line's socket is not one");
            return;
        }
    };
    let response = handler(request).await;
    let mut out = serde_json::to_vec(&response).expect("a response serialises");
    out.push(b'\n');
    if let Err(e) = write.write_all(&out).await {
        tracing::warn!(error = %e, "answering on the command line's socket");
    }
}

/// Sends `request` to the server listening at `path`: `None` when nothing
/// listens there (no socket, a file a dead server left, a data directory
/// that is none), so the caller opens the store itself, and the store says
/// what is wrong with the directory if anything is. Blocking: the client
/// needs no runtime for this.
pub fn call(path: &Path, request: &Request) -> anyhow::Result<Option<Response>> {
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(path) else { return Ok(None) };
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    let mut line = serde_json::to_vec(request).expect("a request serialises");
    line.push(b'\n');
    stream.write_all(&line).with_context(|| format!("writing to {}", path.display()))?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer).with_context(|| format!("reading from {}", path.display()))?;
    let response = serde_json::from_str(&answer)
        .with_context(|| format!("the server on {} did not answer (see its log)", path.display()))?;
    Ok(Some(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_servers_own_user_is_served() {
        assert!(peer_allowed(1000, 1000));
        assert!(peer_allowed(0, 0));
        assert!(!peer_allowed(1001, 1000));
        // Not even root: it can read the store anyway, but through the
        // socket it would act under another user's name.
        assert!(!peer_allowed(0, 1000));
    }

    #[tokio::test]
    async fn a_request_is_answered_and_the_socket_removed_at_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let path = path(dir.path());
        // A stale file, as a killed server leaves it.
        std::fs::write(&path, b"").unwrap();
        let handler: Handler = Arc::new(|request: Request| {
            Box::pin(async move { Response { exit_code: 3, stdout: request.args.join(" "), stderr: request.user } })
        });
        let (stop, stopping) = tokio::sync::oneshot::channel::<()>();
        let task = listen(path.clone(), handler, async move {
            let _ = stopping.await;
        })
        .await
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let request = Request {
            version: "0".into(),
            user: "ana".into(),
            lang: crate::domain::Lang::Es,
            bold: false,
            args: vec!["account".into(), "list".into()],
            files: Default::default(),
        };
        let (p, r) = (path.clone(), request.clone());
        let response = tokio::task::spawn_blocking(move || call(&p, &r)).await.unwrap().unwrap();
        assert_eq!(response, Some(Response { exit_code: 3, stdout: "account list".into(), stderr: "ana".into() }));
        stop.send(()).unwrap();
        task.await.unwrap();
        assert!(!path.exists());
        // Nothing listens: the caller opens the store itself.
        assert_eq!(call(&path, &request).unwrap(), None);
    }
}
