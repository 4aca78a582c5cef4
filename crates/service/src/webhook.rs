//! Zendesk webhooks: signature verification and article events.
//!
//! Zendesk signs each delivery with `X-Zendesk-Webhook-Signature` =
//! `base64(HMAC-SHA256(secret, timestamp + body))`, where `timestamp` is the exact value of
//! `X-Zendesk-Webhook-Signature-Timestamp` (ISO-8601, e.g. `2023-04-04T22:46:48Z`; unix
//! seconds are accepted too). A delivery is only a hint to sync one article sooner: webhooks
//! can be lost, duplicated or reordered, so the scheduled sync stays the source of truth.
//!
//! Errors never contain the secret or the signature.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;
use std::time::Duration;
use thiserror::Error;

/// How far a signature timestamp may be from now by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-zendesk-webhook-signature";

/// Header carrying the signed timestamp.
pub const TIMESTAMP_HEADER: &str = "x-zendesk-webhook-signature-timestamp";

/// Prefix of Zendesk event types.
const EVENT_PREFIX: &str = "zen:event-type:";

type HmacSha256 = Hmac<Sha256>;

/// A delivery that is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WebhookError {
    /// The timestamp header is neither ISO-8601 nor unix seconds.
    #[error("webhook timestamp is neither ISO-8601 nor unix seconds")]
    BadTimestamp,
    /// The signature header is not base64.
    #[error("webhook signature is not base64")]
    MalformedSignature,
    /// The signature does not match the body (wrong secret or altered body).
    #[error("webhook signature does not match")]
    SignatureMismatch,
    /// The timestamp is older than the tolerance (a replay, or a very late delivery).
    #[error("webhook timestamp is {age_secs} s old (tolerance {tolerance_secs} s)")]
    Stale {
        /// Age of the timestamp.
        age_secs: i64,
        /// Allowed age.
        tolerance_secs: u64,
    },
    /// The timestamp is further in the future than the tolerance.
    #[error("webhook timestamp is {ahead_secs} s in the future (tolerance {tolerance_secs} s)")]
    Future {
        /// How far ahead the timestamp is.
        ahead_secs: i64,
        /// Allowed skew.
        tolerance_secs: u64,
    },
    /// The body is not the JSON of a Zendesk event.
    #[error("webhook body is not a zendesk event: {0}")]
    Malformed(String),
    /// A well-formed event that is not about an article; callers usually acknowledge and ignore it.
    #[error("webhook event type '{0}' is not an article event")]
    UnsupportedEvent(String),
}

impl WebhookError {
    /// Whether the delivery failed authentication (answer 401) rather than being unusable (400).
    pub fn is_unauthorized(&self) -> bool {
        matches!(
            self,
            WebhookError::BadTimestamp
                | WebhookError::MalformedSignature
                | WebhookError::SignatureMismatch
                | WebhookError::Stale { .. }
                | WebhookError::Future { .. }
        )
    }
}

/// An article event: "sync this article now".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookEvent {
    /// Event type without the `zen:event-type:` prefix, e.g. `article.published`.
    pub event_type: String,
    /// The article.
    pub article_id: u64,
    /// The brand (help center) of the article, when given.
    pub brand_id: Option<u64>,
    /// Zendesk's id of the event (deliveries may repeat it).
    pub event_id: Option<String>,
    /// Locale named by the event (published/unpublished events), when given.
    pub locale: Option<String>,
    /// When the event happened, as sent.
    pub time: Option<String>,
}

/// Checks a delivery's signature and the freshness of its timestamp.
///
/// `timestamp` and `signature_b64` are the raw header values; `body` the raw request body.
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    body: &[u8],
    signature_b64: &str,
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<(), WebhookError> {
    let signed_at = parse_timestamp(timestamp).ok_or(WebhookError::BadTimestamp)?;
    let signature = STANDARD
        .decode(signature_b64.trim())
        .map_err(|_| WebhookError::MalformedSignature)?;
    // verify_slice compares in constant time.
    mac(secret, timestamp, body)
        .verify_slice(&signature)
        .map_err(|_| WebhookError::SignatureMismatch)?;
    let tolerance_secs = tolerance.as_secs();
    let age = (now - signed_at).num_seconds();
    let limit = i64::try_from(tolerance_secs).unwrap_or(i64::MAX);
    if age > limit {
        return Err(WebhookError::Stale {
            age_secs: age,
            tolerance_secs,
        });
    }
    if -age > limit {
        return Err(WebhookError::Future {
            ahead_secs: -age,
            tolerance_secs,
        });
    }
    Ok(())
}

/// The signature Zendesk would send for `timestamp` and `body`: for tests and tools
/// (e.g. replaying a delivery with curl), not needed to serve webhooks.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    STANDARD.encode(mac(secret, timestamp, body).finalize().into_bytes())
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac =
        <HmacSha256 as Mac>::new_from_slice(secret).expect("hmac accepts keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(body);
    mac
}

/// ISO-8601 (RFC 3339) or unix seconds.
fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<i64>()
            .ok()
            .and_then(|secs| DateTime::from_timestamp(secs, 0));
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Parses a Zendesk event body; every `article.*` event becomes "sync this article".
pub fn parse(body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    let ty = v
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| WebhookError::Malformed("no event type".into()))?;
    let short = ty.strip_prefix(EVENT_PREFIX).unwrap_or(ty);
    if !short.starts_with("article.") {
        return Err(WebhookError::UnsupportedEvent(
            ty.chars().take(100).collect(),
        ));
    }
    let detail = v.get("detail");
    let article_id = detail
        .and_then(|d| d.get("id"))
        .and_then(as_id)
        .or_else(|| {
            v.get("subject")
                .and_then(Value::as_str)
                .and_then(|s| s.strip_prefix("zen:article:"))
                .and_then(|id| id.parse().ok())
        })
        .ok_or_else(|| WebhookError::Malformed("no article id in detail.id or subject".into()))?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    Ok(WebhookEvent {
        event_type: short.to_string(),
        article_id,
        brand_id: detail.and_then(|d| d.get("brand_id")).and_then(as_id),
        event_id: text(v.get("id")),
        locale: text(v.get("event").and_then(|e| e.get("locale"))),
        time: text(v.get("time")),
    })
}

/// Remembers the deliveries accepted within the tolerance window, so a delivery replayed (or
/// retried by Zendesk) inside that window is acknowledged without syncing again. Outside the
/// window [`verify`] refuses it as stale, so nothing older needs remembering.
///
/// A delivery is known by its event id, or by its signature when it has none (a replay carries
/// the same signature). At most `capacity` entries are kept; when full, the oldest go first.
#[derive(Debug)]
pub struct ReplayGuard {
    window: Duration,
    capacity: usize,
    seen: std::sync::Mutex<std::collections::VecDeque<(DateTime<Utc>, String)>>,
}

impl ReplayGuard {
    /// A guard remembering deliveries for `window` (the webhook tolerance, both ways).
    pub fn new(window: Duration, capacity: usize) -> ReplayGuard {
        ReplayGuard {
            window,
            capacity: capacity.max(1),
            seen: Default::default(),
        }
    }

    /// Records a delivery; false when the same one was already accepted within the window.
    pub fn first_time(&self, key: &str, now: DateTime<Utc>) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        // Signed timestamps may be up to `window` in the future or past: keep twice that.
        let keep = chrono::Duration::from_std(self.window * 2).unwrap_or(chrono::Duration::MAX);
        while seen.front().is_some_and(|(t, _)| now - *t > keep) {
            seen.pop_front();
        }
        if seen.iter().any(|(_, k)| k == key) {
            return false;
        }
        if seen.len() >= self.capacity {
            seen.pop_front();
        }
        seen.push_back((now, key.to_string()));
        true
    }
}

/// The key a delivery is deduplicated by: its event id, else its signature.
pub fn delivery_key(event: &WebhookEvent, signature: &str) -> String {
    match &event.event_id {
        Some(id) if !id.trim().is_empty() => format!("id:{}", id.trim()),
        _ => format!("sig:{}", signature.trim()),
    }
}

/// Zendesk sends ids as strings; accept numbers too.
fn as_id(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_within_the_window_are_recognised() {
        let g = ReplayGuard::new(Duration::from_secs(300), 3);
        let t0 = Utc::now();
        assert!(g.first_time("id:a", t0));
        assert!(!g.first_time("id:a", t0 + chrono::Duration::seconds(299)));
        assert!(g.first_time("id:b", t0));
        // Forgotten only once no signature of that time could still be accepted.
        assert!(!g.first_time("id:a", t0 + chrono::Duration::seconds(600)));
        assert!(g.first_time("id:a", t0 + chrono::Duration::seconds(601)));
        // Bounded: the oldest entry goes first.
        let g = ReplayGuard::new(Duration::from_secs(300), 2);
        assert!(g.first_time("1", t0));
        assert!(g.first_time("2", t0));
        assert!(g.first_time("3", t0));
        assert!(g.first_time("1", t0), "evicted when the guard was full");
    }

    #[test]
    fn deliveries_without_an_id_are_known_by_signature() {
        let ev = |id: Option<&str>| WebhookEvent {
            event_type: "article.published".into(),
            article_id: 1,
            brand_id: None,
            event_id: id.map(str::to_string),
            locale: None,
            time: None,
        };
        assert_eq!(delivery_key(&ev(Some("E1")), "sig"), "id:E1");
        assert_eq!(delivery_key(&ev(None), " sig "), "sig:sig");
        assert_eq!(delivery_key(&ev(Some(" ")), "sig"), "sig:sig");
    }

    const SECRET: &[u8] = b"dGhpc19zZWNyZXRfaXNfc2VjcmV0";
    const TS: &str = "2023-04-04T22:46:48Z";
    const BODY: &[u8] = br#"{"account_id":11896485,"detail":{"brand_id":"4883147156990","id":"7005450498174","user_id":"262066642"},"event":{"locale":"en-us"},"id":"01GX7773HNJ9CA89HX2P1MQ8E1","subject":"zen:article:7005450498174","time":"2023-04-04T22:46:48.627504986Z","type":"zen:event-type:article.published","zendesk_event_version":"2022-06-20"}"#;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2023-04-04T22:47:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn check(
        secret: &[u8],
        ts: &str,
        body: &[u8],
        sig: &str,
        now: DateTime<Utc>,
    ) -> Result<(), WebhookError> {
        verify(secret, ts, body, sig, now, DEFAULT_TOLERANCE)
    }

    #[test]
    fn valid_signature_passes() {
        let sig = sign(SECRET, TS, BODY);
        assert_eq!(check(SECRET, TS, BODY, &sig, now()), Ok(()));
    }

    #[test]
    fn signature_matches_an_independent_computation() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), a published test vector.
        let sig = sign(b"key", "The quick brown fox ", b"jumps over the lazy dog");
        assert_eq!(
            sig,
            STANDARD.encode(hex(
                "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
            ))
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn wrong_secret_is_refused() {
        let sig = sign(b"another secret", TS, BODY);
        let err = check(SECRET, TS, BODY, &sig, now()).unwrap_err();
        assert_eq!(err, WebhookError::SignatureMismatch);
        assert!(err.is_unauthorized());
    }

    #[test]
    fn tampered_body_or_timestamp_is_refused() {
        let sig = sign(SECRET, TS, BODY);
        let tampered = String::from_utf8_lossy(BODY).replace("7005450498174", "7005450498175");
        assert_eq!(
            check(SECRET, TS, tampered.as_bytes(), &sig, now()),
            Err(WebhookError::SignatureMismatch)
        );
        assert_eq!(
            check(SECRET, "2023-04-04T22:46:49Z", BODY, &sig, now()),
            Err(WebhookError::SignatureMismatch)
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_refused_even_when_signed() {
        let old = "2023-04-04T22:40:00Z";
        let sig = sign(SECRET, old, BODY);
        assert_eq!(
            check(SECRET, old, BODY, &sig, now()),
            Err(WebhookError::Stale {
                age_secs: 420,
                tolerance_secs: 300
            })
        );
        let ahead = "2023-04-04T22:53:00Z";
        let sig = sign(SECRET, ahead, BODY);
        assert_eq!(
            check(SECRET, ahead, BODY, &sig, now()),
            Err(WebhookError::Future {
                ahead_secs: 360,
                tolerance_secs: 300
            })
        );
        // Within tolerance on both sides.
        for ts in ["2023-04-04T22:42:01Z", "2023-04-04T22:51:59Z"] {
            assert_eq!(
                check(SECRET, ts, BODY, &sign(SECRET, ts, BODY), now()),
                Ok(())
            );
        }
    }

    #[test]
    fn unix_second_timestamps_are_accepted() {
        let ts = now().timestamp().to_string();
        assert_eq!(
            check(SECRET, &ts, BODY, &sign(SECRET, &ts, BODY), now()),
            Ok(())
        );
        let old = (now().timestamp() - 301).to_string();
        assert!(matches!(
            check(SECRET, &old, BODY, &sign(SECRET, &old, BODY), now()),
            Err(WebhookError::Stale { .. })
        ));
    }

    #[test]
    fn malformed_headers_are_refused_without_echoing_them() {
        let sig = sign(SECRET, TS, BODY);
        assert_eq!(
            check(SECRET, TS, BODY, "not base64!!", now()),
            Err(WebhookError::MalformedSignature)
        );
        assert_eq!(
            check(SECRET, "yesterday", BODY, &sig, now()),
            Err(WebhookError::BadTimestamp)
        );
        assert_eq!(
            check(SECRET, "", BODY, &sig, now()),
            Err(WebhookError::BadTimestamp)
        );
        let wrong = sign(b"x", TS, BODY);
        for err in [
            check(SECRET, TS, BODY, &wrong, now()).unwrap_err(),
            check(SECRET, TS, BODY, "bm90IGEgc2ln", now()).unwrap_err(),
        ] {
            let msg = err.to_string();
            assert!(
                !msg.contains(&wrong) && !msg.contains("bm90IGEgc2ln"),
                "{msg}"
            );
            assert!(!msg.contains(std::str::from_utf8(SECRET).unwrap()), "{msg}");
        }
    }

    #[test]
    fn parses_the_documented_envelope_with_string_ids() {
        let e = parse(BODY).unwrap();
        assert_eq!(
            e,
            WebhookEvent {
                event_type: "article.published".into(),
                article_id: 7005450498174,
                brand_id: Some(4883147156990),
                event_id: Some("01GX7773HNJ9CA89HX2P1MQ8E1".into()),
                locale: Some("en-us".into()),
                time: Some("2023-04-04T22:46:48.627504986Z".into()),
            }
        );
    }

    #[test]
    fn numeric_ids_and_subject_fallback() {
        let e = parse(
            br#"{"type":"zen:event-type:article.unpublished","detail":{"id":42,"brand_id":7}}"#,
        )
        .unwrap();
        assert_eq!(
            (e.event_type.as_str(), e.article_id, e.brand_id),
            ("article.unpublished", 42, Some(7))
        );
        let e = parse(br#"{"type":"zen:event-type:article.vote_created","subject":"zen:article:99","detail":{}}"#).unwrap();
        assert_eq!(e.article_id, 99);
        assert_eq!(e.brand_id, None);
    }

    #[test]
    fn every_article_event_is_accepted_and_others_are_not() {
        for t in [
            "article.subscription_created",
            "article.author_changed",
            "article.comment_published",
        ] {
            let body = format!(r#"{{"type":"zen:event-type:{t}","detail":{{"id":"5"}}}}"#);
            assert_eq!(parse(body.as_bytes()).unwrap().event_type, t);
        }
        let err =
            parse(br#"{"type":"zen:event-type:ticket.created","detail":{"id":"5"}}"#).unwrap_err();
        assert_eq!(
            err,
            WebhookError::UnsupportedEvent("zen:event-type:ticket.created".into())
        );
        assert!(!err.is_unauthorized());
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert!(matches!(
            parse(b"not json"),
            Err(WebhookError::Malformed(_))
        ));
        assert!(matches!(parse(b"{}"), Err(WebhookError::Malformed(_))));
        assert!(matches!(
            parse(br#"{"type":"zen:event-type:article.published","detail":{"id":"abc"}}"#),
            Err(WebhookError::Malformed(_))
        ));
        assert!(matches!(
            parse(br#"{"type":"zen:event-type:article.published","detail":{"id":-3}}"#),
            Err(WebhookError::Malformed(_))
        ));
    }
}
