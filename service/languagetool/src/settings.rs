//! The pool's settings: which LanguageTool instances, which API they speak, how checks are
//! made and cached. The server reads them from flags, environment and its file and hands them here.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which HTTP API the LanguageTool upstreams speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Flavour {
    /// LanguageTool's own `/v2/check` (form-encoded).
    Languagetool,
    /// The Hemma JSON wrapper's `/v1/check`.
    Wrapper,
}

/// The LanguageTool upstreams and how to use them.
#[derive(Debug, Clone, Serialize)]
pub struct LanguageToolConfig {
    /// Base URLs, one per instance.
    pub urls: Vec<String>,
    /// Their API.
    pub flavour: Flavour,
    /// The LanguageTool version behind the wrapper flavour, which does not report it (required
    /// there; LanguageTool's own API reports its version, so it is `None` with that flavour).
    pub version: Option<String>,
    /// Options of every check unless a request gives its own.
    pub options: crate::CheckOptions,
    /// Pool behaviour.
    #[serde(skip)]
    pub pool: crate::pool::PoolConfig,
    /// Memory budget of the result cache.
    pub cache_bytes: usize,
    /// Disk cache folder.
    pub cache_dir: Option<PathBuf>,
}
