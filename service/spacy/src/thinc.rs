//! Reads thinc's serialized models (`tok2vec/model`, `tagger/model`, `parser/model`): msgpack
//! with aligned `nodes`/`attrs`/`params` arrays in walk order (PORT.md). Nodes are addressed
//! by index and checked by name and shape at load time.

use std::path::{Path, PathBuf};

use rmpv::Value;

use super::NlpError;

/// A float32 parameter: its shape and values in C order.
#[derive(Debug, Clone)]
pub struct Param {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// A loaded model file.
#[derive(Debug)]
pub struct ThincModel {
    path: PathBuf,
    nodes: Vec<Value>,
    attrs: Vec<Value>,
    params: Vec<Value>,
}

fn key_is(k: &Value, name: &str) -> bool {
    match k {
        Value::String(s) => s.as_str() == Some(name),
        Value::Binary(b) => b.as_slice() == name.as_bytes(),
        _ => false,
    }
}

fn get<'a>(map: &'a Value, name: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| key_is(k, name))
        .map(|(_, v)| v)
}

impl ThincModel {
    /// Reads and decodes `path`.
    pub fn load(path: &Path) -> Result<ThincModel, NlpError> {
        let bytes = std::fs::read(path).map_err(|source| NlpError::Read {
            path: path.to_owned(),
            source,
        })?;
        let root =
            rmpv::decode::read_value(&mut bytes.as_slice()).map_err(|e| NlpError::Format {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        let array = |name: &str| -> Result<Vec<Value>, NlpError> {
            get(&root, name)
                .and_then(Value::as_array)
                .cloned()
                .ok_or_else(|| NlpError::Format {
                    path: path.to_owned(),
                    message: format!("no `{name}` array"),
                })
        };
        Ok(ThincModel {
            path: path.to_owned(),
            nodes: array("nodes")?,
            attrs: array("attrs")?,
            params: array("params")?,
        })
    }

    fn err(&self, message: String) -> NlpError {
        NlpError::Format {
            path: self.path.clone(),
            message,
        }
    }

    /// Checks that node `index` is called `name`.
    pub fn expect_node(&self, index: usize, name: &str) -> Result<(), NlpError> {
        let found = self
            .nodes
            .get(index)
            .and_then(|n| get(n, "name"))
            .and_then(Value::as_str);
        if found != Some(name) {
            return Err(self.err(format!("node {index} is {found:?}, expected {name:?}")));
        }
        Ok(())
    }

    /// Parameter `name` of node `index`, checked against `shape`.
    pub fn param(&self, index: usize, name: &str, shape: &[usize]) -> Result<Param, NlpError> {
        let nd = self
            .params
            .get(index)
            .and_then(|p| get(p, name))
            .ok_or_else(|| self.err(format!("node {index} has no parameter {name}")))?;
        let got: Vec<usize> = get(nd, "shape")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_u64)
                    .map(|d| d as usize)
                    .collect()
            })
            .unwrap_or_default();
        if got != shape {
            return Err(self.err(format!(
                "node {index} parameter {name} has shape {got:?}, expected {shape:?}"
            )));
        }
        let raw = get(nd, "data")
            .and_then(|d| match d {
                Value::Binary(b) => Some(b.as_slice()),
                _ => None,
            })
            .ok_or_else(|| self.err(format!("node {index} parameter {name} has no data")))?;
        let n: usize = shape.iter().product();
        if raw.len() != n * 4 {
            return Err(self.err(format!(
                "node {index} parameter {name} holds {} bytes for {n} float32 values",
                raw.len()
            )));
        }
        let data = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Param {
            shape: shape.to_vec(),
            data,
        })
    }

    /// Attribute `name` of node `index` (stored msgpack-encoded inside the file).
    pub fn attr(&self, index: usize, name: &str) -> Result<Value, NlpError> {
        let raw = self
            .attrs
            .get(index)
            .and_then(|a| get(a, name))
            .and_then(|v| match v {
                Value::Binary(b) => Some(b.clone()),
                _ => None,
            })
            .ok_or_else(|| self.err(format!("node {index} has no attribute {name}")))?;
        rmpv::decode::read_value(&mut raw.as_slice())
            .map_err(|e| self.err(format!("node {index} attribute {name}: {e}")))
    }
}
