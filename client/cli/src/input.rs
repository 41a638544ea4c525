//! Essays in: JSON Lines or CSV files, with clear errors naming the file and line.

use std::path::{Path, PathBuf};

pub use hemma_runs::Essay;

/// Why an input file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The extension is neither .jsonl nor .csv.
    #[error("{path}: unknown input format; use a .jsonl (JSON Lines) or .csv file")]
    Format {
        /// The file.
        path: PathBuf,
    },
    /// A record is malformed.
    #[error("{path}:{line}: {message}")]
    Record {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// No essays in the file.
    #[error("{path}: no essays found")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Column names to read.
#[derive(Debug, Clone)]
pub struct Columns {
    /// Column (or JSON field) holding the text.
    pub text: String,
    /// Column holding the id; rows without it are numbered.
    pub id: String,
    /// Column holding the essay's prompt, when one is read; every row must have a non-empty one.
    pub prompt: Option<String>,
}

impl Columns {
    /// Text and id columns, no prompt column.
    pub fn new(text: impl Into<String>, id: impl Into<String>) -> Columns {
        Columns {
            text: text.into(),
            id: id.into(),
            prompt: None,
        }
    }
}

/// Reads every essay of a .jsonl or .csv file, in file order.
pub fn read_essays(path: &Path, columns: &Columns) -> Result<Vec<Essay>, InputError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let essays = match ext.as_deref() {
        Some("jsonl") | Some("ndjson") => read_jsonl(path, columns)?,
        Some("csv") => read_csv(path, columns)?,
        _ => {
            return Err(InputError::Format {
                path: path.to_owned(),
            });
        }
    };
    if essays.is_empty() {
        return Err(InputError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(essays)
}

fn read_jsonl(path: &Path, columns: &Columns) -> Result<Vec<Essay>, InputError> {
    let text = std::fs::read_to_string(path).map_err(|source| InputError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let lineno = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: String| InputError::Record {
            path: path.to_owned(),
            line: lineno,
            message,
        };
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| err(format!("not valid JSON: {e}")))?;
        let text = match value.get(&columns.text) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(err(format!(
                    "field `{}` must be a string, found {}",
                    columns.text,
                    kind(other)
                )));
            }
            None => {
                return Err(err(format!(
                    "no field `{}` (choose it with --text-column)",
                    columns.text
                )));
            }
        };
        let id = match value.get(&columns.id) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(err(format!(
                    "field `{}` must be a string or number, found {}",
                    columns.id,
                    kind(other)
                )));
            }
            None => out.len().to_string(),
        };
        let prompt = match &columns.prompt {
            None => None,
            Some(field) => match value.get(field) {
                Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
                Some(serde_json::Value::String(_)) => {
                    return Err(err(format!("field `{field}` (the prompt) is empty")));
                }
                Some(other) => {
                    return Err(err(format!(
                        "field `{field}` (the prompt) must be a string, found {}",
                        kind(other)
                    )));
                }
                None => {
                    return Err(err(format!(
                        "no field `{field}` (the prompt; choose it with --prompt-column, or give \
                         one prompt for all with --prompt)"
                    )));
                }
            },
        };
        out.push(Essay { id, text, prompt });
    }
    Ok(out)
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn read_csv(path: &Path, columns: &Columns) -> Result<Vec<Essay>, InputError> {
    let io = |source| InputError::Io {
        path: path.to_owned(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(path)
        .map_err(|e| io(std::io::Error::other(e)))?;
    let headers = reader
        .headers()
        .map_err(|e| io(std::io::Error::other(e)))?
        .clone();
    let find = |name: &str| headers.iter().position(|h| h == name);
    let text_at = find(&columns.text).ok_or_else(|| InputError::Record {
        path: path.to_owned(),
        line: 1,
        message: format!(
            "no column `{}` in the header ({}); choose it with --text-column",
            columns.text,
            headers.iter().collect::<Vec<_>>().join(", ")
        ),
    })?;
    let id_at = find(&columns.id);
    let prompt_at = match &columns.prompt {
        None => None,
        Some(name) => Some(find(name).ok_or_else(|| InputError::Record {
            path: path.to_owned(),
            line: 1,
            message: format!(
                "no column `{name}` in the header ({}); choose the prompt column with \
                 --prompt-column, or give one prompt for all with --prompt",
                headers.iter().collect::<Vec<_>>().join(", ")
            ),
        })?),
    };
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            InputError::Record {
                path: path.to_owned(),
                line,
                message: e.to_string(),
            }
        })?;
        let text = record.get(text_at).unwrap_or_default().to_owned();
        let id = match id_at.and_then(|i| record.get(i)) {
            Some(id) => id.to_owned(),
            None => out.len().to_string(),
        };
        let prompt = match prompt_at {
            None => None,
            Some(i) => {
                let prompt = record.get(i).unwrap_or_default();
                if prompt.trim().is_empty() {
                    return Err(InputError::Record {
                        path: path.to_owned(),
                        line: record.position().map(|p| p.line()).unwrap_or(0),
                        message: format!(
                            "column `{}` (the prompt) is empty",
                            columns.prompt.as_deref().unwrap_or_default()
                        ),
                    });
                }
                Some(prompt.to_owned())
            }
        };
        out.push(Essay { id, text, prompt });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Columns {
        Columns::new("text", "id")
    }

    fn write(name: &str, body: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        (dir, p)
    }

    #[test]
    fn jsonl_keeps_text_byte_exact_and_numbers_missing_ids() {
        let (_d, p) = write(
            "a.jsonl",
            "{\"id\":\"x\",\"text\":\" a\\n\\nb \"}\n\n{\"text\":\"c\"}\n",
        );
        let e = read_essays(&p, &cols()).unwrap();
        assert_eq!(
            e[0],
            Essay {
                id: "x".into(),
                text: " a\n\nb ".into(),
                prompt: None,
            }
        );
        assert_eq!(e[1].id, "1");
    }

    #[test]
    fn jsonl_errors_name_the_line() {
        let (_d, p) = write("a.jsonl", "{\"text\":\"ok\"}\n{\"body\":\"no\"}\n");
        let msg = read_essays(&p, &cols()).unwrap_err().to_string();
        assert!(
            msg.contains("a.jsonl:2") && msg.contains("--text-column"),
            "{msg}"
        );
        let (_d, p) = write("b.jsonl", "{\"text\": 3}\n");
        assert!(
            read_essays(&p, &cols())
                .unwrap_err()
                .to_string()
                .contains("must be a string")
        );
    }

    #[test]
    fn csv_with_embedded_newlines_and_missing_column() {
        let (_d, p) = write("a.csv", "id,text\n1,\"two\nlines\"\n2,plain\n");
        let e = read_essays(&p, &cols()).unwrap();
        assert_eq!(e[0].text, "two\nlines");
        assert_eq!(e[1].id, "2");
        let c = Columns::new("essay", "id");
        let msg = read_essays(&p, &c).unwrap_err().to_string();
        assert!(
            msg.contains("no column `essay`") && msg.contains("id, text"),
            "{msg}"
        );
    }

    #[test]
    fn prompts_are_read_and_an_empty_one_names_its_line() {
        let c = Columns {
            prompt: Some("prompt".into()),
            ..cols()
        };
        let (_d, p) = write("a.csv", "id,text,prompt\n1,\"multi\nline\",Why?\n2,b,\n");
        let msg = read_essays(&p, &c).unwrap_err().to_string();
        assert!(msg.contains("a.csv:4") && msg.contains("prompt"), "{msg}");
        let (_d, p) = write(
            "a.jsonl",
            "{\"text\":\"a\",\"prompt\":\"Why?\"}\n{\"text\":\"b\"}\n",
        );
        let msg = read_essays(&p, &c).unwrap_err().to_string();
        assert!(
            msg.contains("a.jsonl:2") && msg.contains("--prompt"),
            "{msg}"
        );
        let (_d, p) = write("b.csv", "text,prompt\na,Why?\n");
        assert_eq!(
            read_essays(&p, &c).unwrap()[0].prompt.as_deref(),
            Some("Why?")
        );
        let (_d, p) = write("c.csv", "text\na\n");
        let msg = read_essays(&p, &c).unwrap_err().to_string();
        assert!(
            msg.contains("c.csv:1") && msg.contains("no column `prompt`"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_extension_and_empty_file() {
        let (_d, p) = write("a.txt", "x");
        assert!(
            read_essays(&p, &cols())
                .unwrap_err()
                .to_string()
                .contains(".jsonl")
        );
        let (_d, p) = write("a.jsonl", "\n");
        assert!(
            read_essays(&p, &cols())
                .unwrap_err()
                .to_string()
                .contains("no essays")
        );
    }
}
