-- helpdex state, migration 1. SQLite is the source of truth; the tantivy index is derived.

CREATE TABLE sources (
    name                 TEXT PRIMARY KEY,
    base_url             TEXT NOT NULL,
    -- incremental export cursor (epoch seconds); only ever moves forward, together with the data
    cursor               INTEGER NOT NULL DEFAULT 0,
    segments_readable    INTEGER,            -- 1 readable, 0 forbidden, NULL unknown
    help_center_state    TEXT,
    syncs                INTEGER NOT NULL DEFAULT 0,
    last_full_sweep      INTEGER,            -- epoch seconds
    last_started_at      TEXT,
    last_finished_at     TEXT,
    last_result          TEXT,               -- 'ok' | 'error'
    last_error           TEXT,
    last_report          TEXT                -- JSON of the last SourceReport
);

CREATE TABLE user_segments (
    source    TEXT NOT NULL,
    id        INTEGER NOT NULL,
    name      TEXT NOT NULL,
    user_type TEXT NOT NULL,
    built_in  INTEGER NOT NULL,
    PRIMARY KEY (source, id)
);

CREATE TABLE sections (
    source      TEXT NOT NULL,
    id          INTEGER NOT NULL,
    name        TEXT NOT NULL,
    category_id INTEGER,
    html_url    TEXT,
    PRIMARY KEY (source, id)
);

CREATE TABLE categories (
    source   TEXT NOT NULL,
    id       INTEGER NOT NULL,
    name     TEXT NOT NULL,
    html_url TEXT,
    PRIMARY KEY (source, id)
);

CREATE TABLE articles (
    source          TEXT NOT NULL,
    article_id      INTEGER NOT NULL,
    section_id      INTEGER,
    source_locale   TEXT NOT NULL,
    segment_ids     TEXT NOT NULL,      -- JSON array of Zendesk user segment ids
    labels          TEXT NOT NULL,      -- JSON array
    visibility      TEXT NOT NULL,      -- public | signed_in | restricted | internal
    access          TEXT NOT NULL,      -- JSON array of access tokens (see model.rs)
    visibility_rule TEXT NOT NULL,      -- why, for `helpdex explain`
    updated_at      TEXT,               -- Zendesk article updated_at (max over translations)
    synced_at       TEXT NOT NULL,
    PRIMARY KEY (source, article_id)
);

CREATE TABLE translations (
    source             TEXT NOT NULL,
    article_id         INTEGER NOT NULL,
    locale             TEXT NOT NULL,
    title              TEXT NOT NULL,
    html_url           TEXT NOT NULL,
    draft              INTEGER NOT NULL,
    outdated           INTEGER NOT NULL,
    updated_at         TEXT,
    body               TEXT,            -- raw HTML as fetched; re-normalized when the normalizer changes
    normalizer_version INTEGER NOT NULL,
    content_hash       TEXT NOT NULL,   -- blake3 of the normalized content
    index_hash         TEXT NOT NULL,   -- blake3 of everything the index holds for it
    synced_at          TEXT NOT NULL,
    PRIMARY KEY (source, article_id, locale),
    FOREIGN KEY (source, article_id) REFERENCES articles (source, article_id) ON DELETE CASCADE
);

CREATE TABLE segments (
    source       TEXT NOT NULL,
    article_id   INTEGER NOT NULL,
    locale       TEXT NOT NULL,
    ordinal      INTEGER NOT NULL,
    heading_path TEXT NOT NULL,         -- JSON array
    anchor       TEXT,
    text         TEXT NOT NULL,
    hash         TEXT NOT NULL,
    PRIMARY KEY (source, article_id, locale, ordinal),
    FOREIGN KEY (source, article_id, locale)
        REFERENCES translations (source, article_id, locale) ON DELETE CASCADE
);

CREATE TABLE links (
    source        TEXT NOT NULL,
    article_id    INTEGER NOT NULL,
    locale        TEXT NOT NULL,
    target_id     INTEGER NOT NULL,
    target_locale TEXT,
    text          TEXT NOT NULL,
    FOREIGN KEY (source, article_id, locale)
        REFERENCES translations (source, article_id, locale) ON DELETE CASCADE
);
CREATE INDEX links_target ON links (source, target_id);

-- Outbox: every translation whose indexed form changed gets a row, in the same transaction as
-- the change. The index records the last applied seq in its commit payload.
CREATE TABLE changes (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_key TEXT NOT NULL
);

-- Which tantivy generation directory is live.
CREATE TABLE index_state (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    generation     TEXT NOT NULL,
    schema_version INTEGER NOT NULL
);
