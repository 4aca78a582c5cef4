//! Which languages a question is searched in. Pure: the question, the optional locale and the
//! locales the index holds decide it.
//!
//! - With a locale: that locale only, analysed with its language.
//! - Without one: the question's language is detected among the help center's languages
//!   (conservatively, `helpdex_lang::detect_language_among`). Its locales are preferred; an
//!   article not found in them is still found through its source-locale translation, and the
//!   hit says so (`locale_fallback`).
//! - When the language cannot be told (a few keywords, mixed scripts, a language the help
//!   center has no translations in): every locale, each analysed with its own language.

use helpdex_lang::{Family, Lang, detect_language_among, family_for_locale};

/// One part of the search: the question analysed with `family`'s analyzers, over documents in
/// `locales`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    /// Analyzer family of the documents (and of the question's terms).
    pub family: Family,
    /// Only documents in these locales.
    pub locales: Vec<String>,
    /// Only source-locale translations (a fallback for articles missing the preferred
    /// language), checked after ranking.
    pub fallback: bool,
}

/// How a question is searched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The parts, whose results are ranked together.
    pub branches: Vec<Branch>,
    /// Locales an article should be answered in when it has them (empty: no preference).
    pub preferred: Vec<String>,
    /// The question's detected language, when the locale was not given.
    pub detected: Option<Lang>,
}

/// Plans a search of `question` in the index whose documents are in `locales` (distinct).
pub fn plan(question: &str, locale: Option<&str>, locales: &[String]) -> Plan {
    if let Some(l) = locale {
        return Plan {
            branches: vec![Branch {
                family: family_for_locale(l),
                locales: vec![l.to_string()],
                fallback: false,
            }],
            preferred: vec![l.to_string()],
            detected: None,
        };
    }
    let mut langs: Vec<Lang> = locales.iter().filter_map(|l| Lang::for_locale(l)).collect();
    langs.sort();
    langs.dedup();
    let detected = detect_language_among(question, &langs);
    let Some(lang) = detected else {
        return Plan {
            branches: by_family(locales, false),
            preferred: Vec::new(),
            detected: None,
        };
    };
    let preferred: Vec<String> = locales
        .iter()
        .filter(|l| Lang::for_locale(l) == Some(lang))
        .cloned()
        .collect();
    let others: Vec<String> = locales
        .iter()
        .filter(|l| !preferred.contains(l))
        .cloned()
        .collect();
    let mut branches = Vec::new();
    if !preferred.is_empty() {
        branches.push(Branch {
            family: lang.family(),
            locales: preferred.clone(),
            fallback: false,
        });
    }
    branches.extend(by_family(&others, true));
    Plan {
        branches,
        preferred,
        detected,
    }
}

/// One branch per analyzer family of `locales`.
fn by_family(locales: &[String], fallback: bool) -> Vec<Branch> {
    let mut out: Vec<Branch> = Vec::new();
    for l in locales {
        let family = family_for_locale(l);
        match out.iter_mut().find(|b| b.family == family) {
            Some(b) => b.locales.push(l.clone()),
            None => out.push(Branch {
                family,
                locales: vec![l.clone()],
                fallback,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locales() -> Vec<String> {
        ["en-us", "de", "ja", "fr"].map(String::from).to_vec()
    }

    #[test]
    fn a_given_locale_is_the_only_branch() {
        let p = plan("Rechnung", Some("de"), &locales());
        assert_eq!(p.branches.len(), 1);
        assert_eq!(p.branches[0].family.code(), "de");
        assert_eq!(p.preferred, ["de"]);
    }

    #[test]
    fn a_detected_language_is_preferred_with_source_fallback() {
        let p = plan("Wie kann ich eine Rechnung erstellen?", None, &locales());
        assert_eq!(p.detected, Some(Lang::German));
        assert_eq!(p.preferred, ["de"]);
        assert!(!p.branches[0].fallback);
        assert!(p.branches[1..].iter().all(|b| b.fallback));
        let fallback: Vec<_> = p.branches[1..]
            .iter()
            .flat_map(|b| b.locales.clone())
            .collect();
        assert_eq!(fallback, ["en-us", "ja", "fr"]);
        let p = plan("請求書を作成するにはどうすればいいですか", None, &locales());
        assert_eq!(p.detected, Some(Lang::Japanese));
        assert_eq!(p.preferred, ["ja"]);
    }

    #[test]
    fn an_unknown_language_searches_everything_as_itself() {
        let p = plan("refund", None, &locales());
        assert_eq!(p.detected, None);
        assert!(p.preferred.is_empty());
        assert_eq!(p.branches.len(), 4);
        assert!(p.branches.iter().all(|b| !b.fallback));
    }
}
