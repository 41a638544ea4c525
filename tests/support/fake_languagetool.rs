//! A LanguageTool-compatible fake server for what a real one cannot be made to do on demand.
//!
//! It speaks LanguageTool's HTTP API (`/v2/check`, `/v2/languages`, `/v2/maxtextlength`,
//! `/v2/healthcheck`; errors as plain-text `Error: ...` bodies) and, as a stand-in for the JSON
//! wrapper on Hemma (HuleEdu's `language_tool_service`), its `POST /v1/check`: exactly its
//! request keys, 1..50,000 characters, whitespace matches dropped, no issue type and no version
//! in the answer. For the texts of the recorded real responses in
//! `tests/fixtures/languagetool/` it replays them byte for byte; otherwise it applies a few
//! deterministic rules (misspellings -> TYPOS, a repeated word -> GRAMMAR, a space before a
//! comma -> TYPOGRAPHY, `!!` -> PUNCTUATION) with offsets in UTF-16 units, as Java counts.
//! Latency, a maximum text length and failure modes (500, 503, 413, malformed body, connection
//! reset, never answering) are set at run time, and it records the texts it was asked to check.
//!
//! It is a hand-written HTTP/1.1 server on a raw socket on purpose: resets and half-answers are
//! exactly what a well-behaved HTTP framework will not produce.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The text the server's pool probes with (not counted as a check).
pub use languagetool_pool::pool::PROBE_TEXT;

/// A failure the fake produces on check requests (probes included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 500 `Error: Internal Error: ...`.
    Internal500,
    /// 503 `Error: There are currently too many parallel requests...`.
    Busy503,
    /// 413 naming a limit of 40 characters.
    TooLong413,
    /// 200 with a cut-off JSON body.
    Malformed,
    /// Closes the connection with a TCP reset instead of answering.
    Reset,
    /// Never answers.
    Hang,
}

/// Run-time behaviour of the fake.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `software.version` of generated answers.
    pub version: String,
    /// Wait before answering a check.
    pub latency: Duration,
    /// Texts longer than this (UTF-16 units) get 413; also what `/v2/maxtextlength` says.
    pub max_text_length: Option<usize>,
    /// The failure to produce, if any.
    pub fault: Option<Fault>,
    /// How many check requests get the fault (None: all).
    pub fault_times: Option<usize>,
    /// Serve one check at a time (each holding the server for `latency`), like a saturated JVM.
    pub one_at_a_time: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            version: "6.7-fake".into(),
            latency: Duration::ZERO,
            max_text_length: None,
            fault: None,
            fault_times: None,
            one_at_a_time: false,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    settings: Mutex<Settings>,
    checks: Mutex<Vec<String>>,
    probes: Mutex<usize>,
    recorded: HashMap<String, String>,
    serial: tokio::sync::Mutex<()>,
}

/// A running fake on 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct FakeLanguageTool {
    /// Its address.
    pub addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for FakeLanguageTool {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Misspellings the fake knows, with their correction.
const MISSPELLINGS: &[(&str, &str)] = &[
    ("teh", "the"),
    ("recieve", "receive"),
    ("becuase", "because"),
    ("alot", "a lot"),
    ("definately", "definitely"),
    ("wich", "which"),
];

const LANGUAGES: &[(&str, &str, &str)] = &[
    ("English", "en", "en"),
    ("English (GB)", "en", "en-GB"),
    ("English (US)", "en", "en-US"),
    ("German (Germany)", "de", "de-DE"),
    ("Russian", "ru", "ru-RU"),
];

impl FakeLanguageTool {
    /// Starts a fake with default settings.
    pub async fn start() -> FakeLanguageTool {
        Self::start_with(Settings::default()).await
    }

    /// Starts a fake with `settings`.
    pub async fn start_with(settings: Settings) -> FakeLanguageTool {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("bound address");
        let state = Arc::new(State {
            settings: Mutex::new(settings),
            recorded: recorded_responses(),
            ..State::default()
        });
        let shared = state.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                connections.spawn(serve_connection(socket, shared.clone()));
            }
        });
        FakeLanguageTool { addr, state, task }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Produces `fault` on the next `times` check requests (None: on all), or stops faulting.
    pub fn set_fault(&self, fault: Option<Fault>, times: Option<usize>) {
        let mut s = self.state.settings.lock().unwrap();
        s.fault = fault;
        s.fault_times = times;
    }

    /// Changes the settings.
    pub fn update(&self, f: impl FnOnce(&mut Settings)) {
        f(&mut self.state.settings.lock().unwrap());
    }

    /// Texts it was asked to check (probes left out), in arrival order.
    pub fn checks(&self) -> Vec<String> {
        self.state.checks.lock().unwrap().clone()
    }

    /// Probe checks it received.
    pub fn probes(&self) -> usize {
        *self.state.probes.lock().unwrap()
    }
}

/// The recorded responses by the text they answer.
fn recorded_responses() -> HashMap<String, String> {
    let dir = crate::repo_root().join("tests/fixtures/languagetool");
    let texts: HashMap<String, String> = serde_json::from_str(
        &std::fs::read_to_string(dir.join("texts.json")).expect("texts.json is committed"),
    )
    .expect("texts.json parses");
    texts
        .into_iter()
        .map(|(file, text)| {
            let body = std::fs::read_to_string(dir.join(&file)).expect("recorded response file");
            (text, body)
        })
        .collect()
}

struct Request {
    method: String,
    path: String,
    query: String,
    body: Vec<u8>,
}

enum Reply {
    Http(u16, &'static str, String),
    Reset,
    Hang,
}

async fn serve_connection(mut socket: TcpStream, state: Arc<State>) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            match socket.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split(' ');
        let method = first.next().unwrap_or_default().to_owned();
        let target = first.next().unwrap_or_default().to_owned();
        let length: usize = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        let body_start = head_end + 4;
        while buf.len() < body_start + length {
            match socket.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        let body = buf[body_start..body_start + length].to_vec();
        buf.drain(..body_start + length);
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), q.to_owned()),
            None => (target, String::new()),
        };
        let request = Request {
            method,
            path,
            query,
            body,
        };
        match respond(&state, request).await {
            Reply::Http(status, content_type, body) => {
                let reason = match status {
                    200 => "OK",
                    400 => "Bad Request",
                    404 => "Not Found",
                    413 => "Request Entity Too Large",
                    500 => "Internal Server Error",
                    503 => "Service Unavailable",
                    _ => "Status",
                };
                let head = format!(
                    "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                if socket.write_all(head.as_bytes()).await.is_err()
                    || socket.write_all(body.as_bytes()).await.is_err()
                {
                    return;
                }
            }
            Reply::Reset => {
                let _ = socket.set_zero_linger();
                return;
            }
            Reply::Hang => std::future::pending::<()>().await,
        }
    }
}

fn plain(status: u16, text: String) -> Reply {
    Reply::Http(status, "text/plain", text)
}

async fn respond(state: &State, req: Request) -> Reply {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/v2/healthcheck") => plain(200, "OK".into()),
        ("GET", "/v2/languages") => {
            let list: Vec<Value> = LANGUAGES
                .iter()
                .map(|(name, code, long)| json!({"name": name, "code": code, "longCode": long}))
                .collect();
            Reply::Http(200, "application/json", Value::Array(list).to_string())
        }
        ("GET", "/v2/maxtextlength") => {
            let max = state.settings.lock().unwrap().max_text_length;
            plain(200, max.unwrap_or(i32::MAX as usize).to_string())
        }
        ("POST" | "GET", "/v2/check") => {
            let mut params: HashMap<String, String> = form_urlencoded::parse(req.query.as_bytes())
                .into_owned()
                .collect();
            params.extend(form_urlencoded::parse(&req.body).into_owned());
            let Some(language) = params.get("language").filter(|l| !l.is_empty()).cloned() else {
                return plain(400, "Error: Missing 'language' parameter, e.g. 'language=en-US' for American English or 'language=fr' for French".into());
            };
            let Some(text) = params.get("text").cloned() else {
                return plain(400, "Error: Missing 'text' or 'data' parameter".into());
            };
            check(state, &text, &language, Flavour::V2).await
        }
        ("POST", "/v1/check") => match wrapper_request(&req.body) {
            Ok((text, language)) => check(state, &text, &language, Flavour::Wrapper).await,
            Err(reply) => reply,
        },
        (_, path) if path.starts_with("/v2/") => plain(
            404,
            format!(
                "Error: Unsupported action: '{}'. Please see https://languagetool.org/http-api/swagger-ui/#/default",
                &path[4..]
            ),
        ),
        _ => plain(
            400,
            "Error: This is the LanguageTool API. You have not specified any parameters.".into(),
        ),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavour {
    V2,
    Wrapper,
}

async fn check(state: &State, text: &str, language: &str, flavour: Flavour) -> Reply {
    if text == PROBE_TEXT {
        *state.probes.lock().unwrap() += 1;
    } else {
        state.checks.lock().unwrap().push(text.to_owned());
    }
    let (settings, fault) = {
        let mut s = state.settings.lock().unwrap();
        let fault = match (s.fault, s.fault_times) {
            (Some(f), None) => Some(f),
            (Some(f), Some(n)) if n > 0 => {
                s.fault_times = Some(n - 1);
                Some(f)
            }
            _ => None,
        };
        (s.clone(), fault)
    };
    let _one_at_a_time = if settings.one_at_a_time {
        Some(state.serial.lock().await)
    } else {
        None
    };
    if !settings.latency.is_zero() {
        tokio::time::sleep(settings.latency).await;
    }
    let units = text.encode_utf16().count();
    match fault {
        Some(Fault::Reset) => return Reply::Reset,
        Some(Fault::Hang) => return Reply::Hang,
        Some(Fault::Internal500) => {
            return plain(
                500,
                "Error: Internal Error: java.lang.RuntimeException: fake failure".into(),
            );
        }
        Some(Fault::Busy503) => {
            return plain(
                503,
                "Error: There are currently too many parallel requests. Please try again later."
                    .into(),
            );
        }
        Some(Fault::TooLong413) => {
            return plain(
                413,
                format!(
                    "Error: Your text exceeds the limit of 40 characters (it's {units} characters). Please submit a shorter text."
                ),
            );
        }
        Some(Fault::Malformed) => {
            return Reply::Http(
                200,
                "application/json",
                "{\"software\":{\"name\":\"LanguageTool\",\"version\":".into(),
            );
        }
        None => {}
    }
    if !LANGUAGES.iter().any(|(_, _, long)| *long == language) {
        return plain(
            400,
            format!(
                "Error: '{language}' is not a language code known to LanguageTool. Supported language codes are: en, en-GB, en-US, de-DE, ru-RU"
            ),
        );
    }
    if let Some(max) = settings.max_text_length
        && units > max
    {
        return plain(
            413,
            format!(
                "Error: Your text exceeds the limit of {max} characters (it's {units} characters). Please submit a shorter text."
            ),
        );
    }
    if flavour == Flavour::V2
        && let Some(body) = state.recorded.get(text)
    {
        return Reply::Http(200, "application/json", body.clone());
    }
    let matches = rule_matches(text);
    let body = match flavour {
        Flavour::V2 => v2_body(text, language, &settings.version, &matches),
        Flavour::Wrapper => wrapper_body(text, language, &matches),
    };
    Reply::Http(200, "application/json", body)
}

/// A generated match: byte span, rule, category, issue type, message, replacement.
struct Generated {
    start: usize,
    end: usize,
    rule: &'static str,
    category: (&'static str, &'static str),
    issue_type: &'static str,
    message: &'static str,
    replacement: String,
}

/// Word spans (letters, digits, apostrophes) in byte offsets.
fn words(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        let wordy = c.is_alphanumeric() || c == '\'';
        match (wordy, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, text.len()));
    }
    out
}

fn rule_matches(text: &str) -> Vec<Generated> {
    let mut out = Vec::new();
    let ws = words(text);
    for (k, &(s, e)) in ws.iter().enumerate() {
        let word = &text[s..e];
        if let Some((_, fix)) = MISSPELLINGS.iter().find(|(w, _)| *w == word.to_lowercase()) {
            out.push(Generated {
                start: s,
                end: e,
                rule: "MORFOLOGIK_RULE_EN_US",
                category: ("TYPOS", "Possible Typo"),
                issue_type: "misspelling",
                message: "Possible spelling mistake found.",
                replacement: fix.to_string(),
            });
        }
        if k > 0 {
            let (ps, pe) = ws[k - 1];
            let gap = &text[pe..s];
            if !gap.is_empty()
                && gap.chars().all(|c| c == ' ')
                && text[ps..pe].to_lowercase() == word.to_lowercase()
            {
                out.push(Generated {
                    start: ps,
                    end: e,
                    rule: "ENGLISH_WORD_REPEAT_RULE",
                    category: ("GRAMMAR", "Grammar"),
                    issue_type: "duplication",
                    message: "Possible typo: you repeated a word.",
                    replacement: word.to_owned(),
                });
            }
        }
    }
    for (i, _) in text.match_indices(" ,") {
        out.push(Generated {
            start: i,
            end: i + 2,
            rule: "COMMA_PARENTHESIS_WHITESPACE",
            category: ("TYPOGRAPHY", "Typography"),
            issue_type: "whitespace",
            message: "Put a space after the comma, but not before the comma.",
            replacement: ",".into(),
        });
    }
    for (i, _) in text.match_indices("!!") {
        out.push(Generated {
            start: i,
            end: i + 2,
            rule: "DOUBLE_PUNCTUATION",
            category: ("PUNCTUATION", "Punctuation"),
            issue_type: "typographical",
            message: "Two consecutive exclamation marks.",
            replacement: "!".into(),
        });
    }
    out.sort_by_key(|g| (g.start, g.end));
    out
}

fn utf16_at(text: &str, byte: usize) -> usize {
    text[..byte].encode_utf16().count()
}

fn v2_body(text: &str, language: &str, version: &str, matches: &[Generated]) -> String {
    let matches: Vec<Value> = matches
        .iter()
        .map(|g| {
            let offset = utf16_at(text, g.start);
            let length = utf16_at(text, g.end) - offset;
            json!({
                "message": g.message,
                "shortMessage": "",
                "replacements": [{"value": g.replacement}],
                "offset": offset,
                "length": length,
                "context": {"text": text, "offset": offset, "length": length},
                "sentence": text.trim(),
                "type": {"typeName": if g.category.0 == "TYPOS" { "UnknownWord" } else { "Other" }},
                "rule": {
                    "id": g.rule,
                    "description": g.message,
                    "issueType": g.issue_type,
                    "category": {"id": g.category.0, "name": g.category.1}
                },
                "ignoreForIncompleteSentence": false,
                "contextForSureMatch": 0
            })
        })
        .collect();
    json!({
        "software": {"name": "LanguageTool", "version": version, "buildDate": "2025-10-09 18:20:28 +0200", "apiVersion": 1, "premium": false, "status": ""},
        "warnings": {"incompleteResults": false},
        "language": {"name": "English (US)", "code": language, "detectedLanguage": {"name": "English (US)", "code": language, "confidence": 0.99}},
        "matches": matches,
        "sentenceRanges": [[0, text.encode_utf16().count()]]
    })
    .to_string()
}

/// The wrapper's request, as its pydantic model takes it: `text` (1..50,000 characters) and
/// `language` plus the rule and category lists and `enabled_only`, snake_case or camelCase; any
/// other key (such as `level`, which it does not take) is refused with 422 as pydantic does.
fn wrapper_request(body: &[u8]) -> Result<(String, String), Reply> {
    const KEYS: [(&str, &str); 7] = [
        ("text", "text"),
        ("language", "language"),
        ("enabled_rules", "enabledRules"),
        ("disabled_rules", "disabledRules"),
        ("enabled_categories", "enabledCategories"),
        ("disabled_categories", "disabledCategories"),
        ("enabled_only", "enabledOnly"),
    ];
    let invalid = |detail: String| {
        Reply::Http(
            422,
            "application/json",
            json!({"detail": [{"msg": detail}]}).to_string(),
        )
    };
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid("the body is not a JSON object".into()));
    };
    if let Some(key) = fields
        .keys()
        .find(|k| !KEYS.iter().any(|(snake, camel)| k == snake || k == camel))
    {
        return Err(invalid(format!("extra inputs are not permitted: {key}")));
    }
    let text = fields["text"].as_str().unwrap_or_default().to_owned();
    let chars = text.chars().count();
    if chars == 0 || chars > 50_000 {
        return Err(plain(
            400,
            format!("text must have 1 to 50000 characters, not {chars}"),
        ));
    }
    let language = fields
        .get("language")
        .and_then(Value::as_str)
        .unwrap_or("en-US")
        .to_owned();
    Ok((text, language))
}

/// The wrapper's answer: whitespace matches dropped, at most 5 replacements, no issue type and
/// no LanguageTool version anywhere; offsets are Java's (UTF-16).
fn wrapper_body(text: &str, language: &str, matches: &[Generated]) -> String {
    let kept: Vec<&Generated> = matches
        .iter()
        .filter(|g| g.issue_type != "whitespace")
        .collect();
    let errors: Vec<Value> = kept
        .iter()
        .map(|g| {
            let offset = utf16_at(text, g.start);
            json!({
                "rule_id": g.rule,
                "message": g.message,
                "short_message": "",
                "offset": offset,
                "length": utf16_at(text, g.end) - offset,
                "replacements": [g.replacement],
                "category": g.category.0,
                "severity": "error",
                "category_id": g.category.0,
                "category_name": g.category.1,
                "context": text,
                "context_offset": offset,
            })
        })
        .collect();
    let mut by_category: HashMap<&str, u32> = HashMap::new();
    let mut by_rule: HashMap<&str, u32> = HashMap::new();
    for g in &kept {
        *by_category.entry(g.category.0).or_default() += 1;
        *by_rule.entry(g.rule).or_default() += 1;
    }
    json!({
        "errors": errors,
        "total_grammar_errors": kept.len(),
        "grammar_category_counts": by_category,
        "grammar_rule_counts": by_rule,
        "language": language,
        "processing_time_ms": 1,
    })
    .to_string()
}
