//! Cooperative cancellation: the caller keeps a clone of a [`Cancel`] and sets it; the pipeline
//! checks it between stages and inside its long loops and stops with
//! [`NlpError::Cancelled`](crate::NlpError::Cancelled).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A shared cancellation flag; clones share the flag.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag that is not set.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Sets the flag: work checking it stops at its next check.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the flag is set.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(NlpError::Cancelled)` once the flag is set.
    pub fn check(&self) -> Result<(), crate::NlpError> {
        if self.is_cancelled() {
            Err(crate::NlpError::Cancelled)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag() {
        let a = Cancel::new();
        let b = a.clone();
        assert!(!b.is_cancelled() && b.check().is_ok());
        a.cancel();
        assert!(b.is_cancelled());
        assert!(matches!(b.check(), Err(crate::NlpError::Cancelled)));
        assert!(!Cancel::new().is_cancelled());
    }
}
