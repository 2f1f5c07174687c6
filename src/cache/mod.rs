//! (in progress) Memory-mapped columnar day caches.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{}: {detail}", path.display())]
    Corrupt { path: PathBuf, detail: String },
}
