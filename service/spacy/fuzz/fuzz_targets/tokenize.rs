//! The spaCy port's tokenizer on arbitrary UTF-8 (the harness is
//! `spacy_en_core_sm::fuzz_harness::tokenize`, which the unit tests replay over the corpus).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    spacy_en_core_sm::fuzz_harness::tokenize(data);
});
