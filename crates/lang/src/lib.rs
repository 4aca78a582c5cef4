//! Language-aware analysis for helpdex.
//!
//! * [`Lang`] / [`Family`]: Zendesk locale codes → language → analyzer family
//!   ([`Lang::for_locale`], [`family_for_locale`]).
//! * [`CjkBigramTokenizer`]: the base tokenizer of every analyzer: words, plus overlapping
//!   bigrams for Chinese, Japanese, Korean and Thai, in one stream.
//! * [`PairFilter`]: a tantivy `TokenFilter` emitting adjacent word pairs for a shingle field.
//! * [`analysis`]: the per-family chains (Snowball stemmers and stop words of tantivy 0.27),
//!   [`analyzer_for`], [`query_analyzer_for`], [`pair_analyzer_for`], [`register_all`].
//! * [`schema`]: one field set per family (`title_de`, `heading_de`, `text_de`, `pairs_de`, …)
//!   and the query builder for a question in a given family.
//! * [`detect`]: conservative query language detection ([`detect_language`]).

pub mod analysis;
pub mod cjk;
pub mod detect;
pub mod filters;
pub mod lang;
pub mod pairs;
pub mod schema;
pub mod stem;
#[rustfmt::skip]
mod stopwords;

pub use analysis::{
    Variant, analyzer, analyzer_for, analyzer_name, pair_analyzer_for, query_analyzer_for,
    register_all,
};
pub use cjk::CjkBigramTokenizer;
pub use detect::{detect_language, detect_language_among};
pub use lang::{ALL_FAMILIES, ALL_LANGS, Family, Lang, family_for_locale};
pub use pairs::PairFilter;
