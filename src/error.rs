//! The library's typed errors. Each variant carries the offending path / key / value as data
//! and renders as one line that says what is wrong and how to fix it; `main` prints that line
//! and exits with [`Error::exit_code`].

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A configuration file, key or value is wrong.
    #[error("config: {0}")]
    Config(String),
    /// The command line asks for something impossible (bad date range, missing option...).
    #[error("{0}")]
    Usage(String),
    /// A vendor / input file is malformed or of the wrong format.
    #[error("{}: {detail}", path.display())]
    Input { path: PathBuf, detail: String },
    /// Input data that is not one file cannot be used (a day with no session bars to
    /// trade, an episode that cannot take a step).
    #[error("{0}")]
    Data(String),
    /// A symbol-day failed validation under the `fail` policy.
    #[error("{symbol} {date}: {detail}")]
    Validation {
        symbol: String,
        date: chrono::NaiveDate,
        detail: String,
    },
    /// A day cache is missing, truncated, corrupt, foreign or stale.
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    /// The requested data does not exist (unknown symbol or date).
    #[error("{0}")]
    NotFound(String),
    /// What was asked (a command, or a checkpoint to run) needs libtorch, which this binary
    /// does not link, and `sim-train-torch`, which does, cannot be run. Holds the whole
    /// line: what was asked, where the companion was looked for, how to build it.
    #[error("{0}")]
    NeedsTorch(String),
    /// A GPU backend cannot run here: not compiled in, no driver or adapter, not enough
    /// device memory, a kernel that does not build.
    #[error("{0}")]
    Device(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn input(path: impl Into<PathBuf>, detail: impl Into<String>) -> Error {
        Error::Input {
            path: path.into(),
            detail: detail.into(),
        }
    }

    /// Exit codes scripts can rely on (documented in the README):
    /// 1 I/O, 2 usage or config (a command this build lacks included), 3 bad input data,
    /// 4 cache integrity, 5 not found, 6 GPU backend unavailable or failing.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Io { .. } => 1,
            Error::Config(_) | Error::Usage(_) | Error::NeedsTorch(_) => 2,
            Error::Input { .. } | Error::Data(_) | Error::Validation { .. } => 3,
            Error::Cache(_) => 4,
            Error::NotFound(_) => 5,
            Error::Device(_) => 6,
        }
    }
}

/// Adds the path to an `io::Result`.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
