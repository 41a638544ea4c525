//! The pool's settings: which LanguageTool instances, which API they speak, how checks are
//! made and cached. The server reads them from flags, environment and its file and hands them here.

use std::path::PathBuf;

use serde::{Deserialize, Serialize, Serializer};

use crate::upstream::redact;

/// The default size cap of the disk cache: 1 GiB.
pub const DEFAULT_DISK_CACHE_MAX_BYTES: u64 = 1 << 30;

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

/// The LanguageTool upstreams and how to use them. Its `Debug` and serde forms (what the server
/// logs at start) show the URLs redacted.
#[derive(Clone, Serialize)]
pub struct LanguageToolConfig {
    /// Base URLs, one per instance (credentials and a query, such as a token, are sent with
    /// every request and never shown).
    #[serde(serialize_with = "redacted")]
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
    /// Size cap of the disk cache in bytes (at least 1); past it the least recently used
    /// results go first.
    pub disk_cache_max_bytes: u64,
}

impl std::fmt::Debug for LanguageToolConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self.urls.iter().map(|u| redact(u)).collect();
        f.debug_struct("LanguageToolConfig")
            .field("urls", &urls)
            .field("flavour", &self.flavour)
            .field("version", &self.version)
            .field("options", &self.options)
            .field("pool", &self.pool)
            .field("cache_bytes", &self.cache_bytes)
            .field("cache_dir", &self.cache_dir)
            .field("disk_cache_max_bytes", &self.disk_cache_max_bytes)
            .finish()
    }
}

fn redacted<S: Serializer>(urls: &[String], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(urls.iter().map(|u| redact(u)))
}
