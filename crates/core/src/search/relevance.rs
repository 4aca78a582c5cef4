//! "Nothing relevant": the documented rule that sets `found: false`.
//!
//! BM25 always ranks something first, so "any hit" is no answer to "does the help center cover
//! this?" ("Do you support Bitcoin payouts?" returns payout passages). The rule looks at the
//! best article's matching passages (their titles, headings and texts) and asks how much of the
//! question they cover, word by word and pair by pair:
//!
//! ```text
//! coverage(T, P) = Σ idf(t) over the terms t of T found in P  /  Σ idf(t) over T
//! relevance      = ½ coverage(content words) + ½ coverage(adjacent word pairs)
//!                  (the words alone when the question has no pair)
//! found          = relevance ≥ FOUND_RELEVANCE
//! ```
//!
//! Content words are the question's terms after stop words and stemming, in the article's
//! language; pairs are its adjacent content words ("refund_amount"), so a passage about the
//! same words in another relation covers less. `idf` is BM25's, over what the caller may read:
//! a word that appears nowhere (`bitcoin`) has the highest idf, so leaving it unanswered weighs
//! most, while a word found everywhere (`account`) weighs little. Measured on the project's
//! answerable and unanswerable sets (README), pairs separate the two better than words alone
//! (AUROC 0.815 vs 0.775 on WixQA, 0.739 vs 0.725 on the multilingual set, 0.688 vs 0.687 on
//! TechQA); uniform weights, square-root and capped idfs did worse.

use std::collections::HashSet;

/// The relevance at or above which the best article counts as an answer. Chosen on the
/// project's own question sets (`HELPDEX_EVAL_SWEEP=found cargo bench --bench eval`, README).
pub const FOUND_RELEVANCE: f32 = 0.25;

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

/// The relevance of a passage set to a question: words and pairs, half each.
pub fn relevance(
    words: &[(String, f32)],
    tokens: &HashSet<String>,
    pairs: &[(String, f32)],
    pair_tokens: &HashSet<String>,
) -> f32 {
    let w = coverage(words, tokens);
    if pairs.is_empty() {
        return w;
    }
    0.5 * w + 0.5 * coverage(pairs, pair_tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(words: &[&str]) -> HashSet<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn a_rare_unanswered_word_outweighs_common_answered_ones() {
        // "Do you support Bitcoin payouts?" over a few hundred passages: bitcoin is nowhere
        // (highest idf), support and payout are common.
        let words = vec![
            ("support".to_string(), 2.0),
            ("bitcoin".to_string(), 6.7),
            ("payout".to_string(), 2.5),
        ];
        let pairs = vec![
            ("support_bitcoin".to_string(), 6.7),
            ("bitcoin_payout".to_string(), 6.7),
        ];
        let payout_page = set(&["payout", "support", "bank"]);
        let r = relevance(&words, &payout_page, &pairs, &set(&["payout_schedul"]));
        assert!(r < FOUND_RELEVANCE, "{r}");
        let bitcoin_page = set(&["bitcoin", "payout", "support"]);
        let r = relevance(&words, &bitcoin_page, &pairs, &set(&["bitcoin_payout"]));
        assert!(r >= FOUND_RELEVANCE, "{r}");
    }

    #[test]
    fn pairs_count_half_when_the_question_has_them() {
        let words = vec![("refund".to_string(), 1.0), ("amount".to_string(), 1.0)];
        let pairs = vec![("refund_amount".to_string(), 2.0)];
        let tokens = set(&["refund", "amount"]);
        assert_eq!(relevance(&words, &tokens, &[], &set(&[])), 1.0);
        assert_eq!(relevance(&words, &tokens, &pairs, &set(&[])), 0.5);
        assert_eq!(
            relevance(&words, &tokens, &pairs, &set(&["refund_amount"])),
            1.0
        );
    }

    #[test]
    fn no_terms_is_no_coverage() {
        assert_eq!(coverage(&[], &set(&["x"])), 0.0);
    }
}
