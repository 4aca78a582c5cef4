//! Hit texts analysed once, remembered across searches.
//!
//! Every search analyses its hits' texts: the snippet finds the question's terms in each
//! passage, and the found rule ([`super::relevance`]) asks which of the question's words and
//! pairs the best article's titles, headings and texts contain. Tokenizing, lowercasing,
//! folding and stemming those texts was about a third of a search's CPU on the demo help
//! center, and the same hot passages come back question after question. The analysis is a pure
//! function of the text and the analyzer (itself a pure function of family and variant), so it
//! is kept, keyed by the text itself: no hash collision can mix two texts up, and no index
//! state is involved, so it stays true across generations. Bounded by a byte budget; a full
//! shard is cleared, as the stem memo is.

use foldhash::HashMap;
use helpdex_lang::{Family, Variant, analyzer};
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

/// One text's analysis.
#[derive(Debug)]
pub struct Analysed {
    /// Distinct token texts, sorted.
    terms: Vec<Box<str>>,
    /// Each token in text order: its index in `terms` and its byte range in the text. Kept
    /// only for the variant snippets use (`Index`).
    seq: Vec<(u32, Range<usize>)>,
    /// Every term is its own lowercase (the analyzers lowercase, so in practice always):
    /// snippets then look terms up as they are, where tantivy lowercases each token again.
    lowercase: bool,
}

impl Analysed {
    fn new(family: Family, variant: Variant, text: &str) -> Analysed {
        let mut a = analyzer(family, variant);
        let mut stream = a.token_stream(text);
        // One allocation per distinct term, not per token: a passage repeats its words.
        let mut index: HashMap<Box<str>, u32> = HashMap::default();
        let mut seq: Vec<(u32, Range<usize>)> = Vec::new();
        while stream.advance() {
            let t = stream.token();
            let next = index.len() as u32;
            let i = match index.get(t.text.as_str()) {
                Some(&i) => i,
                None => {
                    index.insert(t.text.as_str().into(), next);
                    next
                }
            };
            if variant == Variant::Index {
                seq.push((i, t.offset_from..t.offset_to));
            }
        }
        // Sorted, for `contains`; `seq` renumbered to match.
        let mut terms: Vec<(Box<str>, u32)> = index.into_iter().collect();
        terms.sort_unstable();
        let mut renumber = vec![0u32; terms.len()];
        for (sorted, (_, first)) in terms.iter().enumerate() {
            renumber[*first as usize] = sorted as u32;
        }
        for (i, _) in &mut seq {
            *i = renumber[*i as usize];
        }
        let terms: Vec<Box<str>> = terms.into_iter().map(|(t, _)| t).collect();
        let lowercase = terms.iter().all(|t| t.to_lowercase() == **t);
        Analysed {
            terms,
            seq,
            lowercase,
        }
    }

    /// Whether the text has a token `term`.
    pub fn contains(&self, term: &str) -> bool {
        self.terms.binary_search_by(|x| (**x).cmp(term)).is_ok()
    }

    /// Approximate heap bytes, for the budget.
    fn bytes(&self) -> usize {
        let terms: usize = self.terms.iter().map(|t| t.len() + 16).sum();
        terms + self.seq.len() * std::mem::size_of::<(u32, Range<usize>)>() + 64
    }
}

const SHARDS: usize = 16;
/// Bytes of analyses (and their texts) kept, in all.
const BUDGET: usize = 32 << 20;

#[derive(Default)]
struct Shard {
    by_analyzer: HashMap<(Family, Variant), HashMap<Box<str>, Arc<Analysed>>>,
    bytes: usize,
}

struct Cache {
    shards: Vec<Mutex<Shard>>,
    hasher: foldhash::fast::RandomState,
}

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Cache {
        shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        hasher: foldhash::fast::RandomState::default(),
    })
}

/// `text` analysed with `family`'s `variant` analyzer: remembered, or analysed now.
pub fn analysed(family: Family, variant: Variant, text: &str) -> Arc<Analysed> {
    let c = cache();
    let shard = &c.shards[(c.hasher.hash_one(text) as usize) % SHARDS];
    // A poisoned shard only means another search panicked mid-insert: the map is still whole.
    let lock = || shard.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(a) = lock()
        .by_analyzer
        .get(&(family, variant))
        .and_then(|m| m.get(text))
    {
        return a.clone();
    }
    let a = Arc::new(Analysed::new(family, variant, text));
    let cost = a.bytes() + text.len() + 32;
    let mut s = lock();
    if s.bytes + cost > BUDGET / SHARDS {
        s.by_analyzer.clear();
        s.bytes = 0;
    }
    // Another search may have analysed the same text meanwhile: keep the first.
    let kept = s
        .by_analyzer
        .entry((family, variant))
        .or_default()
        .entry(text.into())
        .or_insert_with(|| a.clone())
        .clone();
    if Arc::ptr_eq(&kept, &a) {
        s.bytes += cost;
    }
    kept
}

/// A snippet: the chosen fragment's byte range in the text and the highlighted ranges within
/// the fragment. Empty range and no highlights when no question term occurs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// The fragment, as a byte range of the text.
    pub fragment: Range<usize>,
    /// Highlighted terms, as byte ranges of the fragment.
    pub highlighted: Vec<Range<usize>>,
}

/// tantivy's `SnippetGenerator::snippet` (0.27) over a remembered analysis: the same fragment
/// and highlights for the same terms, analyzer and `max_num_chars` (a test compares the two),
/// without analysing the text again. `terms` maps a term to its weight.
pub fn snippet(a: &Analysed, terms: &BTreeMap<String, f32>, max_num_chars: usize) -> Snippet {
    struct Fragment {
        score: f32,
        start: usize,
        stop: usize,
        highlighted: Vec<Range<usize>>,
    }
    let fragment = |start| Fragment {
        score: 0.0,
        start,
        stop: start,
        highlighted: Vec::new(),
    };
    // tantivy looks each token up lowercased; here once per distinct term, and lowercased
    // only when the analysis found a term that is not (`Analysed::lowercase`).
    let weight: Vec<Option<f32>> = a
        .terms
        .iter()
        .map(|t| match a.lowercase {
            true => terms.get(&**t),
            false => terms.get(&t.to_lowercase()),
        })
        .map(Option::<&f32>::copied)
        .collect();
    let mut fragments: Vec<Fragment> = Vec::new();
    let mut current = fragment(0);
    for (term, range) in &a.seq {
        // Wrapping, as tantivy's release build computes it.
        if range.end.wrapping_sub(current.start) > max_num_chars {
            let next = fragment(range.start);
            let done = std::mem::replace(&mut current, next);
            if done.score > 0.0 {
                fragments.push(done);
            }
        }
        current.stop = range.end;
        if let Some(w) = weight[*term as usize] {
            current.score += w;
            current.highlighted.push(range.clone());
        }
    }
    if current.score > 0.0 {
        fragments.push(current);
    }
    let best = fragments
        .iter()
        .max_by(|l, r| match l.score.partial_cmp(&r.score) {
            Some(std::cmp::Ordering::Equal) | None => (r.start, r.stop).cmp(&(l.start, l.stop)),
            Some(o) => o,
        });
    match best {
        Some(f) => Snippet {
            fragment: f.start..f.stop,
            highlighted: f
                .highlighted
                .iter()
                .map(|h| h.start - f.start..h.end - f.start)
                .collect(),
        },
        None => Snippet {
            fragment: 0..0,
            highlighted: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::schema::{Schema, TEXT};

    const TEXTS: &[&str] = &[
        "Refunds\nTo request a refund, open Orders and choose Refund. Refunds reach the card in \
         5 to 10 business days; a refund to a bank account can take longer. Partial refunds \
         are possible for orders with several items, and refunded items must be returned.",
        "Rechnungen herunterladen\nÖffnen Sie Einstellungen › Rechnungen und wählen Sie \
         Herunterladen. Die Rechnung enthält die Umsatzsteuer; ältere Rechnungen finden Sie im \
         Archiv.",
        "パスワードをリセットするには、ログイン画面で「パスワードをお忘れですか」を選びます。\
         メールに届いたリンクからパスワードを再設定してください。",
        "",
        "no match at all here",
        "API keys API keys API keys: create an API key under Settings, rotate API keys often, \
         and never share an API key. Revoked keys stop working at once.",
    ];

    /// The same fragment and highlights as tantivy's generator, over several languages, term
    /// sets and fragment lengths.
    #[test]
    fn snippets_are_tantivys() {
        let cases: &[(Family, &[(&str, f32)])] = &[
            (
                Family::from_code("en").unwrap(),
                &[("refund", 1.5), ("bank", 3.0)],
            ),
            (
                Family::from_code("en").unwrap(),
                &[("api", 1.0), ("key", 1.0), ("revok", 2.0)],
            ),
            (Family::from_code("en").unwrap(), &[("absent", 1.0)]),
            (Family::from_code("en").unwrap(), &[]),
            (
                Family::from_code("de").unwrap(),
                &[("rechnung", 2.0), ("archiv", 1.0)],
            ),
            (Family::Cjk, &[("パス", 1.0), ("リセ", 2.0), ("メー", 0.5)]),
        ];
        let mut schema = Schema::builder();
        let field = schema.add_text_field("t", TEXT);
        let _ = schema.build();
        let mut compared = 0;
        for (family, terms) in cases {
            let terms: BTreeMap<String, f32> =
                terms.iter().map(|(t, w)| (t.to_string(), *w)).collect();
            for max in [20, 60, 150, 240] {
                let generator = tantivy::snippet::SnippetGenerator::new(
                    terms.clone(),
                    analyzer(*family, Variant::Index),
                    field,
                    max,
                );
                for text in TEXTS {
                    let theirs = generator.snippet(text);
                    let ours = snippet(&analysed(*family, Variant::Index, text), &terms, max);
                    assert_eq!(&text[ours.fragment.clone()], theirs.fragment(), "{text:?}");
                    assert_eq!(ours.highlighted, theirs.highlighted(), "{text:?} {max}");
                    compared += usize::from(!ours.highlighted.is_empty());
                }
            }
        }
        // The comparison is not vacuous: most cases highlight something.
        assert!(compared >= 12, "{compared}");
    }

    /// A remembered analysis is the analyzer's own tokens, for every variant.
    #[test]
    fn contains_is_the_analyzers_tokens() {
        for family in [Family::from_code("en").unwrap(), Family::Cjk] {
            for variant in [Variant::Index, Variant::Pairs] {
                for text in TEXTS {
                    let mut want = std::collections::HashSet::new();
                    let mut a = analyzer(family, variant);
                    let mut s = a.token_stream(text);
                    while s.advance() {
                        want.insert(s.token().text.clone());
                    }
                    let got = analysed(family, variant, text);
                    assert_eq!(got.terms.len(), want.len());
                    assert!(want.iter().all(|t| got.contains(t)));
                    assert!(!got.contains("zzz-not-a-token"));
                    // Remembered: the second call returns the same analysis.
                    assert!(Arc::ptr_eq(&got, &analysed(family, variant, text)));
                }
            }
        }
    }
}
