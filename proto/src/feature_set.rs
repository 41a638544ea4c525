//! What an `Extract` call computes, by name: the one definition of the feature-set names used in
//! messages, the CLI, cache paths and `meta.json`.

use crate::v1::FeatureSet;

impl FeatureSet {
    /// The lower-case name (`embeddings`, `handcrafted`, `combined`; `unspecified`).
    pub fn name(self) -> &'static str {
        match self {
            FeatureSet::Unspecified => "unspecified",
            FeatureSet::Embeddings => "embeddings",
            FeatureSet::Handcrafted => "handcrafted",
            FeatureSet::Combined => "combined",
        }
    }

    /// The set of a lower-case name; `None` for anything else (and for `unspecified`).
    pub fn from_name(name: &str) -> Option<FeatureSet> {
        match name {
            "embeddings" => Some(FeatureSet::Embeddings),
            "handcrafted" => Some(FeatureSet::Handcrafted),
            "combined" => Some(FeatureSet::Combined),
            _ => None,
        }
    }

    /// Whether the answer holds the embeddings matrix.
    pub fn has_embeddings(self) -> bool {
        matches!(self, FeatureSet::Embeddings | FeatureSet::Combined)
    }

    /// Whether the answer holds the handcrafted matrix (which needs prompts and LanguageTool).
    pub fn has_handcrafted(self) -> bool {
        matches!(self, FeatureSet::Handcrafted | FeatureSet::Combined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unspecified_has_nothing() {
        for set in [
            FeatureSet::Embeddings,
            FeatureSet::Handcrafted,
            FeatureSet::Combined,
        ] {
            assert_eq!(FeatureSet::from_name(set.name()), Some(set));
        }
        assert_eq!(FeatureSet::from_name("unspecified"), None);
        let u = FeatureSet::Unspecified;
        assert!(!u.has_embeddings() && !u.has_handcrafted());
        assert!(FeatureSet::Combined.has_embeddings() && FeatureSet::Combined.has_handcrafted());
    }
}
