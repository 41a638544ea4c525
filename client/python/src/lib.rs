//! `hemma._hemma`: the Rust side of the `hemma` Python package. It holds one tokio runtime and one
//! connected [`hemma_client::Client`] per Python `Client`, runs corpus extractions through
//! [`hemma_runs`] (the same cache, window, retries and resume as `hemma extract`), and hands
//! matrices to Python as little-endian float32 bytes that the package wraps with numpy.
//!
//! Every call releases the GIL while it waits. A running extraction checks for Ctrl-C every
//! 200 ms and stops when one arrives; the chunks already answered stay in the cache. Errors are
//! Python exceptions named after the gRPC status the server answered (the Python package
//! re-exports them).
#![deny(missing_docs)]

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use hemma_client::{ClientError, ClientOptions};
use hemma_proto::v1::{FeatureSet, InfoResponse};
use hemma_runs::{Essay, Progress, RunError, RunOptions};
use ndarray::Array2;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use serde_json::json;

create_exception!(
    _hemma,
    HemmaError,
    PyException,
    "Any failure of a hemma-offload call."
);
create_exception!(
    _hemma,
    ConnectError,
    HemmaError,
    "No connection to the server: is it running, and the SSH tunnel up?"
);
create_exception!(
    _hemma,
    InvalidArgument,
    HemmaError,
    "The server refused the input (the message names the text and why)."
);
create_exception!(
    _hemma,
    Unavailable,
    HemmaError,
    "The server or a dependency (model loading, LanguageTool) is not available; retry later."
);
create_exception!(
    _hemma,
    ResourceExhausted,
    HemmaError,
    "The server's queue is full; retry later."
);
create_exception!(
    _hemma,
    DeadlineExceeded,
    HemmaError,
    "A call took longer than its deadline."
);
create_exception!(
    _hemma,
    FailedPrecondition,
    HemmaError,
    "The server cannot do this as configured (e.g. no LanguageTool for handcrafted features)."
);
create_exception!(
    _hemma,
    FingerprintChanged,
    HemmaError,
    "The server was replaced mid-run by one whose features differ; run again."
);

/// The Python exception for a server status code, with the server's sentence.
fn status_error(code: tonic::Code, message: String) -> PyErr {
    use tonic::Code::*;
    match code {
        InvalidArgument => crate::InvalidArgument::new_err(message),
        Unavailable => crate::Unavailable::new_err(message),
        ResourceExhausted => crate::ResourceExhausted::new_err(message),
        DeadlineExceeded => crate::DeadlineExceeded::new_err(message),
        FailedPrecondition => crate::FailedPrecondition::new_err(message),
        _ => HemmaError::new_err(message),
    }
}

/// A client error as a Python exception.
fn client_error(e: ClientError) -> PyErr {
    let message = e.to_string();
    match e {
        ClientError::Connect { .. } | ClientError::Endpoint { .. } => {
            ConnectError::new_err(message)
        }
        ClientError::Status { code, .. } => status_error(code, message),
        ClientError::Malformed(_) => HemmaError::new_err(message),
    }
}

/// A run error as a Python exception.
fn run_error(e: RunError) -> PyErr {
    let message = e.to_string();
    match e {
        RunError::Client(c) => client_error(c),
        RunError::Refused { code, .. } => status_error(code, message),
        RunError::MissingPrompt { .. } => crate::InvalidArgument::new_err(message),
        RunError::GaveUp { .. } => crate::Unavailable::new_err(message),
        RunError::FingerprintChanged { .. } | RunError::FingerprintsDiffer { .. } => {
            FingerprintChanged::new_err(message)
        }
        RunError::NoServers => crate::InvalidArgument::new_err(message),
        RunError::Cache(_) => HemmaError::new_err(message),
    }
}

/// A matrix as `(bytes, rows, cols)`: float32 little-endian, row-major.
fn matrix<'py>(py: Python<'py>, m: &Array2<f32>) -> (Bound<'py, PyBytes>, usize, usize) {
    let (rows, cols) = m.dim();
    let bytes: Vec<u8> = m
        .as_standard_layout()
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    (PyBytes::new(py, &bytes), rows, cols)
}

/// `Info` as JSON text (the Python package parses it into a dict).
fn info_json(info: &InfoResponse) -> String {
    let model = info.model.clone().unwrap_or_default();
    let limits = info.limits.unwrap_or_default();
    json!({
        "fingerprint": info.fingerprint,
        "schema_version": info.schema_version,
        "server_version": info.server_version,
        "git_sha": info.git_sha,
        "languagetool_version": info.languagetool_version,
        "nlp_sha256": info.nlp_sha256,
        "model": {
            "model_id": model.model_id,
            "model_sha256": model.model_sha256,
            "tokenizer_sha256": model.tokenizer_sha256,
            "max_length": model.max_length,
            "pooling": model.pooling,
            "dim": model.dim,
            "engine": model.engine,
            "execution_provider": model.execution_provider,
            "precision": model.precision,
        },
        "limits": {
            "max_items_per_request": limits.max_items_per_request,
            "max_bytes_per_text": limits.max_bytes_per_text,
            "max_bytes_per_request": limits.max_bytes_per_request,
            "max_message_bytes": limits.max_message_bytes,
        },
        "embedding_feature_names": info.embedding_feature_names,
        "handcrafted_feature_names": info.handcrafted_feature_names,
    })
    .to_string()
}

/// Reports a run's progress to a Python callable `callback(n_done_now)` (and retry lines to
/// `note(line)` when given).
struct PyProgress {
    advance: Option<Py<PyAny>>,
    note: Option<Py<PyAny>>,
}

impl Progress for PyProgress {
    fn advance(&self, n: u64) {
        if let Some(cb) = &self.advance {
            // A failing progress callback must not fail the run.
            let _ = Python::attach(|py| cb.call1(py, (n,)));
        }
    }

    fn note(&self, line: &str) {
        match &self.note {
            Some(cb) => {
                let _ = Python::attach(|py| cb.call1(py, (line,)));
            }
            None => eprintln!("{line}"),
        }
    }
}

/// Connections to one or more hemma-offload servers, with their own runtime.
#[pyclass(module = "hemma._hemma")]
struct Client {
    runtime: tokio::runtime::Runtime,
    /// The first server: info, health and embed go to it.
    client: hemma_client::Client,
    /// Every server: extractions spread their chunks over them.
    servers: Vec<hemma_client::Client>,
}

impl Client {
    /// Runs `work` on the runtime with the GIL released, checking for Ctrl-C every 200 ms; a
    /// Ctrl-C drops `work` (which stops it) and raises KeyboardInterrupt.
    fn wait<T: Send>(&self, py: Python<'_>, work: impl Future<Output = T> + Send) -> PyResult<T> {
        py.detach(|| {
            self.runtime.block_on(async {
                tokio::pin!(work);
                let mut tick = tokio::time::interval(Duration::from_millis(200));
                loop {
                    tokio::select! {
                        done = &mut work => return Ok(done),
                        _ = tick.tick() => Python::attach(|py| py.check_signals())?,
                    }
                }
            })
        })
    }
}

#[pymethods]
impl Client {
    /// Connects to `server` (e.g. `http://127.0.0.1:19000`; several comma-separated);
    /// `timeout` is each call's deadline.
    #[new]
    #[pyo3(signature = (server, timeout = 600.0))]
    fn new(py: Python<'_>, server: String, timeout: f64) -> PyResult<Client> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| HemmaError::new_err(format!("cannot start the client runtime: {e}")))?;
        let urls: Vec<&str> = server.split(',').map(str::trim).collect();
        if urls.iter().any(|u| u.is_empty()) {
            return Err(crate::InvalidArgument::new_err(format!(
                "server {server:?} has an empty entry: give one URL or several separated by commas"
            )));
        }
        let mut servers = Vec::with_capacity(urls.len());
        for url in urls {
            let mut options = ClientOptions::new(url);
            if timeout.is_finite() && timeout > 0.0 {
                options.request_timeout = Duration::from_secs_f64(timeout);
            }
            let client = py
                .detach(|| runtime.block_on(hemma_client::Client::connect(options)))
                .map_err(client_error)?;
            servers.push(client);
        }
        Ok(Client {
            runtime,
            client: servers[0].clone(),
            servers,
        })
    }

    /// The server's `Info` as JSON text.
    fn info_json(&self, py: Python<'_>) -> PyResult<String> {
        let info = self.wait(py, self.client.info())?.map_err(client_error)?;
        Ok(info_json(&info))
    }

    /// The gRPC health status name (`SERVING`, `NOT_SERVING`, ...).
    fn health(&self, py: Python<'_>) -> PyResult<String> {
        let status = self.wait(py, self.client.health())?.map_err(client_error)?;
        Ok(status.as_str_name().to_owned())
    }

    /// Embeddings of `texts`: `(bytes, rows, cols)`, float32 little-endian.
    fn embed<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
    ) -> PyResult<(Bound<'py, PyBytes>, usize, usize)> {
        let out = self
            .wait(py, self.client.embed(texts, false))?
            .map_err(client_error)?;
        Ok(matrix(py, &out.vectors))
    }

    /// Extracts `feature_set` for the essays through the cache (`cache` = its root folder, or
    /// None for no cache). Returns a dict: `embeddings` and `handcrafted` as
    /// `(bytes, rows, cols)` or None, `ids`, `embedding_names`, `handcrafted_names`, `limited`
    /// (a list of `(index, code, message)` for the rows the server could not analyse whole, in
    /// input order), and `report` and `info` as JSON text.
    #[pyo3(signature = (
        ids, texts, prompts, feature_set, cache = None, chunk_size = 32, concurrency = 4,
        retries = 5, retry_wait = 1.0, progress = None, note = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn extract<'py>(
        &self,
        py: Python<'py>,
        ids: Vec<String>,
        texts: Vec<String>,
        prompts: Option<Vec<String>>,
        feature_set: &str,
        cache: Option<PathBuf>,
        chunk_size: usize,
        concurrency: usize,
        retries: u32,
        retry_wait: f64,
        progress: Option<Py<PyAny>>,
        note: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let set = FeatureSet::from_name(feature_set).ok_or_else(|| {
            crate::InvalidArgument::new_err(format!(
                "feature_set {feature_set:?} is unknown: choose \"embeddings\", \"handcrafted\" or \"combined\""
            ))
        })?;
        if ids.len() != texts.len() {
            return Err(crate::InvalidArgument::new_err(format!(
                "{} ids for {} texts: give one id per text",
                ids.len(),
                texts.len()
            )));
        }
        if let Some(p) = prompts.as_ref().filter(|p| p.len() != texts.len()) {
            return Err(crate::InvalidArgument::new_err(format!(
                "{} prompts for {} texts: give one prompt per text, or a single string for all",
                p.len(),
                texts.len()
            )));
        }
        let essays: Vec<Essay> = ids
            .into_iter()
            .zip(texts)
            .enumerate()
            .map(|(i, (id, text))| Essay {
                id,
                text,
                prompt: prompts.as_ref().map(|p| p[i].clone()),
            })
            .collect();
        let options = RunOptions {
            feature_set: set,
            chunk_size: chunk_size.max(1),
            concurrency: concurrency.max(1),
            retries,
            backoff: Duration::from_secs_f64(retry_wait.max(0.0)),
            cache,
        };
        let reporter = PyProgress {
            advance: progress,
            note,
        };
        let out = self
            .wait(
                py,
                hemma_runs::extract(&self.servers, essays, &options, &reporter),
            )?
            .map_err(run_error)?;
        let d = PyDict::new(py);
        d.set_item("embeddings", out.embeddings.as_ref().map(|m| matrix(py, m)))?;
        d.set_item(
            "handcrafted",
            out.handcrafted.as_ref().map(|m| matrix(py, m)),
        )?;
        let ids: Vec<&str> = out.essays.iter().map(|e| e.id.as_str()).collect();
        d.set_item("ids", ids)?;
        let info = &out.info;
        d.set_item(
            "embedding_names",
            out.embeddings
                .as_ref()
                .map(|_| info.embedding_feature_names.clone()),
        )?;
        d.set_item(
            "handcrafted_names",
            out.handcrafted
                .as_ref()
                .map(|_| info.handcrafted_feature_names.clone()),
        )?;
        let limited: Vec<(usize, &str, &str)> = out
            .limited
            .iter()
            .map(|r| (r.index, r.code.as_str(), r.message.as_str()))
            .collect();
        d.set_item("limited", limited)?;
        let report = serde_json::to_string(&out.report)
            .map_err(|e| HemmaError::new_err(format!("encoding the run report: {e}")))?;
        d.set_item("report", report)?;
        d.set_item("info", info_json(info))?;
        Ok(d)
    }
}

/// The default cache root, as `hemma extract` uses it when `$HEMMA_CACHE` is unset.
#[pyfunction]
fn default_cache_root() -> Option<PathBuf> {
    hemma_runs::cache::default_root()
}

/// The module `hemma._hemma`.
#[pymodule]
fn _hemma(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Client>()?;
    m.add_function(wrap_pyfunction!(default_cache_root, m)?)?;
    m.add("HemmaError", py.get_type::<HemmaError>())?;
    m.add("ConnectError", py.get_type::<ConnectError>())?;
    m.add("InvalidArgument", py.get_type::<crate::InvalidArgument>())?;
    m.add("Unavailable", py.get_type::<crate::Unavailable>())?;
    m.add(
        "ResourceExhausted",
        py.get_type::<crate::ResourceExhausted>(),
    )?;
    m.add("DeadlineExceeded", py.get_type::<crate::DeadlineExceeded>())?;
    m.add(
        "FailedPrecondition",
        py.get_type::<crate::FailedPrecondition>(),
    )?;
    m.add("FingerprintChanged", py.get_type::<FingerprintChanged>())?;
    Ok(())
}
