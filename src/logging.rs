//! Logs (`tracing`, human or JSON, to stderr) and progress bars (indicatif, on stderr, only
//! when it is a terminal and logs are human-readable), set up once by the binary. Colours
//! only when stderr is a terminal and `NO_COLOR` is unset or empty (no-color.org), so a log
//! piped or written to a file holds no escape codes.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_subscriber::EnvFilter;

/// Log output format (`--log-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

static PROGRESS: AtomicBool = AtomicBool::new(true);

/// Installs the global subscriber. `verbosity`: -1 quiet (warnings), 0 info, 1 debug,
/// 2+ trace. `RUST_LOG`, when set, takes precedence.
pub fn init(format: LogFormat, verbosity: i8) {
    let level = match verbosity {
        i8::MIN..=-1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("sim_train={level},warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .with_target(false);
    let _ = match format {
        LogFormat::Pretty => builder.compact().try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    PROGRESS.store(
        format == LogFormat::Pretty && verbosity >= 0,
        Ordering::Relaxed,
    );
}

/// Whether to colour logs: on a terminal, unless `NO_COLOR` is set to a non-empty value.
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// A progress bar of `len` steps; hidden when `enabled` is false, when logs are JSON or
/// quiet, or when stderr is not a terminal.
pub fn progress(len: u64, what: &str, enabled: bool) -> ProgressBar {
    if !enabled || !PROGRESS.load(Ordering::Relaxed) {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} ({eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.set_prefix(what.to_string());
    pb
}

#[cfg(test)]
mod tests {
    use super::colour;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
        assert!(!colour(false, Some("".into())));
    }
}
