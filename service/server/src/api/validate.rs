//! Request validation: limits and enums, each failure a sentence naming the item.

use hemma_proto::v1::{Dtype, ExtractRequest, FeatureSet as WireFeatureSet};
use tonic::Status;

use crate::config::RequestLimits;
use crate::extract::{FeatureSet, Job};

/// Why the content of a request is refused. Over gRPC each is INVALID_ARGUMENT; the drop-in
/// HTTP API answers the two request-size limits with 413, as the old server did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// More texts than the per-request limit.
    TooManyItems(String),
    /// More bytes (texts and prompts) than the per-request limit.
    TooLarge(String),
    /// Anything else: empty, a text or prompt over its own limit, a mismatch.
    Invalid(String),
}

impl Refusal {
    /// The sentence naming what was refused.
    pub fn message(&self) -> &str {
        match self {
            Refusal::TooManyItems(m) | Refusal::TooLarge(m) | Refusal::Invalid(m) => m,
        }
    }
}

impl From<Refusal> for Status {
    fn from(r: Refusal) -> Status {
        Status::invalid_argument(r.message())
    }
}

/// Checks the texts of one request against the limits.
pub fn texts(texts: &[String], limits: &RequestLimits) -> Result<(), Refusal> {
    if texts.is_empty() {
        return Err(Refusal::Invalid(
            "texts is empty: send at least one text".into(),
        ));
    }
    if texts.len() > limits.max_items_per_request {
        return Err(Refusal::TooManyItems(format!(
            "the request has {} texts; the limit is {} per request: split it into smaller requests",
            texts.len(),
            limits.max_items_per_request
        )));
    }
    let mut total = 0usize;
    for (i, t) in texts.iter().enumerate() {
        if t.len() > limits.max_bytes_per_text {
            return Err(Refusal::Invalid(format!(
                "text {i} is {} bytes; the limit is {} bytes per text",
                t.len(),
                limits.max_bytes_per_text
            )));
        }
        total += t.len();
    }
    if total > limits.max_bytes_per_request {
        return Err(Refusal::TooLarge(format!(
            "the texts total {total} bytes; the limit is {} bytes per request: split it into smaller requests",
            limits.max_bytes_per_request
        )));
    }
    Ok(())
}

/// Bytes of one essay id on `ExtractStream` at most (ids are the client's bookkeeping).
pub const MAX_ID_BYTES: usize = 1024;

/// Checks the ids of one stream chunk: each at most [`MAX_ID_BYTES`].
pub fn ids(ids: &[String]) -> Result<(), Refusal> {
    match ids.iter().position(|id| id.len() > MAX_ID_BYTES) {
        Some(i) => Err(Refusal::Invalid(format!(
            "id {i} is {} bytes; ids take at most {MAX_ID_BYTES} bytes each",
            ids[i].len()
        ))),
        None => Ok(()),
    }
}

/// Reads the feature set; unset and unknown values are refused.
pub fn feature_set(raw: i32) -> Result<FeatureSet, Status> {
    const CHOICES: &str = "choose FEATURE_SET_EMBEDDINGS (1), FEATURE_SET_HANDCRAFTED (2) or FEATURE_SET_COMBINED (3)";
    match WireFeatureSet::try_from(raw) {
        Ok(WireFeatureSet::Embeddings) => Ok(FeatureSet::Embeddings),
        Ok(WireFeatureSet::Handcrafted) => Ok(FeatureSet::Handcrafted),
        Ok(WireFeatureSet::Combined) => Ok(FeatureSet::Combined),
        Ok(WireFeatureSet::Unspecified) => Err(Status::invalid_argument(format!(
            "feature_set is unset: {CHOICES}"
        ))),
        Err(_) => Err(Status::invalid_argument(format!(
            "feature_set {raw} is unknown: {CHOICES}"
        ))),
    }
}

/// Whether an empty prompt is refused (gRPC `Extract`) or embedded as the empty string (the
/// drop-in HTTP API, as the old server did).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptyPrompt {
    /// A blank prompt with a handcrafted set is INVALID_ARGUMENT.
    Refuse,
    /// A blank prompt is used as it is.
    Allow,
}

/// Checks an Extract request and expands its prompts to one per text.
pub fn extract(req: ExtractRequest, limits: &RequestLimits) -> Result<(Job, Dtype), Status> {
    let set = feature_set(req.feature_set)?;
    let dtype = dtype(req.dtype)?;
    let job = job(set, req.texts, req.prompts, limits, EmptyPrompt::Refuse)?;
    Ok((job, dtype))
}

/// Checks the texts and prompts of one extraction against the limits and expands the prompts to
/// one per text (none for the embeddings set).
pub fn job(
    set: FeatureSet,
    texts: Vec<String>,
    prompts: Vec<String>,
    limits: &RequestLimits,
    empty_prompt: EmptyPrompt,
) -> Result<Job, Refusal> {
    self::texts(&texts, limits)?;
    let n = texts.len();
    let k = prompts.len();
    if k > 1 && k != n {
        return Err(Refusal::Invalid(format!(
            "prompts has {k} entries for {n} texts: send one prompt per text, or a single prompt for all"
        )));
    }
    if set.has_handcrafted() && k == 0 {
        return Err(Refusal::Invalid(format!(
            "the {} feature set needs prompts (one per text, or a single one for all); none were sent",
            set.name()
        )));
    }
    let mut total: usize = texts.iter().map(String::len).sum();
    for (i, p) in prompts.iter().enumerate() {
        let which = if k == 1 {
            "the prompt".to_owned()
        } else {
            format!("prompt {i}")
        };
        if set.has_handcrafted() && empty_prompt == EmptyPrompt::Refuse && p.trim().is_empty() {
            return Err(Refusal::Invalid(format!(
                "{which} is empty: the {} feature set compares each essay with its prompt",
                set.name()
            )));
        }
        if p.len() > limits.max_bytes_per_text {
            return Err(Refusal::Invalid(format!(
                "{which} is {} bytes; the limit is {} bytes per text",
                p.len(),
                limits.max_bytes_per_text
            )));
        }
        total += p.len();
    }
    if total > limits.max_bytes_per_request {
        return Err(Refusal::TooLarge(format!(
            "the texts and prompts total {total} bytes; the limit is {} bytes per request: split it into smaller requests",
            limits.max_bytes_per_request
        )));
    }
    let prompts = match (set.has_handcrafted(), k) {
        (false, _) => Vec::new(),
        (true, 1) => vec![prompts[0].clone(); n],
        (true, _) => prompts,
    };
    Ok(Job {
        texts,
        prompts,
        set,
    })
}

/// Reads the requested output dtype; unspecified means f32.
pub fn dtype(raw: i32) -> Result<Dtype, Status> {
    match Dtype::try_from(raw) {
        Ok(Dtype::Unspecified) => Ok(Dtype::F32),
        Ok(d) => Ok(d),
        Err(_) => Err(Status::invalid_argument(format!(
            "dtype {raw} is unknown: use DTYPE_F32 (1) or DTYPE_F16 (2)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RequestLimits = RequestLimits {
        max_items_per_request: 2,
        max_bytes_per_text: 5,
        max_bytes_per_request: 8,
        max_message_bytes: 1 << 20,
        max_strings_per_request: 100,
    };

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn each_limit_names_the_problem() {
        assert!(texts(&[], &LIMITS).unwrap_err().message().contains("empty"));
        let e = texts(&strings(&["a", "b", "c"]), &LIMITS).unwrap_err();
        assert!(e.message().contains("3 texts"), "{}", e.message());
        let e = texts(&strings(&["ok", "toolong"]), &LIMITS).unwrap_err();
        assert!(
            e.message().starts_with("text 1 is 7 bytes"),
            "{}",
            e.message()
        );
        let e = texts(&strings(&["abcde", "abcd"]), &LIMITS).unwrap_err();
        assert!(e.message().contains("total 9 bytes"), "{}", e.message());
        assert!(texts(&strings(&["abc", "abcd"]), &LIMITS).is_ok());
    }

    fn extract_request(texts: &[&str], prompts: &[&str], set: i32) -> ExtractRequest {
        ExtractRequest {
            texts: strings(texts),
            prompts: strings(prompts),
            feature_set: set,
            dtype: 0,
        }
    }

    #[test]
    fn extract_requests_name_the_offending_item() {
        let message = |r| extract(r, &LIMITS).unwrap_err().message().to_owned();
        assert!(message(extract_request(&["a"], &["p"], 0)).contains("feature_set is unset"));
        assert!(message(extract_request(&["a"], &["p"], 7)).contains("feature_set 7 is unknown"));
        let m = message(extract_request(&["a", "b"], &["p", "q", "r"], 3));
        assert!(m.contains("3 entries for 2 texts"), "{m}");
        assert!(message(extract_request(&["a"], &[], 2)).contains("needs prompts"));
        let m = message(extract_request(&["a", "b"], &["p", " "], 3));
        assert!(m.starts_with("prompt 1 is empty"), "{m}");
        assert!(message(extract_request(&["a"], &[""], 2)).starts_with("the prompt is empty"));
        let m = message(extract_request(&["a"], &["toolong"], 2));
        assert!(m.starts_with("the prompt is 7 bytes"), "{m}");
        let m = message(extract_request(&["a", "toolong"], &["p"], 1));
        assert!(m.starts_with("text 1 is 7 bytes"), "{m}");
    }

    #[test]
    fn one_prompt_serves_every_text_and_embeddings_need_none() {
        let (job, _) = extract(extract_request(&["a", "b"], &["p"], 3), &LIMITS).unwrap();
        assert_eq!(job.prompts, strings(&["p", "p"]));
        let (job, _) = extract(extract_request(&["a", "b"], &[], 1), &LIMITS).unwrap();
        assert_eq!(job.set, FeatureSet::Embeddings);
        assert!(job.prompts.is_empty());
    }

    #[test]
    fn dtype_defaults_to_f32_and_rejects_unknown() {
        assert_eq!(dtype(0).unwrap(), Dtype::F32);
        assert_eq!(dtype(2).unwrap(), Dtype::F16);
        assert_eq!(dtype(9).unwrap_err().code(), tonic::Code::InvalidArgument);
    }
}
