//! Request validation: limits and enums, each failure a sentence naming the item.

use hemma_proto::v1::Dtype;
use tonic::Status;

use crate::config::RequestLimits;

/// Checks the texts of one request against the limits.
pub fn texts(texts: &[String], limits: &RequestLimits) -> Result<(), Status> {
    if texts.is_empty() {
        return Err(Status::invalid_argument(
            "texts is empty: send at least one text",
        ));
    }
    if texts.len() > limits.max_items_per_request {
        return Err(Status::invalid_argument(format!(
            "the request has {} texts; the limit is {} per request: split it into smaller requests",
            texts.len(),
            limits.max_items_per_request
        )));
    }
    let mut total = 0usize;
    for (i, t) in texts.iter().enumerate() {
        if t.len() > limits.max_bytes_per_text {
            return Err(Status::invalid_argument(format!(
                "text {i} is {} bytes; the limit is {} bytes per text",
                t.len(),
                limits.max_bytes_per_text
            )));
        }
        total += t.len();
    }
    if total > limits.max_bytes_per_request {
        return Err(Status::invalid_argument(format!(
            "the texts total {total} bytes; the limit is {} bytes per request: split it into smaller requests",
            limits.max_bytes_per_request
        )));
    }
    Ok(())
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

    #[test]
    fn dtype_defaults_to_f32_and_rejects_unknown() {
        assert_eq!(dtype(0).unwrap(), Dtype::F32);
        assert_eq!(dtype(2).unwrap(), Dtype::F16);
        assert_eq!(dtype(9).unwrap_err().code(), tonic::Code::InvalidArgument);
    }
}
