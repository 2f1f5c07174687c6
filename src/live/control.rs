//! How an operator steers a live run, and sees it.
//!
//! **Commands** ([`Command`]): `kill` (the kill switch: every target becomes flat and the
//! risk manager halts until `resume`), `reduce` (only position-reducing orders), `resume`
//! (back to active trading). They come from
//! - signals: `SIGUSR1` is the kill switch; `SIGTERM` / `SIGINT` stop the run in order
//!   (the bar under way finishes, the journal is committed, positions are kept);
//! - the kill file (`--kill-file`): its appearance is a kill, taken once per appearance
//!   (its inode and modification time name it in the journal, so a restart does not take
//!   it twice, and a `resume` while it still exists holds; touch it, or delete and create
//!   it again, to kill again);
//! - the endpoint (`--listen 127.0.0.1:PORT`): `POST /kill`, `POST /reduce`,
//!   `POST /resume`.
//!
//! Commands are queued here and taken by the engine at its next control point (see
//! [`super::engine`]), where each is journaled before it acts.
//!
//! **Endpoint** (loopback only; hyper's HTTP/1 server, bounded and timed out, see
//! [`serve`]): `GET /metrics` (Prometheus text format, [`super::metrics`]), `GET /state`
//! (JSON), and the commands above.

use super::metrics::LiveMetrics;
use crate::error::{Error, IoContext, Result};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An operator's command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Kill,
    Reduce,
    Resume,
}

static SIGNAL_KILL: AtomicBool = AtomicBool::new(false);
static SIGNAL_STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_kill_signal(_: libc::c_int) {
    SIGNAL_KILL.store(true, Ordering::SeqCst);
}

extern "C" fn on_stop_signal(_: libc::c_int) {
    SIGNAL_STOP.store(true, Ordering::SeqCst);
}

/// Where commands come from, and where the engine publishes its metrics.
pub struct Controls {
    kill_file: Option<PathBuf>,
    /// The source of the last kill taken from the kill file: it names the file's
    /// identity (inode, modification time), so a file created again is a new kill.
    kill_file_taken: Mutex<Option<String>>,
    queue: Mutex<Vec<(Command, String)>>,
    metrics: Mutex<Option<LiveMetrics>>,
    signals: bool,
}

impl Controls {
    /// Controls watching `kill_file`; `signals`: install the handlers of `SIGUSR1`
    /// (kill) and `SIGTERM` / `SIGINT` (stop).
    pub fn new(kill_file: Option<PathBuf>, signals: bool) -> Arc<Controls> {
        if signals {
            // SAFETY: the handlers only store to atomics.
            unsafe {
                libc::signal(
                    libc::SIGUSR1,
                    on_kill_signal as *const () as libc::sighandler_t,
                );
                libc::signal(
                    libc::SIGTERM,
                    on_stop_signal as *const () as libc::sighandler_t,
                );
                libc::signal(
                    libc::SIGINT,
                    on_stop_signal as *const () as libc::sighandler_t,
                );
            }
        }
        Arc::new(Controls {
            kill_file,
            kill_file_taken: Mutex::new(None),
            queue: Mutex::new(Vec::new()),
            metrics: Mutex::new(None),
            signals,
        })
    }

    /// Queues a command (the endpoint).
    pub fn send(&self, command: Command, source: &str) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((command, source.to_string()));
    }

    /// A stop was asked for (`SIGTERM` / `SIGINT`).
    pub fn stop_requested(&self) -> bool {
        self.signals && SIGNAL_STOP.load(Ordering::SeqCst)
    }

    /// The commands that arrived since the last call, in order: a kill signal, the kill
    /// file's appearance, then the endpoint's queue.
    pub fn take(&self) -> Vec<(Command, String)> {
        let mut out = Vec::new();
        if self.signals && SIGNAL_KILL.swap(false, Ordering::SeqCst) {
            out.push((Command::Kill, "signal SIGUSR1".to_string()));
        }
        if let Some(f) = &self.kill_file
            && let Some(source) = kill_file_source(f)
        {
            let taken = self
                .kill_file_taken
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if taken.as_deref() != Some(source.as_str()) {
                out.push((Command::Kill, source));
            }
        }
        out.append(&mut self.queue.lock().unwrap_or_else(|e| e.into_inner()));
        out
    }

    /// The engine applied `command` (live or from the journal on a restart): the same
    /// appearance of the kill file is not taken twice.
    pub fn applied(&self, command: Command, source: &str) {
        if command == Command::Kill
            && let Some(f) = &self.kill_file
            && source.starts_with(&format!("kill file {} (", f.display()))
        {
            *self
                .kill_file_taken
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(source.to_string());
        }
    }

    /// The engine's latest metrics.
    pub fn publish(&self, m: &LiveMetrics) {
        *self.metrics.lock().unwrap_or_else(|e| e.into_inner()) = Some(m.clone());
    }

    fn metrics(&self) -> Option<LiveMetrics> {
        self.metrics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The kill file's source as journaled, naming this appearance of it; `None` while it
/// does not exist.
fn kill_file_source(f: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(f).ok()?;
    Some(format!(
        "kill file {} (inode {}, modified {}.{:09})",
        f.display(),
        m.ino(),
        m.mtime(),
        m.mtime_nsec()
    ))
}

/// Requests served at once; further connections wait in the kernel's backlog until one
/// finishes.
const MAX_CONNECTIONS: usize = 64;

/// A connection's whole exchange (request head read, answer written) must finish within
/// this, or it is dropped.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the endpoint on `addr` (a loopback address) from a background thread, with
/// hyper's HTTP/1 server on a single-threaded tokio runtime: at most [`MAX_CONNECTIONS`]
/// at once, request heads of at most 8 KiB (a body is never read), every exchange within
/// [`TIMEOUT`], one request per connection. Returns the address bound (port 0 picks a
/// free one).
pub fn serve(addr: &str, controls: Arc<Controls>) -> Result<SocketAddr> {
    let parsed: SocketAddr = addr.parse().map_err(|_| {
        Error::Usage(format!(
            "--listen {addr}: give a loopback address and port, e.g. 127.0.0.1:9184"
        ))
    })?;
    if !parsed.ip().is_loopback() {
        return Err(Error::Usage(format!(
            "--listen {addr}: the endpoint takes commands, so it only listens on loopback (127.0.0.1 or [::1])"
        )));
    }
    let at = std::path::Path::new(addr);
    let listener = std::net::TcpListener::bind(parsed).at(at)?;
    listener.set_nonblocking(true).at(at)?;
    let bound = listener.local_addr().at(at)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .at(at)?;
    std::thread::Builder::new()
        .name("live-endpoint".into())
        .spawn(move || runtime.block_on(accept(listener, controls)))
        .at(at)?;
    tracing::info!(%bound, "live: endpoint listening (GET /metrics, GET /state, POST /kill | /reduce | /resume)");
    Ok(bound)
}

/// Accepts connections for as long as the process runs, each served by its own task.
async fn accept(listener: std::net::TcpListener, controls: Arc<Controls>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("endpoint: cannot listen: {e}");
            return;
        }
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("endpoint: accept: {e}");
                continue;
            }
        };
        let controls = controls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |request: Request<Incoming>| {
                let answer = respond(request.method(), request.uri().path(), peer, &controls);
                async move { Ok::<_, std::convert::Infallible>(answer) }
            });
            let mut http = http1::Builder::new();
            http.keep_alive(false)
                .max_buf_size(8192)
                .timer(TokioTimer::new())
                .header_read_timeout(TIMEOUT);
            let served = http.serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(TIMEOUT, served).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!("endpoint: {peer}: {e}"),
                Err(_) => tracing::debug!("endpoint: {peer}: timed out"),
            }
        });
    }
}

/// The answer to `method path` from `peer`.
fn respond(
    method: &Method,
    path: &str,
    peer: SocketAddr,
    controls: &Controls,
) -> Response<Full<Bytes>> {
    let (status, kind, body) = match (method.as_str(), path) {
        ("GET", "/metrics") => match controls.metrics() {
            Some(m) => (StatusCode::OK, super::metrics::CONTENT_TYPE, m.render()),
            None => not_yet(),
        },
        ("GET", "/state") => match controls.metrics() {
            Some(m) => {
                let positions: std::collections::BTreeMap<&str, i64> = m
                    .symbols
                    .iter()
                    .map(String::as_str)
                    .zip(m.positions.iter().copied())
                    .filter(|(_, p)| *p != 0)
                    .collect();
                let state = serde_json::json!({
                    "state": m.state,
                    "equity": m.equity,
                    "realized": m.realized,
                    "costs": m.costs,
                    "positions": positions,
                    "decisions": m.decisions,
                    "orders": m.orders,
                    "fills": m.fills,
                    "rejections": m.rejections,
                    "inputs": m.inputs,
                    "bad_bars": m.bad_bars,
                });
                (StatusCode::OK, "application/json", format!("{state}\n"))
            }
            None => not_yet(),
        },
        ("POST", "/kill" | "/reduce" | "/resume") => {
            let command = match path {
                "/kill" => Command::Kill,
                "/reduce" => Command::Reduce,
                _ => Command::Resume,
            };
            controls.send(command, &format!("endpoint {path} from {peer}"));
            (
                StatusCode::ACCEPTED,
                "text/plain",
                format!(
                    "{command:?} queued: taken at the next bar, or within 100 ms while the feed is idle\n"
                ),
            )
        }
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "GET /metrics, GET /state, POST /kill, POST /reduce, POST /resume\n".into(),
        ),
    };
    let mut answer = Response::new(Full::new(Bytes::from(body)));
    *answer.status_mut() = status;
    answer
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    answer
}

/// The answer before the engine has published anything.
fn not_yet() -> (StatusCode, &'static str, String) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "text/plain",
        "no bar handled yet\n".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_appearance_of_the_kill_file_is_one_kill_also_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("KILL");
        let controls = Controls::new(Some(file.clone()), false);
        assert!(controls.take().is_empty());
        std::fs::write(&file, "").unwrap();
        let taken = controls.take();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].0, Command::Kill);
        let source = taken[0].1.clone();
        assert!(source.starts_with(&format!("kill file {} (inode ", file.display())));
        controls.applied(Command::Kill, &source);
        // Still there: not taken again (a resume holds).
        assert!(controls.take().is_empty());
        // A restart re-applies the journaled kill: the same file is not taken twice.
        let restarted = Controls::new(Some(file.clone()), false);
        restarted.applied(Command::Kill, &source);
        assert!(restarted.take().is_empty());
        // Deleted and created again (while the process was down, say): a new kill.
        std::fs::remove_file(&file).unwrap();
        assert!(restarted.take().is_empty());
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&file, "again").unwrap();
        let again = restarted.take();
        assert_eq!(again.len(), 1, "{again:?}");
        assert_ne!(again[0].1, source);
    }

    #[test]
    fn commands_from_the_endpoint_queue_in_order() {
        let controls = Controls::new(None, false);
        controls.send(Command::Reduce, "a");
        controls.send(Command::Resume, "b");
        assert_eq!(
            controls.take(),
            vec![(Command::Reduce, "a".into()), (Command::Resume, "b".into())]
        );
        assert!(controls.take().is_empty());
    }
}
