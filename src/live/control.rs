//! How an operator steers a live run, and sees it.
//!
//! **Commands** ([`Command`]): `kill` (the kill switch: every target becomes flat and the
//! risk manager halts until `resume`), `reduce` (only position-reducing orders), `resume`
//! (back to active trading). They come from
//! - signals: `SIGUSR1` is the kill switch; `SIGTERM` / `SIGINT` stop the run in order
//!   (the bar under way finishes, the journal is committed, positions are kept);
//! - the kill file (`--kill-file`): its appearance is a kill, taken once per appearance
//!   (a `resume` while the file still exists holds; delete it and create it again to
//!   kill again);
//! - the endpoint (`--listen 127.0.0.1:PORT`): `POST /kill`, `POST /reduce`,
//!   `POST /resume`.
//!
//! Commands are queued here and taken by the engine at its next control point (see
//! [`super::engine`]), where each is journaled before it acts.
//!
//! **Endpoint** (loopback only): `GET /metrics` (Prometheus text format,
//! [`super::metrics`]), `GET /state` (JSON), and the commands above.

use super::metrics::LiveMetrics;
use crate::error::{Error, IoContext, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

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
    /// The kill file has been acted on since it last appeared.
    kill_file_taken: AtomicBool,
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
            kill_file_taken: AtomicBool::new(false),
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
        if let Some(f) = &self.kill_file {
            if f.exists() {
                if !self.kill_file_taken.load(Ordering::SeqCst) {
                    out.push((Command::Kill, kill_file_source(f)));
                }
            } else {
                self.kill_file_taken.store(false, Ordering::SeqCst);
            }
        }
        out.append(&mut self.queue.lock().unwrap_or_else(|e| e.into_inner()));
        out
    }

    /// The engine applied `command` (live or from the journal on a restart): a kill
    /// from the kill file is not taken twice.
    pub fn applied(&self, command: Command, source: &str) {
        if command == Command::Kill
            && self
                .kill_file
                .as_ref()
                .is_some_and(|f| source == kill_file_source(f))
        {
            self.kill_file_taken.store(true, Ordering::SeqCst);
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

fn kill_file_source(f: &std::path::Path) -> String {
    format!("kill file {}", f.display())
}

/// Serves the endpoint on `addr` (a loopback address) from a background thread; returns
/// the address bound (port 0 picks a free one).
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
    let listener = TcpListener::bind(parsed).at(std::path::Path::new(addr))?;
    let bound = listener.local_addr().at(std::path::Path::new(addr))?;
    std::thread::Builder::new()
        .name("live-endpoint".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = handle(stream, &controls) {
                    tracing::debug!("endpoint: {e}");
                }
            }
        })
        .map_err(|e| Error::io(std::path::Path::new(addr), e))?;
    tracing::info!(%bound, "live: endpoint listening (GET /metrics, GET /state, POST /kill | /reduce | /resume)");
    Ok(bound)
}

/// One HTTP/1.x request, answered and closed.
fn handle(stream: TcpStream, controls: &Controls) -> std::io::Result<()> {
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // Headers, up to the blank line (a body, if any, is not needed).
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let mut parts = request.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, kind, body) = match (method, path) {
        ("GET", "/metrics") => match controls.metrics() {
            Some(m) => ("200 OK", "text/plain; version=0.0.4", m.render()),
            None => (
                "503 Service Unavailable",
                "text/plain",
                "no bar handled yet\n".into(),
            ),
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
                ("200 OK", "application/json", format!("{state}\n"))
            }
            None => (
                "503 Service Unavailable",
                "text/plain",
                "no bar handled yet\n".into(),
            ),
        },
        ("POST", "/kill" | "/reduce" | "/resume") => {
            let command = match path {
                "/kill" => Command::Kill,
                "/reduce" => Command::Reduce,
                _ => Command::Resume,
            };
            let peer = reader
                .get_ref()
                .peer_addr()
                .map_or("?".into(), |a| a.to_string());
            controls.send(command, &format!("endpoint {path} from {peer}"));
            (
                "202 Accepted",
                "text/plain",
                format!(
                    "{command:?} queued: taken at the next bar, or within 100 ms while the feed is idle\n"
                ),
            )
        }
        _ => (
            "404 Not Found",
            "text/plain",
            "GET /metrics, GET /state, POST /kill, POST /reduce, POST /resume\n".into(),
        ),
    };
    let mut out = reader.into_inner();
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}
