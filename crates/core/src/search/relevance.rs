//! "Nothing relevant": the documented rule that sets `found: false`.
//!
//! BM25 always ranks something first, so "any hit" is no answer to "does the help center cover
//! this?" ("Do you support Bitcoin payouts?" returns payout passages). The rule looks at the
//! best hit's article passage and asks how much of the question it covers:
//!
//! ```text
//! coverage = Σ idf(t) over the question's content words found in the hit (title, heading, text)
//!            ───────────────────────────────────────────────────────────────────────────────
//!            Σ idf(t) over all of the question's content words
//! found    = coverage ≥ FOUND_COVERAGE
//! ```
//!
//! Content words are the question's terms after stop words and stemming, in the hit's
//! language. `idf` is BM25's, over what the caller may read; a word that appears nowhere
//! (`bitcoin`) has the highest idf, so leaving it unanswered weighs most, while a word found
//! everywhere (`account`) weighs little. The threshold and its false-positive and
//! false-negative rates on answerable and unanswerable question sets are in the README.

use std::collections::HashSet;

/// The coverage at or above which the best hit counts as an answer. Chosen on the project's
/// own question sets (`cargo bench --bench eval`, README): see the README for the rates.
pub const FOUND_COVERAGE: f32 = 0.5;

/// How much of the question a passage covers: the idf-weighted share of its content words
/// that occur in the passage. `terms` are the question's distinct content terms with their
/// idf; `passage` the distinct terms of the passage (same analysis). 0 for no terms.
pub fn coverage(terms: &[(String, f32)], passage: &HashSet<String>) -> f32 {
    let total: f32 = terms.iter().map(|(_, w)| w.max(0.0)).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let hit: f32 = terms
        .iter()
        .filter(|(t, _)| passage.contains(t))
        .map(|(_, w)| w.max(0.0))
        .sum();
    hit / total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(words: &[&str]) -> HashSet<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn a_rare_unanswered_word_outweighs_common_answered_ones() {
        // "Do you support Bitcoin payouts?": bitcoin is nowhere (highest idf).
        let terms = vec![
            ("support".to_string(), 1.0),
            ("bitcoin".to_string(), 4.0),
            ("payout".to_string(), 1.5),
        ];
        let c = coverage(&terms, &set(&["payout", "support", "bank"]));
        assert!(c < FOUND_COVERAGE, "{c}");
        let c = coverage(&terms, &set(&["bitcoin", "payout"]));
        assert!(c >= FOUND_COVERAGE, "{c}");
    }

    #[test]
    fn no_terms_is_no_coverage() {
        assert_eq!(coverage(&[], &set(&["x"])), 0.0);
    }
}
