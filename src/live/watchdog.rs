//! Automatic kill triggers (`[live.watchdog]`): conditions no operator should have to
//! notice by hand, each of which moves the risk state like an operator's command.
//!
//! - **Feed silence**: no bar for `max_feed_silence_secs` while a traded symbol's session
//!   is under way (it has had bars today and not its last one).
//! - **Broker errors**: `max_broker_errors_per_minute` orders the broker would not take
//!   within the last 60 s.
//! - **Loop latency**: a bar time's work (decisions, orders and the journal's group commit)
//!   took longer than `max_loop_latency_ms`.
//! - **Disk**: the journal's file system has less than `min_free_disk_mb` free.
//!
//! A trip sends `action` (`halt`: the kill switch, flatten and stop until `resume`;
//! `reduce`: reduce-only) with the reason as its source. The engine takes it at its next
//! control point and journals it as a command, so a restarted run applies it where it
//! was applied, as it does an operator's. The watchdog watches the wall clock, so it only
//! runs once a restart has caught up with its journal. A trigger fires once, and again only
//! after its condition has cleared and come back. Each setting is off at 0.

use super::control::Command;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// What a trip does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchdogAction {
    /// The kill switch: flatten and halt until `resume`.
    #[default]
    Halt,
    /// Only orders toward flat.
    Reduce,
}

impl WatchdogAction {
    fn command(self) -> Command {
        match self {
            WatchdogAction::Halt => Command::Kill,
            WatchdogAction::Reduce => Command::Reduce,
        }
    }
}

/// `[live.watchdog]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchdogConfig {
    pub max_feed_silence_secs: f64,
    pub max_broker_errors_per_minute: u32,
    pub max_loop_latency_ms: f64,
    pub min_free_disk_mb: f64,
    pub action: WatchdogAction,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        WatchdogConfig {
            max_feed_silence_secs: 120.0,
            max_broker_errors_per_minute: 10,
            max_loop_latency_ms: 1000.0,
            min_free_disk_mb: 100.0,
            action: WatchdogAction::Halt,
        }
    }
}

impl WatchdogConfig {
    /// Every trigger off.
    pub fn off() -> WatchdogConfig {
        WatchdogConfig {
            max_feed_silence_secs: 0.0,
            max_broker_errors_per_minute: 0,
            max_loop_latency_ms: 0.0,
            min_free_disk_mb: 0.0,
            action: WatchdogAction::Halt,
        }
    }

    /// Checks values that types alone cannot; errors name the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, v) in [
            ("max_feed_silence_secs", self.max_feed_silence_secs),
            ("max_loop_latency_ms", self.max_loop_latency_ms),
            ("min_free_disk_mb", self.min_free_disk_mb),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!(
                    "live.watchdog.{key} = {v}: give a number ≥ 0 (0 turns the trigger off)"
                ));
            }
        }
        Ok(())
    }
}

const NS: i64 = 1_000_000_000;

/// The triggers, in the order they are checked (their index in `fired`).
#[derive(Clone, Copy)]
enum Trigger {
    Silence = 0,
    Broker = 1,
    Latency = 2,
    Disk = 3,
}

/// The watchdog of one live run.
#[derive(Debug)]
pub struct Watchdog {
    cfg: WatchdogConfig,
    /// Wall time of the last bar taken, and whether a session was under way after it.
    last_bar_ns: Option<i64>,
    session_open: bool,
    /// Wall times of broker errors in the last minute.
    broker_errors: VecDeque<i64>,
    /// The last bar time's work, ms.
    last_latency_ms: f64,
    /// When the disk was last looked at, and what it had free (MB).
    disk_checked_ns: Option<i64>,
    free_mb: Option<f64>,
    /// Triggers fired and not yet cleared.
    fired: [bool; 4],
    /// Where the journal lives (its file system's free space).
    journal_dir: PathBuf,
}

impl Watchdog {
    /// A watchdog for a run whose journal lives in `journal_dir`.
    pub fn new(cfg: WatchdogConfig, journal_dir: PathBuf) -> Watchdog {
        Watchdog {
            cfg,
            last_bar_ns: None,
            session_open: false,
            broker_errors: VecDeque::new(),
            last_latency_ms: 0.0,
            disk_checked_ns: None,
            free_mb: None,
            fired: [false; 4],
            journal_dir,
        }
    }

    /// A bar was taken at `now_ns`; `session_open`: a traded symbol's session is still
    /// under way after it.
    pub fn bar(&mut self, now_ns: i64, session_open: bool) {
        self.last_bar_ns = Some(now_ns);
        self.session_open = session_open;
    }

    /// The broker would not take an order.
    pub fn broker_error(&mut self, now_ns: i64) {
        self.broker_errors.push_back(now_ns);
    }

    /// A bar time's work took `ms`.
    pub fn latency(&mut self, ms: f64) {
        self.last_latency_ms = ms;
    }

    /// The commands the triggers send at `now_ns`, each with its reason.
    pub fn check(&mut self, now_ns: i64) -> Vec<(Command, String)> {
        let cfg = &self.cfg;
        let mut reasons: [Option<String>; 4] = Default::default();

        let silence = self
            .last_bar_ns
            .filter(|_| self.session_open)
            .map(|t| (now_ns - t) as f64 / NS as f64);
        reasons[Trigger::Silence as usize] = silence
            .filter(|&s| cfg.max_feed_silence_secs > 0.0 && s > cfg.max_feed_silence_secs)
            .map(|s| {
                format!(
                    "no bar for {s:.1} s with a session under way (max_feed_silence_secs = {})",
                    cfg.max_feed_silence_secs
                )
            });

        while self
            .broker_errors
            .front()
            .is_some_and(|&t| t <= now_ns - 60 * NS)
        {
            self.broker_errors.pop_front();
        }
        let errors = self.broker_errors.len();
        let max_errors = cfg.max_broker_errors_per_minute as usize;
        reasons[Trigger::Broker as usize] = (max_errors > 0 && errors >= max_errors).then(|| {
            format!(
                "{errors} broker errors in the last minute (max_broker_errors_per_minute = {max_errors})"
            )
        });

        let ms = self.last_latency_ms;
        reasons[Trigger::Latency as usize] =
            (cfg.max_loop_latency_ms > 0.0 && ms > cfg.max_loop_latency_ms).then(|| {
                format!(
                    "a bar time's work took {ms:.3} ms (max_loop_latency_ms = {})",
                    cfg.max_loop_latency_ms
                )
            });

        if cfg.min_free_disk_mb > 0.0 && self.disk_checked_ns.is_none_or(|t| now_ns - t >= NS) {
            self.disk_checked_ns = Some(now_ns);
            self.free_mb = free_mb(&self.journal_dir);
        }
        reasons[Trigger::Disk as usize] = self
            .free_mb
            .filter(|&f| cfg.min_free_disk_mb > 0.0 && f < cfg.min_free_disk_mb)
            .map(|f| {
                format!(
                    "{f:.0} MB free for the journal in {} (min_free_disk_mb = {})",
                    self.journal_dir.display(),
                    cfg.min_free_disk_mb
                )
            });

        let action = cfg.action.command();
        let mut out = Vec::new();
        for (fired, reason) in self.fired.iter_mut().zip(reasons) {
            match reason {
                Some(why) if !*fired => {
                    *fired = true;
                    tracing::warn!(reason = %why, "live: watchdog tripped");
                    out.push((action, format!("watchdog: {why}")));
                }
                Some(_) => {}
                None => *fired = false,
            }
        }
        out
    }
}

/// Free space (MB) for an unprivileged writer on the file system holding `dir`, if it
/// can be read.
fn free_mb(dir: &Path) -> Option<f64> {
    use std::os::unix::ffi::OsStrExt;
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string and `st` a writable statvfs.
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as f64 * st.f_frsize as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(cfg: impl FnOnce(&mut WatchdogConfig)) -> Watchdog {
        let mut c = WatchdogConfig::off();
        cfg(&mut c);
        Watchdog::new(c, PathBuf::from("."))
    }

    #[test]
    fn silence_fires_once_in_a_session_and_clears_with_a_bar() {
        let mut w = only(|c| c.max_feed_silence_secs = 2.0);
        assert!(w.check(100 * NS).is_empty(), "no bar yet");
        w.bar(100 * NS, true);
        assert!(
            w.check(102 * NS).is_empty(),
            "2 s is the limit, not past it"
        );
        let trips = w.check(102 * NS + 1);
        assert_eq!(trips.len(), 1);
        assert_eq!(trips[0].0, Command::Kill);
        assert!(
            trips[0].1.starts_with("watchdog: no bar for 2.0 s"),
            "{trips:?}"
        );
        assert!(w.check(110 * NS).is_empty(), "fired once");
        w.bar(111 * NS, true);
        assert!(w.check(112 * NS).is_empty());
        assert_eq!(w.check(114 * NS).len(), 1, "fires again after clearing");
        // No session under way (the last bars of the day are in): silence is expected.
        w.bar(120 * NS, false);
        assert!(w.check(1000 * NS).is_empty());
    }

    #[test]
    fn broker_errors_count_over_a_sliding_minute() {
        let mut w = only(|c| {
            c.max_broker_errors_per_minute = 3;
            c.action = WatchdogAction::Reduce;
        });
        for t in [0, 10, 65] {
            w.broker_error(t * NS);
        }
        // At 65 s the error at 0 s has left the window: 2 in the minute.
        assert!(w.check(65 * NS).is_empty());
        w.broker_error(66 * NS);
        let trips = w.check(66 * NS);
        assert_eq!(trips.len(), 1);
        assert_eq!(trips[0].0, Command::Reduce);
        assert!(
            trips[0].1.contains("3 broker errors in the last minute"),
            "{trips:?}"
        );
    }

    #[test]
    fn latency_and_disk_trip_past_their_bounds() {
        let mut w = only(|c| c.max_loop_latency_ms = 5.0);
        w.latency(5.0);
        assert!(w.check(0).is_empty());
        w.latency(5.5);
        assert!(w.check(0)[0].1.contains("took 5.500 ms"));

        let free = free_mb(Path::new(".")).expect("statvfs of the working directory");
        assert!(free > 0.0);
        let mut w = only(|c| c.min_free_disk_mb = free * 10.0 + 1e6);
        let trips = w.check(0);
        assert_eq!(trips.len(), 1);
        assert!(trips[0].1.contains("MB free for the journal"), "{trips:?}");
        let mut w = only(|c| c.min_free_disk_mb = 1e-9);
        assert!(w.check(0).is_empty());
    }

    #[test]
    fn bad_settings_name_their_key() {
        let mut c = WatchdogConfig::off();
        c.max_feed_silence_secs = -1.0;
        assert!(c.validate().unwrap_err().contains("max_feed_silence_secs"));
        c.max_feed_silence_secs = 0.0;
        c.min_free_disk_mb = f64::NAN;
        assert!(c.validate().unwrap_err().contains("min_free_disk_mb"));
    }
}
