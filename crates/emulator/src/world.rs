//! The emulated help center: fixture loading, the mutable article state, the emulator clock,
//! and how each object is rendered in Zendesk's JSON shapes.
//!
//! Articles are held as one record per article with its translations, because that is how
//! Zendesk stores them: every locale-specific view (the export, `/{locale}/articles`, show) is
//! derived from the record, so `updated_at` is always the maximum over translations and a
//! German edit never touches the English translation's timestamps.

use super::EmulatorError;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Who the credentials in `help_center.json` belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Guide admin (Help Center manager): everything, including `/user_segments`.
    Admin,
    /// Agent: everything except the user-segment listing.
    Agent,
    /// Signed-in end user: published content visible to signed-in users only.
    EndUser,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Agent => "agent",
            Role::EndUser => "end_user",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "agent" => Some(Role::Agent),
            "end_user" | "end-user" | "enduser" => Some(Role::EndUser),
            _ => None,
        }
    }
}

/// One accepted credential.
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    /// `email/token:API_TOKEN` Basic auth.
    ApiToken {
        email: String,
        token: String,
        role: Role,
    },
    /// `Bearer` OAuth access token.
    OAuth { token: String, role: Role },
}

/// One translation of an article.
#[derive(Debug, Clone)]
pub(crate) struct TranslationRec {
    pub id: u64,
    pub locale: String,
    pub title: Option<String>,
    pub body: Option<Body>,
    pub draft: bool,
    pub outdated: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by_id: Value,
    pub updated_by_id: Value,
}

/// A translation body: given text, or generated on demand by the synthetic help center (so a
/// 100,000-article world holds seeds, not gigabytes of HTML).
#[derive(Debug, Clone)]
pub(crate) enum Body {
    Text(String),
    Synthetic(crate::synthetic::BodySeed),
}

impl Body {
    pub(crate) fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Body::Text(s) => std::borrow::Cow::Borrowed(s),
            Body::Synthetic(seed) => std::borrow::Cow::Owned(seed.render()),
        }
    }
}

/// One article: its locale-independent fields and every translation.
#[derive(Debug, Clone)]
pub(crate) struct ArticleRec {
    pub id: u64,
    pub source_locale: String,
    pub section_id: Option<u64>,
    pub user_segment_ids: Vec<u64>,
    pub label_names: Vec<String>,
    pub position: i64,
    pub created_at: i64,
    /// Moves for changes that are not a translation edit (segments, section, archive).
    pub meta_updated_at: i64,
    /// Every other field of the fixture's article object, passed through unchanged.
    pub extra: Map<String, Value>,
    pub translations: Vec<TranslationRec>,
    pub archived: bool,
    /// Fields forced into every rendering of this article (fault injection: malformed or
    /// hostile values as recorded in the wild); `Value::Null` under [`REMOVE`] removes a field.
    pub patch: Map<String, Value>,
}

/// Marks a field a [`ArticleRec::patch`] removes from the rendered record.
pub(crate) const REMOVE: &str = "$remove";

impl ArticleRec {
    /// Max over translations (and metadata changes), as Zendesk reports it.
    pub fn updated_at(&self) -> i64 {
        self.translations
            .iter()
            .map(|t| t.updated_at)
            .fold(self.meta_updated_at, i64::max)
    }

    pub fn translation(&self, locale: &str) -> Option<&TranslationRec> {
        self.translations.iter().find(|t| t.locale == locale)
    }

    fn translation_mut(&mut self, locale: &str) -> Option<&mut TranslationRec> {
        self.translations.iter_mut().find(|t| t.locale == locale)
    }

    /// The source-locale translation; every loaded or added article has one.
    pub fn source(&self) -> Option<&TranslationRec> {
        self.translation(&self.source_locale)
    }
}

/// A help center loaded from a fixture directory (see `fixtures/README.md`), plus the emulator
/// clock. Mutated through [`super::Emulator`]'s methods while the server runs.
#[derive(Debug, Clone)]
pub struct World {
    pub(crate) brand: Map<String, Value>,
    pub(crate) default_locale: String,
    pub(crate) locales: Vec<String>,
    pub(crate) credentials: Vec<Credential>,
    pub(crate) categories: Vec<Map<String, Value>>,
    pub(crate) sections: Vec<Map<String, Value>>,
    pub(crate) user_segments: Vec<Map<String, Value>>,
    pub(crate) articles: BTreeMap<u64, ArticleRec>,
    /// Raw records served by the export as they are (malformed ones, recorded shapes), each
    /// at its `updated_at` second.
    pub(crate) raw_records: Vec<(i64, Value)>,
    /// Moves with every change of what listings contain or how they sort (cache key).
    pub(crate) version: u64,
    /// Largest translation id in use; new translations count up from it.
    last_translation_id: u64,
    clock: Clock,
}

/// The emulator clock: wall time by default, fixed once [`World::set_clock`] is called; every
/// mutation gets a strictly later second than the one before, so an edit is always visible to
/// an export whose inclusive `start_time` is the previous `end_time`.
#[derive(Debug, Clone)]
struct Clock {
    fixed: Option<i64>,
    last: i64,
}

impl Clock {
    fn tick(&mut self) -> i64 {
        let t = match self.fixed {
            Some(f) => {
                self.fixed = Some(f + 1);
                f
            }
            None => chrono::Utc::now().timestamp().max(self.last + 1),
        };
        self.last = t;
        t
    }
}

/// Formats epoch seconds as Zendesk does: `2024-06-18T14:02:37Z`.
pub(crate) fn fmt_ts(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

fn parse_ts(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp())
}

/// The `html_url` slug (`zendesk-api.md` §3.3): each run of non-alphanumeric characters becomes
/// one `-`, case is kept, and so is a leading or trailing `-`.
pub fn slug(title: &str) -> String {
    let mut out = String::with_capacity(title.len());
    let mut in_run = false;
    for c in title.chars() {
        if c.is_alphanumeric() {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    out
}

/// `{id}-{Slug}`, or just `{id}` for an empty title.
fn id_with_slug(id: u64, title: Option<&str>) -> String {
    match title.map(slug).filter(|s| !s.is_empty()) {
        Some(s) => format!("{id}-{s}"),
        None => id.to_string(),
    }
}

/// Base URLs used when rendering: `api` for `url`/`next_page`/links, `public` for `html_url`.
pub(crate) struct Urls<'a> {
    pub api: &'a str,
    pub public: &'a str,
}

/// Where a fixture help center's files come from: a directory, or the copy embedded in the
/// binary (so `helpdex demo` runs from a copied binary anywhere).
#[derive(Clone, Copy)]
enum Files<'a> {
    Dir(&'a Path),
    Embedded(&'a include_dir::Dir<'static>),
}

/// The fixture help center of the repository (`fixtures/helpcenter/`), embedded at build time.
static DEMO: include_dir::Dir<'static> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/../../fixtures/helpcenter");

impl Files<'_> {
    /// The path error messages name.
    fn path(&self, rel: &str) -> PathBuf {
        match self {
            Files::Dir(d) => d.join(rel),
            Files::Embedded(_) => Path::new("(embedded fixtures)").join(rel),
        }
    }

    fn exists(&self, rel: &str) -> bool {
        match self {
            Files::Dir(d) => d.join(rel).exists(),
            Files::Embedded(e) => e.get_file(rel).is_some(),
        }
    }

    fn read(&self, rel: &str) -> Result<String, EmulatorError> {
        let path = self.path(rel);
        match self {
            Files::Dir(_) => std::fs::read_to_string(&path)
                .map_err(|source| EmulatorError::Read { path, source }),
            Files::Embedded(e) => e
                .get_file(rel)
                .and_then(|f| f.contents_utf8())
                .map(str::to_string)
                .ok_or_else(|| EmulatorError::Read {
                    path,
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "not embedded"),
                }),
        }
    }

    /// The article files (`articles/*.json`), sorted.
    fn articles(&self) -> Result<Vec<String>, EmulatorError> {
        let mut out: Vec<String> = match self {
            Files::Dir(d) => {
                let art_dir = d.join("articles");
                std::fs::read_dir(&art_dir)
                    .map_err(|source| EmulatorError::Read {
                        path: art_dir.clone(),
                        source,
                    })?
                    .filter_map(Result::ok)
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| n.ends_with(".json"))
                    .map(|n| format!("articles/{n}"))
                    .collect()
            }
            Files::Embedded(e) => e
                .get_dir("articles")
                .into_iter()
                .flat_map(|d| d.files())
                .filter_map(|f| f.path().to_str().map(str::to_string))
                .filter(|n| n.ends_with(".json"))
                .collect(),
        };
        out.sort();
        Ok(out)
    }

    fn json(&self, rel: &str) -> Result<Value, EmulatorError> {
        let text = self.read(rel)?;
        serde_json::from_str(&text).map_err(|source| EmulatorError::Parse {
            path: self.path(rel),
            source,
        })
    }
}

fn invalid(path: &Path, what: impl Into<String>) -> EmulatorError {
    EmulatorError::Invalid {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// `{key: [objects with a numeric id]}` from one of the top-level list files.
fn object_list(
    files: Files<'_>,
    rel: &str,
    key: &str,
) -> Result<Vec<Map<String, Value>>, EmulatorError> {
    let v = files.json(rel)?;
    let path = &files.path(rel);
    let items = v
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| invalid(path, format!("expected {{\"{key}\": [...]}}")))?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let obj = item
            .as_object()
            .ok_or_else(|| invalid(path, format!("{key}[{i}] is not an object")))?;
        if obj.get("id").and_then(Value::as_u64).is_none() {
            return Err(invalid(path, format!("{key}[{i}] has no numeric \"id\"")));
        }
        out.push(obj.clone());
    }
    Ok(out)
}

fn timestamp_field(
    obj: &Map<String, Value>,
    field: &str,
    fallback: Option<i64>,
    path: &Path,
    what: &str,
) -> Result<i64, EmulatorError> {
    match obj.get(field) {
        Some(Value::String(s)) => parse_ts(s).ok_or_else(|| {
            invalid(
                path,
                format!("{what}.{field} is not an ISO-8601 timestamp: {s:?}"),
            )
        }),
        None | Some(Value::Null) => {
            fallback.ok_or_else(|| invalid(path, format!("{what}.{field} is missing")))
        }
        Some(other) => Err(invalid(
            path,
            format!("{what}.{field} must be a string, got {other}"),
        )),
    }
}

fn opt_string(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_string)
}

/// Parses one `articles/<id>.json` document. `default_locale` fills a missing source locale.
fn parse_article(
    doc: &Value,
    path: &Path,
    default_locale: &str,
) -> Result<ArticleRec, EmulatorError> {
    let a = doc
        .get("article")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid(path, "expected {\"article\": {...}}"))?;
    let id = a
        .get("id")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid(path, "article.id must be a positive integer"))?;
    let source_locale = opt_string(a.get("source_locale"))
        .or_else(|| opt_string(a.get("locale")))
        .unwrap_or_else(|| default_locale.to_string());
    let created_at = timestamp_field(a, "created_at", None, path, "article")?;
    let article_updated = timestamp_field(a, "updated_at", Some(created_at), path, "article")?;
    let mut segs: Vec<u64> = match a.get("user_segment_ids") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(v)) => v
            .iter()
            .map(|x| {
                x.as_u64()
                    .ok_or_else(|| invalid(path, "article.user_segment_ids must hold integers"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid(path, "article.user_segment_ids must be an array")),
    };
    if let Some(s) = a.get("user_segment_id").and_then(Value::as_u64)
        && !segs.contains(&s)
    {
        segs.insert(0, s);
    }
    let label_names = a
        .get("label_names")
        .and_then(Value::as_array)
        .map(|v| {
            v.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut translations = Vec::new();
    match doc.get("translations") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, t) in items.iter().enumerate() {
                let what = format!("translations[{i}]");
                let t = t
                    .as_object()
                    .ok_or_else(|| invalid(path, format!("{what} is not an object")))?;
                let locale = opt_string(t.get("locale"))
                    .ok_or_else(|| invalid(path, format!("{what}.locale is missing")))?;
                if translations
                    .iter()
                    .any(|x: &TranslationRec| x.locale == locale)
                {
                    return Err(invalid(
                        path,
                        format!("two translations for locale {locale:?}"),
                    ));
                }
                let t_created = timestamp_field(t, "created_at", Some(created_at), path, &what)?;
                translations.push(TranslationRec {
                    id: t.get("id").and_then(Value::as_u64).unwrap_or(0),
                    title: opt_string(t.get("title")),
                    body: opt_string(t.get("body")).map(Body::Text),
                    draft: t.get("draft").and_then(Value::as_bool).unwrap_or(false),
                    outdated: t.get("outdated").and_then(Value::as_bool).unwrap_or(false),
                    created_at: t_created,
                    updated_at: timestamp_field(t, "updated_at", Some(t_created), path, &what)?,
                    created_by_id: t.get("created_by_id").cloned().unwrap_or(Value::Null),
                    updated_by_id: t.get("updated_by_id").cloned().unwrap_or(Value::Null),
                    locale,
                });
            }
        }
        Some(_) => return Err(invalid(path, "translations must be an array")),
    }
    if !translations.iter().any(|t| t.locale == source_locale) {
        // The article object is the source-locale translation.
        translations.insert(
            0,
            TranslationRec {
                id: 0,
                locale: source_locale.clone(),
                title: opt_string(a.get("title")).or_else(|| opt_string(a.get("name"))),
                body: opt_string(a.get("body")).map(Body::Text),
                draft: a.get("draft").and_then(Value::as_bool).unwrap_or(false),
                outdated: false,
                created_at,
                updated_at: timestamp_field(
                    a,
                    "edited_at",
                    Some(article_updated),
                    path,
                    "article",
                )?,
                created_by_id: a.get("author_id").cloned().unwrap_or(Value::Null),
                updated_by_id: a.get("author_id").cloned().unwrap_or(Value::Null),
            },
        );
    }
    let archived = match doc.get("archived") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid(path, "archived must be a boolean")),
    };
    let mut extra = a.clone();
    for derived in [
        "id",
        "url",
        "html_url",
        "title",
        "name",
        "body",
        "locale",
        "source_locale",
        "draft",
        "outdated",
        "outdated_locales",
        "created_at",
        "updated_at",
        "edited_at",
        "section_id",
        "user_segment_id",
        "user_segment_ids",
        "label_names",
        "position",
        "translations",
    ] {
        extra.remove(derived);
    }
    Ok(ArticleRec {
        id,
        source_locale,
        section_id: a.get("section_id").and_then(Value::as_u64),
        user_segment_ids: segs,
        label_names,
        position: a.get("position").and_then(Value::as_i64).unwrap_or(0),
        created_at,
        meta_updated_at: i64::MIN,
        extra,
        translations,
        archived,
        patch: Map::new(),
    })
}

impl World {
    /// Loads a fixture help center directory (layout in `fixtures/README.md`). Errors name
    /// the file and what is wrong with it.
    pub fn load(dir: &Path) -> Result<World, EmulatorError> {
        Self::load_from(Files::Dir(dir))
    }

    /// The repository's fixture help center (`fixtures/helpcenter/`), embedded in the binary.
    pub fn demo() -> World {
        Self::load_from(Files::Embedded(&DEMO)).expect("the embedded fixtures load (tested)")
    }

    fn load_from(files: Files<'_>) -> Result<World, EmulatorError> {
        let hc_path = files.path("help_center.json");
        let hc = files.json("help_center.json")?;
        let brand = hc
            .get("brand")
            .and_then(Value::as_object)
            .filter(|b| b.get("id").and_then(Value::as_u64).is_some())
            .ok_or_else(|| invalid(&hc_path, "expected \"brand\": {\"id\": <integer>, ...}"))?
            .clone();
        let default_locale = opt_string(hc.get("default_locale"))
            .ok_or_else(|| invalid(&hc_path, "\"default_locale\" is missing"))?;
        let mut locales: Vec<String> = hc
            .get("locales")
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if !locales.contains(&default_locale) {
            locales.insert(0, default_locale.clone());
        }
        let mut credentials = Vec::new();
        for (i, c) in hc
            .get("credentials")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let role_name = c.get("role").and_then(Value::as_str).unwrap_or("admin");
            let role = Role::parse(role_name).ok_or_else(|| {
                invalid(
                    &hc_path,
                    format!("credentials[{i}].role {role_name:?} is not admin, agent or end_user"),
                )
            })?;
            let cred = match (
                opt_string(c.get("email")),
                opt_string(c.get("api_token")),
                opt_string(c.get("oauth_token")),
            ) {
                (Some(email), Some(token), _) => Credential::ApiToken { email, token, role },
                (_, _, Some(token)) => Credential::OAuth { token, role },
                _ => {
                    return Err(invalid(
                        &hc_path,
                        format!("credentials[{i}] needs email + api_token, or oauth_token"),
                    ));
                }
            };
            credentials.push(cred);
        }
        let categories = object_list(files, "categories.json", "categories")?;
        let sections = object_list(files, "sections.json", "sections")?;
        let user_segments = if files.exists("user_segments.json") {
            object_list(files, "user_segments.json", "user_segments")?
        } else {
            Vec::new()
        };

        let mut articles = BTreeMap::new();
        for rel in files.articles()? {
            let p = files.path(&rel);
            let rec = parse_article(&files.json(&rel)?, &p, &default_locale)?;
            if articles.contains_key(&rec.id) {
                return Err(invalid(
                    &p,
                    format!("article id {} appears in another file too", rec.id),
                ));
            }
            articles.insert(rec.id, rec);
        }
        Ok(World::assemble(
            brand,
            default_locale,
            locales,
            credentials,
            categories,
            sections,
            user_segments,
            articles,
        ))
    }

    /// A world from its parts: translation ids assigned, clock after the newest change.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn assemble(
        brand: Map<String, Value>,
        default_locale: String,
        locales: Vec<String>,
        credentials: Vec<Credential>,
        categories: Vec<Map<String, Value>>,
        sections: Vec<Map<String, Value>>,
        user_segments: Vec<Map<String, Value>>,
        articles: BTreeMap<u64, ArticleRec>,
    ) -> World {
        let mut world = World {
            brand,
            default_locale,
            locales,
            credentials,
            categories,
            sections,
            user_segments,
            articles,
            raw_records: Vec::new(),
            version: 0,
            last_translation_id: 0,
            clock: Clock {
                fixed: None,
                last: 0,
            },
        };
        world.assign_translation_ids();
        world.clock.last = world
            .articles
            .values()
            .map(ArticleRec::updated_at)
            .max()
            .unwrap_or(0);
        world
    }

    /// The emulator clock's latest second (the newest change stamped so far).
    pub(crate) fn last_tick(&self) -> i64 {
        self.clock.last
    }

    /// Translations of live articles.
    pub fn translation_count(&self) -> usize {
        self.articles
            .values()
            .filter(|a| !a.archived)
            .map(|a| a.translations.len())
            .sum()
    }

    /// Every live (not archived) article id.
    pub fn live_ids(&self) -> Vec<u64> {
        self.articles
            .values()
            .filter(|a| !a.archived)
            .map(|a| a.id)
            .collect()
    }

    /// Gives translations without an id one above the largest id in use.
    fn assign_translation_ids(&mut self) {
        self.last_translation_id = self
            .articles
            .values()
            .flat_map(|a| a.translations.iter().map(|t| t.id))
            .max()
            .unwrap_or(0);
        let mut next = self.last_translation_id;
        for a in self.articles.values_mut() {
            for t in a.translations.iter_mut().filter(|t| t.id == 0) {
                next += 1;
                t.id = next;
            }
        }
        self.last_translation_id = next;
    }

    fn next_translation_id(&mut self) -> u64 {
        self.last_translation_id += 1;
        self.last_translation_id
    }

    /// Live (not archived) article by id.
    pub(crate) fn live(&self, id: u64) -> Option<&ArticleRec> {
        self.articles.get(&id).filter(|a| !a.archived)
    }

    /// Number of articles, archived ones included.
    pub fn article_count(&self) -> usize {
        self.articles.len()
    }

    /// The segment object with this id.
    pub(crate) fn segment(&self, id: u64) -> Option<&Map<String, Value>> {
        self.user_segments
            .iter()
            .find(|s| s.get("id").and_then(Value::as_u64) == Some(id))
    }

    // ---- mutations: each stamps a new second from the clock ----

    pub(crate) fn set_clock(&mut self, unix_secs: i64) {
        self.clock.fixed = Some(unix_secs);
    }

    /// Edits one translation (created from the source's title when missing) and stamps it.
    fn edit_translation(&mut self, id: u64, locale: &str, f: impl FnOnce(&mut TranslationRec)) {
        let now = self.clock.tick();
        self.version += 1;
        let needs_new = self
            .articles
            .get(&id)
            .is_some_and(|a| a.translation(locale).is_none());
        let next_id = if needs_new {
            self.next_translation_id()
        } else {
            0
        };
        let Some(a) = self.articles.get_mut(&id) else {
            tracing::warn!(article_id = id, "emulator: no such article to edit");
            return;
        };
        if needs_new {
            let title = a.source().and_then(|s| s.title.clone());
            a.translations.push(TranslationRec {
                id: next_id,
                locale: locale.to_string(),
                title,
                body: None,
                draft: false,
                outdated: false,
                created_at: now,
                updated_at: now,
                created_by_id: Value::Null,
                updated_by_id: Value::Null,
            });
        }
        if let Some(t) = a.translation_mut(locale) {
            f(t);
            t.updated_at = now;
        }
    }

    pub(crate) fn edit_body(&mut self, id: u64, locale: &str, body: &str) {
        self.edit_translation(id, locale, |t| t.body = Some(Body::Text(body.to_string())));
    }

    /// A new revision of a synthetic body (or, for a given text, an appended sentence): the
    /// content changes and the translation's `updated_at` moves.
    pub(crate) fn revise(&mut self, id: u64, locale: &str) {
        self.edit_translation(id, locale, |t| {
            t.body = Some(match t.body.take() {
                Some(Body::Synthetic(mut seed)) => {
                    seed.revision += 1;
                    Body::Synthetic(seed)
                }
                Some(Body::Text(s)) => Body::Text(format!("{s}<p>Revised.</p>")),
                None => Body::Text("<p>Revised.</p>".into()),
            })
        });
    }

    /// Deletes one (non-source) translation; no timestamp moves.
    pub(crate) fn delete_translation(&mut self, id: u64, locale: &str) {
        self.version += 1;
        match self.articles.get_mut(&id) {
            Some(a) if a.source_locale != locale => a.translations.retain(|t| t.locale != locale),
            _ => tracing::warn!(
                article_id = id,
                locale,
                "emulator: no such translation to delete"
            ),
        }
    }

    /// Forces fields into every rendering of an article (`"$remove"` removes one).
    pub(crate) fn patch(&mut self, id: u64, fields: Map<String, Value>) {
        self.version += 1;
        match self.articles.get_mut(&id) {
            Some(a) => a.patch.extend(fields),
            None => tracing::warn!(article_id = id, "emulator: no such article to patch"),
        }
    }

    /// Adds a raw record to the export at second `at`.
    pub(crate) fn add_raw_record(&mut self, at: i64, record: Value) {
        self.version += 1;
        self.raw_records.push((at, record));
    }

    pub(crate) fn edit_title(&mut self, id: u64, locale: &str, title: &str) {
        self.edit_translation(id, locale, |t| t.title = Some(title.to_string()));
    }

    pub(crate) fn set_draft(&mut self, id: u64, locale: &str, draft: bool) {
        if self
            .articles
            .get(&id)
            .and_then(|a| a.translation(locale))
            .is_none()
        {
            tracing::warn!(
                article_id = id,
                locale,
                "emulator: no such translation to (un)publish"
            );
            return;
        }
        self.edit_translation(id, locale, |t| t.draft = draft);
    }

    /// A change of the article's own fields: `updated_at` moves, `edited_at` does not.
    fn touch_meta(&mut self, id: u64, f: impl FnOnce(&mut ArticleRec)) {
        let now = self.clock.tick();
        self.version += 1;
        match self.articles.get_mut(&id) {
            Some(a) => {
                f(a);
                a.meta_updated_at = now;
            }
            None => tracing::warn!(article_id = id, "emulator: no such article"),
        }
    }

    pub(crate) fn archive(&mut self, id: u64) {
        self.touch_meta(id, |a| a.archived = true);
    }

    pub(crate) fn delete(&mut self, id: u64) {
        self.clock.tick();
        self.version += 1;
        self.articles.remove(&id);
    }

    pub(crate) fn set_segments(&mut self, id: u64, segment_ids: Vec<u64>) {
        self.touch_meta(id, |a| a.user_segment_ids = segment_ids);
    }

    pub(crate) fn move_section(&mut self, id: u64, section_id: u64) {
        self.touch_meta(id, |a| a.section_id = Some(section_id));
    }

    /// Adds (or replaces) an article given in the `articles/<id>.json` shape; it is created
    /// now, so every translation is stamped with a new second.
    pub(crate) fn add_article(&mut self, doc: &Value) -> Result<(), EmulatorError> {
        let mut rec = parse_article(doc, Path::new("<add_article>"), &self.default_locale)?;
        let now = self.clock.tick();
        self.version += 1;
        rec.created_at = now;
        for t in &mut rec.translations {
            t.created_at = now;
            t.updated_at = now;
            if t.id == 0 {
                t.id = self.next_translation_id();
            } else {
                self.last_translation_id = self.last_translation_id.max(t.id);
            }
        }
        self.articles.insert(rec.id, rec);
        Ok(())
    }

    /// Gives these articles' source translations one identical new second (a bulk import).
    pub(crate) fn touch_many_same_second(&mut self, ids: &[u64]) {
        let now = self.clock.tick();
        self.version += 1;
        for id in ids {
            if let Some(a) = self.articles.get_mut(id) {
                let src = a.source_locale.clone();
                if let Some(t) = a.translation_mut(&src) {
                    t.updated_at = now;
                }
            }
        }
    }

    /// Changes a body without moving any timestamp (Zendesk's bulk-import quirk).
    pub(crate) fn bulk_edit_without_timestamp(&mut self, id: u64, locale: &str, body: &str) {
        match self
            .articles
            .get_mut(&id)
            .and_then(|a| a.translation_mut(locale))
        {
            Some(t) => t.body = Some(Body::Text(body.to_string())),
            None => tracing::warn!(
                article_id = id,
                locale,
                "emulator: no such translation to edit"
            ),
        }
    }

    // ---- rendering ----

    /// The article as shown in `locale` (the translation `t`), optionally embedding every
    /// translation (`include=translations`).
    pub(crate) fn article_json(
        &self,
        a: &ArticleRec,
        t: &TranslationRec,
        urls: &Urls,
        embed: Option<Vec<Value>>,
    ) -> Value {
        let mut o = a.extra.clone();
        let title = t.title.clone();
        let outdated_locales: Vec<&str> = a
            .translations
            .iter()
            .filter(|x| x.outdated)
            .map(|x| x.locale.as_str())
            .collect();
        let fields = json!({
            "id": a.id,
            "url": format!("{}/api/v2/help_center/{}/articles/{}.json", urls.api, t.locale, a.id),
            "html_url": format!("{}/hc/{}/articles/{}", urls.public, t.locale, id_with_slug(a.id, title.as_deref())),
            "draft": t.draft,
            "position": a.position,
            "section_id": a.section_id,
            "created_at": fmt_ts(a.created_at),
            "updated_at": fmt_ts(a.updated_at()),
            "edited_at": fmt_ts(t.updated_at),
            "name": title,
            "title": title,
            "source_locale": a.source_locale,
            "locale": t.locale,
            "outdated": false,
            "outdated_locales": outdated_locales,
            "user_segment_id": a.user_segment_ids.first(),
            "user_segment_ids": a.user_segment_ids,
            "label_names": a.label_names,
            "body": t.body.as_ref().map(|b| b.text()),
        });
        if let Value::Object(f) = fields {
            o.extend(f);
        }
        if let Some(ts) = embed {
            o.insert("translations".into(), Value::Array(ts));
        }
        for (k, v) in &a.patch {
            if v.as_str() == Some(REMOVE) {
                o.remove(k);
            } else {
                o.insert(k.clone(), v.clone());
            }
        }
        Value::Object(o)
    }

    pub(crate) fn translation_json(
        &self,
        a: &ArticleRec,
        t: &TranslationRec,
        urls: &Urls,
    ) -> Value {
        // Recorded: translations carry `html_url` without the slug, articles with it.
        json!({
            "id": t.id,
            "url": format!("{}/api/v2/help_center/articles/{}/translations/{}", urls.api, a.id, t.locale),
            "html_url": format!("{}/hc/{}/articles/{}", urls.public, t.locale, a.id),
            "source_id": a.id,
            "source_type": "Article",
            "locale": t.locale,
            "title": t.title,
            "body": t.body.as_ref().map(|b| b.text()),
            "outdated": t.outdated,
            "draft": t.draft,
            "hidden": false,
            "created_at": fmt_ts(t.created_at),
            "updated_at": fmt_ts(t.updated_at),
            "created_by_id": t.created_by_id,
            "updated_by_id": t.updated_by_id,
        })
    }

    /// A section or category (`kind` is `sections` or `categories`) shown in `locale`.
    pub(crate) fn container_json(
        &self,
        kind: &str,
        obj: &Map<String, Value>,
        locale: &str,
        urls: &Urls,
    ) -> Value {
        let mut o = obj.clone();
        let id = obj.get("id").and_then(Value::as_u64).unwrap_or(0);
        let name = obj.get("name").and_then(Value::as_str);
        o.insert(
            "url".into(),
            json!(format!(
                "{}/api/v2/help_center/{locale}/{kind}/{id}.json",
                urls.api
            )),
        );
        o.insert(
            "html_url".into(),
            json!(format!(
                "{}/hc/{locale}/{kind}/{}",
                urls.public,
                id_with_slug(id, name)
            )),
        );
        o.insert("locale".into(), json!(locale));
        o.entry("source_locale")
            .or_insert_with(|| json!(self.default_locale));
        Value::Object(o)
    }

    pub(crate) fn brand_json(&self, urls: &Urls) -> Value {
        let mut o = self.brand.clone();
        let id = o.get("id").and_then(Value::as_u64).unwrap_or(0);
        o.insert(
            "url".into(),
            json!(format!("{}/api/v2/brands/{id}.json", urls.api)),
        );
        o.insert("brand_url".into(), json!(urls.public));
        o.entry("is_deleted").or_insert(json!(false));
        Value::Object(o)
    }

    /// `https://{host_mapping}` when the brand has a mapped host.
    pub(crate) fn mapped_host(&self) -> Option<String> {
        self.brand
            .get("host_mapping")
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
            .map(|h| format!("https://{}", h.trim_end_matches('/')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_follows_recorded_examples() {
        assert_eq!(
            slug("Sample article: Stellar Skyonomy refund policies"),
            "Sample-article-Stellar-Skyonomy-refund-policies"
        );
        assert_eq!(
            slug("How can agents leverage knowledge to help customers?"),
            "How-can-agents-leverage-knowledge-to-help-customers-"
        );
        assert_eq!(
            slug("Test Category to ensure CBP"),
            "Test-Category-to-ensure-CBP"
        );
    }

    #[test]
    fn slug_collapses_runs_and_keeps_unicode_letters() {
        assert_eq!(slug("Billing & plans"), "Billing-plans");
        assert_eq!(slug("[Beta]  Über -- Zahlungen"), "-Beta-Über-Zahlungen");
        assert_eq!(slug("2FA"), "2FA");
        assert_eq!(slug(""), "");
        assert_eq!(id_with_slug(7, Some("")), "7");
        assert_eq!(id_with_slug(7, None), "7");
        assert_eq!(id_with_slug(7, Some("Hi there")), "7-Hi-there");
    }

    #[test]
    fn timestamps_round_trip() {
        let t = parse_ts("2024-06-18T14:02:37Z").unwrap();
        assert_eq!(fmt_ts(t), "2024-06-18T14:02:37Z");
        assert_eq!(parse_ts("yesterday"), None);
    }

    #[test]
    fn clock_is_strictly_increasing_and_can_be_fixed() {
        let mut c = Clock {
            fixed: None,
            last: i64::MAX / 2,
        };
        let a = c.tick();
        assert_eq!(c.tick(), a + 1, "wall time never repeats a second");
        c.fixed = Some(1_000);
        assert_eq!((c.tick(), c.tick()), (1_000, 1_001));
    }

    fn doc() -> Value {
        json!({
            "article": {"id": 5, "source_locale": "en-us", "title": "T", "body": "<p>x</p>",
                        "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-03T00:00:00Z",
                        "user_segment_id": 9, "user_segment_ids": [], "author_id": 77},
            "translations": [
                {"locale": "de", "title": "T de", "body": "<p>d</p>", "updated_at": "2024-01-03T00:00:00Z"}
            ]
        })
    }

    #[test]
    fn article_without_source_translation_gets_one_from_the_article_object() {
        let a = parse_article(&doc(), Path::new("x.json"), "en-us").unwrap();
        assert_eq!(a.translations.len(), 2);
        let src = a.source().unwrap();
        assert_eq!(src.title.as_deref(), Some("T"));
        assert_eq!(
            a.user_segment_ids,
            vec![9],
            "legacy single-segment field is merged"
        );
        assert_eq!(fmt_ts(a.updated_at()), "2024-01-03T00:00:00Z");
        assert_eq!(a.extra.get("author_id"), Some(&json!(77)));
    }

    #[test]
    fn bad_article_files_are_named_with_the_problem() {
        let mut d = doc();
        d["article"]["created_at"] = json!("last tuesday");
        let e = parse_article(&d, Path::new("articles/5.json"), "en-us")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("articles/5.json") && e.contains("created_at"),
            "{e}"
        );
        let e = parse_article(
            &json!({"article": {"title": "x"}}),
            Path::new("a.json"),
            "en-us",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("article.id"), "{e}");
    }
}
