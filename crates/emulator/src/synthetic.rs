//! A synthetic help center of any size, for benchmarks and request-budget tests.
//!
//! Deterministic from a seed: the same [`Synthetic`] always gives the same world. Article
//! bodies are not stored but rendered on demand from a small seed ([`BodySeed`]), so a
//! 100,000-article help center costs the emulator a few tens of MB, not gigabytes of HTML.
//!
//! What it looks like: sections in categories; a default locale plus translations for a share
//! of the articles; bodies of realistic sizes (median ≈ 3 KB, a long tail to ≈ 60 KB) with an
//! intro, `h2`/`h3` headings carrying Zendesk's `h_01…` ids, a table of contents on some,
//! paragraphs, lists, tables, images, links to other articles and `wysiwyg-*` markup; every
//! visibility case (public, signed-in, custom segment, staff, several segments, drafts of the
//! source and of single translations).

use super::world::{ArticleRec, Body, Credential, Role, TranslationRec, World};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The admin credentials a synthetic help center accepts.
pub const SYNTHETIC_EMAIL: &str = "bench@synthetic.test";
/// The admin API token a synthetic help center accepts.
pub const SYNTHETIC_TOKEN: &str = "synthetic-admin-token";

/// The id of the first synthetic article; the others follow one by one.
pub const FIRST_ID: u64 = 4_200_000_000_000;

/// What synthetic help center to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct Synthetic {
    /// Number of articles.
    pub articles: usize,
    /// The default (source) locale of every article.
    pub default_locale: String,
    /// Other locales, each with the share of articles translated into it.
    pub translations: Vec<(String, f64)>,
    /// Number of sections (spread over categories of about eight sections).
    pub sections: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// `updated_at` of the newest article; older ones go back a few seconds each.
    pub newest: i64,
}

impl Default for Synthetic {
    fn default() -> Self {
        Synthetic {
            articles: 1_000,
            default_locale: "en-us".into(),
            translations: vec![("de".into(), 0.5), ("fr".into(), 0.25)],
            sections: 60,
            seed: 1,
            newest: chrono::Utc::now().timestamp() - 3_600,
        }
    }
}

/// splitmix64: small, fast and good enough to pick words.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Zipf-like: low indexes much more often, as word frequencies are.
    fn zipf(&mut self, n: usize) -> usize {
        let u = self.unit();
        ((n as f64).powf(u) - 1.0).floor() as usize % n.max(1)
    }
}

fn mix(a: u64, b: u64) -> u64 {
    let mut r = Rng::new(a.wrapping_mul(0x100_0000_01B3) ^ b);
    r.next()
}

const WORDS: &[&str] = &[
    "account",
    "billing",
    "invoice",
    "payment",
    "refund",
    "card",
    "subscription",
    "plan",
    "upgrade",
    "downgrade",
    "password",
    "login",
    "security",
    "export",
    "import",
    "report",
    "dashboard",
    "settings",
    "notification",
    "email",
    "webhook",
    "token",
    "integration",
    "calendar",
    "team",
    "member",
    "role",
    "permission",
    "admin",
    "agent",
    "customer",
    "ticket",
    "chat",
    "widget",
    "mobile",
    "app",
    "browser",
    "cache",
    "cookie",
    "domain",
    "certificate",
    "storage",
    "backup",
    "restore",
    "sync",
    "upload",
    "download",
    "file",
    "image",
    "video",
    "template",
    "theme",
    "language",
    "currency",
    "tax",
    "receipt",
    "discount",
    "coupon",
    "trial",
    "cancel",
    "renew",
    "license",
    "seat",
    "quota",
    "limit",
    "error",
    "timeout",
    "outage",
    "status",
    "maintenance",
    "release",
    "feature",
    "beta",
    "workaround",
    "log",
    "audit",
    "history",
    "search",
    "filter",
    "tag",
    "label",
    "category",
    "section",
    "guide",
    "configure",
    "enable",
    "disable",
    "install",
    "update",
    "connect",
    "disconnect",
    "verify",
    "confirm",
    "reset",
    "delete",
    "archive",
    "share",
    "invite",
    "approve",
    "reject",
    "schedule",
    "shipping",
    "order",
    "tracking",
    "delivery",
    "return",
    "exchange",
    "warranty",
    "inventory",
    "product",
    "catalog",
    "checkout",
    "cart",
    "address",
    "phone",
    "profile",
    "avatar",
    "username",
    "session",
    "device",
    "printer",
    "network",
    "firmware",
    "battery",
    "screen",
    "keyboard",
    "offline",
    "region",
    "timezone",
    "privacy",
    "consent",
    "contract",
    "vendor",
    "partner",
    "payout",
    "balance",
    "transfer",
    "bank",
    "chargeback",
    "dispute",
    "fraud",
    "risk",
    "compliance",
    "identity",
    "document",
    "signature",
    "spreadsheet",
    "field",
    "column",
    "record",
    "query",
    "chart",
    "metric",
    "alert",
    "threshold",
    "automation",
    "trigger",
    "macro",
    "workflow",
    "rule",
    "condition",
    "queue",
    "priority",
    "escalation",
    "survey",
    "rating",
    "feedback",
    "review",
    "comment",
    "reply",
    "attachment",
    "merchant",
    "terminal",
    "reader",
    "pos",
    "receipt",
    "statement",
    "ledger",
    "reconciliation",
    "fee",
    "rate",
    "interest",
    "currency",
    "wallet",
    "voucher",
    "gift",
    "loyalty",
    "points",
    "tier",
    "onboarding",
    "verification",
    "document",
    "passport",
    "selfie",
    "approval",
    "limit",
    "sandbox",
    "production",
    "endpoint",
    "request",
    "response",
    "header",
    "parameter",
    "pagination",
    "cursor",
    "retry",
    "backoff",
    "latency",
    "region",
    "server",
    "client",
    "credential",
    "scope",
    "oauth",
    "redirect",
    "callback",
    "signature",
    "payload",
    "event",
];

const FILLER: &[&str] = &[
    "the", "a", "to", "your", "you", "can", "and", "of", "in", "for", "when", "if", "with", "is",
    "on", "this", "from", "after", "before", "then", "each", "every", "not", "only", "also",
    "that", "are", "be", "it", "or", "by", "new", "any", "all", "more",
];

const VERBS: &[&str] = &[
    "set up",
    "change",
    "cancel",
    "update",
    "export",
    "connect",
    "verify",
    "reset",
    "track",
    "refund",
    "troubleshoot",
    "manage",
    "enable",
    "disable",
    "delete",
    "download",
    "share",
    "schedule",
    "approve",
    "review",
];

/// Locale-specific words mixed into translated bodies, so each language has its own terms.
fn locale_words(locale: &str) -> &'static [&'static str] {
    match locale {
        "de" => &[
            "Konto",
            "Rechnung",
            "Zahlung",
            "Erstattung",
            "Karte",
            "Abonnement",
            "Passwort",
            "Anmeldung",
            "Sicherheit",
            "Bericht",
            "Einstellungen",
            "Benachrichtigung",
            "Kunde",
            "Lieferung",
            "Bestellung",
            "Rückgabe",
            "Gebühr",
            "Auszahlung",
            "Überweisung",
            "Bank",
            "und",
            "der",
            "die",
            "das",
            "mit",
            "für",
            "nicht",
            "Sie",
            "können",
            "wird",
        ],
        "fr" => &[
            "compte",
            "facture",
            "paiement",
            "remboursement",
            "carte",
            "abonnement",
            "mot de passe",
            "connexion",
            "sécurité",
            "rapport",
            "paramètres",
            "client",
            "livraison",
            "commande",
            "retour",
            "frais",
            "virement",
            "banque",
            "et",
            "le",
            "la",
            "les",
            "avec",
            "pour",
            "vous",
            "pouvez",
            "est",
            "pas",
            "des",
            "une",
        ],
        _ => &[],
    }
}

/// What one synthetic body is made from; [`BodySeed::render`] gives the HTML.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BodySeed {
    pub id: u64,
    pub locale: String,
    pub revision: u32,
    /// Articles links may point at: `FIRST_ID .. FIRST_ID + span`.
    pub span: u64,
}

fn sentence(r: &mut Rng, out: &mut String, extra: &[&str], topic: &[&str]) {
    let n = 8 + r.below(12);
    for i in 0..n {
        let w = if !extra.is_empty() && r.unit() < 0.35 {
            extra[r.below(extra.len())]
        } else if r.unit() < 0.45 {
            FILLER[r.zipf(FILLER.len())]
        } else if !topic.is_empty() && r.unit() < 0.3 {
            topic[r.below(topic.len())]
        } else {
            WORDS[r.zipf(WORDS.len())]
        };
        if i == 0 {
            let mut c = w.chars();
            if let Some(f) = c.next() {
                out.extend(f.to_uppercase());
                out.push_str(c.as_str());
            }
        } else {
            out.push(' ');
            out.push_str(w);
        }
    }
    out.push_str(". ");
}

fn heading_id(r: &mut Rng) -> String {
    const ULID: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut s = String::from("h_01");
    for _ in 0..24 {
        s.push(ULID[r.below(ULID.len())] as char);
    }
    s
}

fn title_words(r: &mut Rng) -> String {
    let verb = VERBS[r.below(VERBS.len())];
    let a = WORDS[r.zipf(WORDS.len())];
    let b = WORDS[r.below(WORDS.len())];
    format!("How to {verb} {a} {b}")
}

/// A target body size in bytes: median ≈ 3 KB (the fixture help center's is 2.2 KB), mean
/// ≈ 4.5 KB, a tail to ≈ 60 KB.
fn body_size(r: &mut Rng) -> usize {
    let u = r.unit();
    if u < 0.55 {
        1_000 + r.below(2_000)
    } else if u < 0.90 {
        3_000 + r.below(4_000)
    } else if u < 0.99 {
        7_000 + r.below(13_000)
    } else {
        20_000 + r.below(40_000)
    }
}

impl BodySeed {
    /// The HTML body: deterministic for (id, locale, revision).
    pub(crate) fn render(&self) -> String {
        let mut r = Rng::new(mix(
            mix(self.id, self.revision as u64),
            locale_hash(&self.locale),
        ));
        let target = body_size(&mut r);
        let extra = locale_words(&self.locale);
        // Words this article is "about": repeated, as real articles repeat their subject.
        let topic: Vec<&str> = (0..4).map(|_| WORDS[r.below(WORDS.len())]).collect();
        let n_sections = (2 + target / 1_800).min(12);
        let heads: Vec<(u8, String, String)> = (0..n_sections)
            .map(|i| {
                let level = if i > 0 && r.unit() < 0.25 { 3 } else { 2 };
                let mut t = String::new();
                sentence(&mut r, &mut t, extra, &topic);
                let t: String = t.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
                (
                    level,
                    heading_id(&mut r),
                    t.trim_end_matches('.').to_string(),
                )
            })
            .collect();
        let mut out = String::with_capacity(target + 1_024);
        out.push_str("<p>");
        for _ in 0..1 + r.below(3) {
            sentence(&mut r, &mut out, extra, &topic);
        }
        out.push_str("</p>\n");
        if r.unit() < 0.3 {
            out.push_str("<ul class=\"toc\">");
            for (_, id, t) in &heads {
                out.push_str(&format!(
                    "<li><a href=\"#{id}\" target=\"_self\">{t}</a></li>"
                ));
            }
            out.push_str("</ul>\n");
        }
        let per_section = target / n_sections;
        for (level, id, t) in &heads {
            out.push_str(&format!("<h{level} id=\"{id}\">{t}</h{level}>\n"));
            let end = out.len() + per_section;
            while out.len() < end {
                let u = r.unit();
                if u < 0.15 {
                    out.push_str("<ul>");
                    for _ in 0..2 + r.below(4) {
                        out.push_str("<li>");
                        sentence(&mut r, &mut out, extra, &topic);
                        out.push_str("</li>");
                    }
                    out.push_str("</ul>\n");
                } else if u < 0.20 {
                    out.push_str("<div class=\"table-wrap\"><table><thead><tr><th>Plan</th><th>Limit</th><th>Fee</th></tr></thead><tbody>");
                    for _ in 0..2 + r.below(4) {
                        out.push_str(&format!(
                            "<tr><td>{}</td><td>{}</td><td>{}.{:02} USD</td></tr>",
                            WORDS[r.below(WORDS.len())],
                            r.below(10_000),
                            r.below(100),
                            r.below(100)
                        ));
                    }
                    out.push_str("</tbody></table></div>\n");
                } else if u < 0.25 {
                    out.push_str(&format!(
                        "<p><img src=\"/hc/article_attachments/{}/screen.png\" alt=\"{} screen\" width=\"1024\" height=\"640\"></p>\n",
                        9_000_000 + r.below(1_000_000),
                        WORDS[r.below(WORDS.len())]
                    ));
                } else {
                    out.push_str("<p>");
                    for _ in 0..1 + r.below(4) {
                        sentence(&mut r, &mut out, extra, &topic);
                    }
                    if r.unit() < 0.2 {
                        let target = FIRST_ID + (r.next() % self.span.max(1));
                        out.push_str(&format!(
                            "See <a href=\"/hc/{}/articles/{target}\">this article</a>. ",
                            self.locale
                        ));
                    }
                    if r.unit() < 0.1 {
                        out.push_str(&format!(
                            "<span class=\"wysiwyg-color-red\">{}</span>",
                            WORDS[r.below(WORDS.len())]
                        ));
                    }
                    out.push_str("</p>\n");
                }
            }
        }
        out
    }
}

fn locale_hash(l: &str) -> u64 {
    l.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

impl Synthetic {
    /// The ids of the generated articles, in order.
    pub fn ids(&self) -> impl Iterator<Item = u64> {
        (0..self.articles as u64).map(|i| FIRST_ID + i)
    }

    /// Every locale, the default first.
    pub fn locales(&self) -> Vec<String> {
        std::iter::once(self.default_locale.clone())
            .chain(self.translations.iter().map(|(l, _)| l.clone()))
            .collect()
    }

    /// Generates the help center.
    pub fn world(&self) -> World {
        let brand = json!({
            "id": 4_200_000_001u64, "name": "Synthetic Co", "subdomain": "synthetic",
            "host_mapping": null, "has_help_center": true, "help_center_state": "enabled",
            "active": true, "default": true
        });
        let n_cat = self.sections.div_ceil(8).max(1);
        let categories: Vec<Map<String, Value>> = (0..n_cat)
            .map(|i| obj(json!({"id": 4_300_000_000u64 + i as u64, "name": format!("Category {i}"), "position": i})))
            .collect();
        let sections: Vec<Map<String, Value>> = (0..self.sections.max(1))
            .map(|i| {
                obj(
                    json!({"id": 4_400_000_000u64 + i as u64, "name": format!("Section {i}"),
                           "category_id": 4_300_000_000u64 + (i / 8) as u64, "position": i}),
                )
            })
            .collect();
        let segments: Vec<Map<String, Value>> = [
            (1u64, "Signed-in users", "signed_in_users", true),
            (2, "Agents and admins", "staff", true),
            (3, "VIP customers", "signed_in_users", false),
            (4, "Tier 2 agents", "staff", false),
        ]
        .into_iter()
        .map(|(id, name, ut, bi)| {
            obj(
                json!({"id": id, "name": name, "user_type": ut, "built_in": bi,
                       "group_ids": [], "organization_ids": [], "tags": [], "or_tags": [],
                       "created_at": "2020-01-01T00:00:00Z", "updated_at": "2020-01-01T00:00:00Z"}),
            )
        })
        .collect();
        let mut articles = BTreeMap::new();
        let n = self.articles as u64;
        for (i, id) in self.ids().enumerate() {
            let mut r = Rng::new(mix(self.seed, id));
            // Newest last: a few seconds apart, distinct seconds as real edits mostly are.
            let t = self.newest - (n - 1 - i as u64) as i64 * 3;
            let u = r.unit();
            let (segs, draft): (Vec<u64>, bool) = if u < 0.80 {
                (vec![], false)
            } else if u < 0.86 {
                (vec![1], false)
            } else if u < 0.90 {
                (vec![3], false)
            } else if u < 0.95 {
                (vec![2], false)
            } else if u < 0.97 {
                (vec![4], false)
            } else if u < 0.985 {
                (vec![3, 1], false)
            } else {
                (vec![], true)
            };
            let title = title_words(&mut r);
            let body = |locale: &str| {
                Some(Body::Synthetic(BodySeed {
                    id,
                    locale: locale.to_string(),
                    revision: 0,
                    span: n,
                }))
            };
            let mut translations = vec![TranslationRec {
                id: 0,
                locale: self.default_locale.clone(),
                title: Some(title.clone()),
                body: body(&self.default_locale),
                draft,
                outdated: false,
                created_at: t - 86_400,
                updated_at: t,
                created_by_id: Value::Null,
                updated_by_id: Value::Null,
            }];
            for (k, (locale, share)) in self.translations.iter().enumerate() {
                if r.unit() < *share {
                    translations.push(TranslationRec {
                        id: 0,
                        locale: locale.clone(),
                        title: Some(format!("{title} ({locale})")),
                        body: body(locale),
                        // Some translations are unpublished while the source is live.
                        draft: draft || r.unit() < 0.03,
                        outdated: r.unit() < 0.05,
                        created_at: t - 86_400,
                        updated_at: t - 1 - k as i64,
                        created_by_id: Value::Null,
                        updated_by_id: Value::Null,
                    });
                }
            }
            articles.insert(
                id,
                ArticleRec {
                    id,
                    source_locale: self.default_locale.clone(),
                    section_id: Some(4_400_000_000u64 + r.below(self.sections.max(1)) as u64),
                    user_segment_ids: segs,
                    label_names: vec![WORDS[r.below(WORDS.len())].to_string()],
                    position: 0,
                    created_at: t - 86_400,
                    meta_updated_at: i64::MIN,
                    extra: obj(json!({"author_id": 4_500_000_000u64, "comments_disabled": false,
                                      "promoted": false, "vote_sum": 0, "vote_count": 0,
                                      "permission_group_id": 4_600_000_000u64, "content_tag_ids": []})),
                    translations,
                    archived: false,
                    patch: Map::new(),
                },
            );
        }
        World::assemble(
            obj(brand),
            self.default_locale.clone(),
            self.locales(),
            vec![Credential::ApiToken {
                email: SYNTHETIC_EMAIL.into(),
                token: SYNTHETIC_TOKEN.into(),
                role: Role::Admin,
            }],
            categories,
            sections,
            segments,
            articles,
        )
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_deterministic_realistic_and_change_with_revisions() {
        let seed = BodySeed {
            id: FIRST_ID + 7,
            locale: "en-us".into(),
            revision: 0,
            span: 100,
        };
        let a = seed.render();
        assert_eq!(a, seed.render());
        assert!(a.contains("<h2 id=\"h_01") && a.contains("<p>"), "{a}");
        let b = BodySeed {
            revision: 1,
            ..seed.clone()
        }
        .render();
        assert_ne!(a, b);
        let sizes: Vec<usize> = (0..400)
            .map(|i| {
                BodySeed {
                    id: FIRST_ID + i,
                    ..seed.clone()
                }
                .render()
                .len()
            })
            .collect();
        let mut sorted = sizes.clone();
        sorted.sort_unstable();
        let median = sorted[sorted.len() / 2];
        assert!(
            (2_000..8_000).contains(&median),
            "median body {median} bytes"
        );
        assert!(*sorted.last().unwrap() > 10_000, "a long tail");
    }

    #[test]
    fn the_world_has_every_visibility_case_and_its_locales() {
        let spec = Synthetic {
            articles: 2_000,
            newest: 2_000_000_000,
            ..Synthetic::default()
        };
        let w = spec.world();
        assert_eq!(w.articles.len(), 2_000);
        let segs: std::collections::BTreeSet<Vec<u64>> = w
            .articles
            .values()
            .map(|a| a.user_segment_ids.clone())
            .collect();
        for want in [vec![], vec![1], vec![2], vec![3], vec![4], vec![3, 1]] {
            assert!(segs.contains(&want), "{want:?}");
        }
        assert!(w.articles.values().any(|a| a.translations[0].draft));
        let de = w
            .articles
            .values()
            .filter(|a| a.translation("de").is_some())
            .count();
        assert!((800..1_200).contains(&de), "{de} German translations");
        assert_eq!(spec.world().articles.len(), 2_000, "deterministic");
    }
}
