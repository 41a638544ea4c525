//! How a run reports progress: the CLI draws a bar, the Python package its own, tests nothing.

/// Receives a run's progress; called from the run's task, so implementations must be cheap.
pub trait Progress: Send + Sync {
    /// `n` more essays are done (from the cache or the server).
    fn advance(&self, n: u64);
    /// A line worth showing the user now (a retry and why).
    fn note(&self, line: &str);
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {
    fn advance(&self, _n: u64) {}
    fn note(&self, _line: &str) {}
}
