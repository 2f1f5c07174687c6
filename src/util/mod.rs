//! Small helpers every layer shares, each written once: atomic file writes ([`fs`]), means
//! and percentiles ([`stats`]), escaping for HTML and SVG ([`text`]), and sizes checked
//! against the memory available before they are allocated ([`mem`]). Nothing here
//! knows about markets, caches or models.

pub mod fs;
pub mod mem;
pub mod stats;
pub mod text;
