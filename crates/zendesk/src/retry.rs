//! Retry and pacing policy for Zendesk requests. Pure: the client sleeps, this decides how long.

use std::time::Duration;

/// How hard to retry and how politely to pace; configurable per source (`[sources.x.limits]`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per request for 5xx, timeouts and malformed bodies (the first one included).
    pub max_attempts: u32,
    /// First backoff step; doubles per attempt, with full jitter.
    pub base_backoff: Duration,
    /// Ceiling of one backoff sleep.
    pub max_backoff: Duration,
    /// Longest `Retry-After` helpdex honours; a longer one stops the run (the cursor resumes it).
    pub max_retry_after: Duration,
    /// 429 answers tolerated per request before giving up.
    pub max_rate_limited: u32,
    /// Share of the account's per-minute budget left free for the customer's other
    /// integrations: below `reserve_share × X-Rate-Limit` remaining, helpdex pauses.
    pub reserve_share: f64,
    /// How long to pause when the remaining budget is under the reserve.
    pub low_budget_pause: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
            max_rate_limited: 10,
            reserve_share: 0.2,
            low_budget_pause: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Full-jitter exponential backoff for the given (1-based) failed attempt; `unit` in [0, 1).
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        let exp = self
            .base_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.max_backoff);
        cap.mul_f64(unit.clamp(0.0, 1.0))
    }

    /// Pause before the next request given the last `X-Rate-Limit`/`-Remaining` headers.
    pub fn pacing(&self, limit: Option<u64>, remaining: Option<u64>) -> Option<Duration> {
        let (limit, remaining) = (limit?, remaining?);
        if limit == 0 {
            return None;
        }
        let floor = (limit as f64 * self.reserve_share).ceil() as u64;
        (remaining < floor.max(1)).then_some(self.low_budget_pause)
    }
}

/// The longest wait a `Retry-After` can express here (a year): anything longer is clamped to
/// it, so absurd values such as `99999999999999999999` become "longer than the cap" instead of
/// overflowing `Duration`.
pub const RETRY_AFTER_CEILING: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parses a `Retry-After` value: delta-seconds, or an HTTP date relative to `now`. Never
/// panics; values beyond [`RETRY_AFTER_CEILING`] are clamped to it.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only: a count of seconds, however many digits.
        return Some(match v.parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs).min(RETRY_AFTER_CEILING),
            Err(_) => RETRY_AFTER_CEILING,
        });
    }
    if let Ok(secs) = v.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(
            Duration::try_from_secs_f64(secs)
                .unwrap_or(RETRY_AFTER_CEILING)
                .min(RETRY_AFTER_CEILING),
        );
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - now;
    Some(
        delta
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(RETRY_AFTER_CEILING),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn retry_after_forms() {
        let now = chrono::Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(parse_retry_after("93", now), Some(Duration::from_secs(93)));
        assert_eq!(parse_retry_after(" 1 ", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Mon, 01 Jan 2024 00:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 31 Dec 2023 00:00:30 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        // Recorded in the wild: a value no integer type holds must not panic.
        assert_eq!(
            parse_retry_after("99999999999999999999", now),
            Some(RETRY_AFTER_CEILING)
        );
        assert_eq!(parse_retry_after("1e300", now), Some(RETRY_AFTER_CEILING));
        assert_eq!(parse_retry_after("inf", now), None);
        assert_eq!(parse_retry_after("NaN", now), None);
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now),
            Some(RETRY_AFTER_CEILING)
        );
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(500));
        assert_eq!(p.backoff(3, 1.0), Duration::from_secs(2));
        assert_eq!(p.backoff(30, 1.0), Duration::from_secs(30));
        assert_eq!(p.backoff(3, 0.0), Duration::ZERO);
    }

    #[test]
    fn pacing_keeps_reserve() {
        let p = RetryPolicy::default();
        assert_eq!(p.pacing(Some(700), Some(500)), None);
        assert_eq!(p.pacing(Some(700), Some(139)), Some(p.low_budget_pause));
        assert_eq!(p.pacing(Some(700), Some(140)), None);
        assert_eq!(p.pacing(None, Some(0)), None);
    }
}
