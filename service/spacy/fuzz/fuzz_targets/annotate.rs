//! The spaCy port's whole pipeline (tokenizer, tok2vec, tagger, parser, attribute ruler) on
//! arbitrary UTF-8 (the harness is `spacy_en_core_sm::fuzz_harness::annotate`, which the unit
//! tests replay over the corpus).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    spacy_en_core_sm::fuzz_harness::annotate(data);
});
