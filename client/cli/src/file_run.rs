//! What the file commands (`embed`, `check`) share: their error type, the progress bar, and
//! writing an output through a temporary file so a failed run leaves nothing half-written.

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use hemma_client::ClientError;

/// Why a file run failed.
#[derive(Debug, thiserror::Error)]
pub enum FileRunError {
    /// A request failed; `first..end` are the input rows it carried.
    #[error("essays {first}..{end} of the input: {source}")]
    Request {
        /// First row of the failed request.
        first: usize,
        /// One past its last row.
        end: usize,
        /// The error.
        source: ClientError,
    },
    /// The server was replaced mid-run (its fingerprint changed).
    #[error("the server's fingerprint changed during the run (was {was}, now {now}); run again")]
    FingerprintChanged {
        /// Fingerprint of the first answer.
        was: String,
        /// Fingerprint of a later one.
        now: String,
    },
    /// Writing an output failed.
    #[error("cannot write {path}: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

impl FileRunError {
    /// A write error about `path`.
    pub fn write(path: &Path, e: &dyn std::fmt::Display) -> FileRunError {
        FileRunError::Write {
            path: path.to_owned(),
            message: e.to_string(),
        }
    }
}

/// A progress bar over `n` essays on stderr, or a hidden one.
pub fn progress_bar(n: usize, show: bool) -> ProgressBar {
    let bar = if show {
        ProgressBar::new(n as u64)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} essays {per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// Checks that every answer carries the first answer's fingerprint.
#[derive(Debug, Default)]
pub struct SameServer {
    fingerprint: Option<String>,
}

impl SameServer {
    /// Records `fingerprint`, or fails if it differs from the first one seen.
    pub fn check(&mut self, fingerprint: &str) -> Result<(), FileRunError> {
        match &self.fingerprint {
            None => {
                self.fingerprint = Some(fingerprint.to_owned());
                Ok(())
            }
            Some(was) if was == fingerprint => Ok(()),
            Some(was) => Err(FileRunError::FingerprintChanged {
                was: was.clone(),
                now: fingerprint.to_owned(),
            }),
        }
    }

    /// The fingerprint of the run (empty if nothing was answered).
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone().unwrap_or_default()
    }
}

/// Writes `out` through the one atomic writer ([`hemma_runs::atomic`]).
pub fn write_atomically(
    out: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> Result<(), FileRunError>,
) -> Result<(), FileRunError> {
    hemma_runs::atomic::write_atomically(out, write)
}

impl From<std::io::Error> for FileRunError {
    fn from(e: std::io::Error) -> FileRunError {
        FileRunError::Write {
            path: PathBuf::new(),
            message: e.to_string(),
        }
    }
}

/// A [`hemma_runs::Progress`] drawn as an indicatif bar; retry lines go above it, or to stderr
/// when the bar is hidden (`--quiet`).
pub struct Bar(pub ProgressBar);

impl hemma_runs::Progress for Bar {
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }

    fn note(&self, line: &str) {
        match self.0.is_hidden() {
            true => eprintln!("{line}"),
            false => self.0.println(line),
        }
    }
}
