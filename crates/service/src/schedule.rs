//! Cron schedules of the `serve` process (`schedule = "..."` per source).
//!
//! # Format
//!
//! A schedule is a cron expression in UTC, in one of three forms:
//!
//! | form | fields | example | meaning |
//! |---|---|---|---|
//! | classic cron | `min hour day-of-month month day-of-week` | `*/15 * * * *` | every 15 minutes |
//! | with seconds | `sec min hour day-of-month month day-of-week [year]` | `0 30 2 * * *` | 02:30:00 every day |
//! | shortcut | `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly` | `@daily` | midnight every day |
//!
//! Fields accept `*`, numbers, ranges (`1-5`), lists (`0,30`), steps (`*/10`, `0-30/5`) and,
//! for months and days of the week, English names (`Jan`, `Mon-Fri`). `?` means "any" in the
//! day fields.
//!
//! Days of the week differ between the two numeric forms, because the classic form follows
//! Unix cron while the seconds form is passed to the `cron` crate unchanged:
//! - classic (5 fields): `0` or `7` = Sunday, `1` = Monday … `6` = Saturday;
//! - with seconds (6/7 fields): `1` = Sunday … `7` = Saturday.
//!
//! Names mean the same in both, so prefer them (`Mon-Fri`). When both the day-of-month and
//! the day-of-week fields are restricted, a time must match both (Unix cron matches either).
//!
//! The normalized form (`Display`, shown by `status`) is always the seconds form, with
//! classic day-of-week numbers rewritten as names: `0 9 * * 1-5` is shown as
//! `0 0 9 * * Mon-Fri`.

use chrono::{DateTime, Utc};
use cron::TimeUnitSpec;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;
use thiserror::Error;

/// Jitter never exceeds this, however rare the schedule.
const JITTER_CAP: Duration = Duration::from_secs(30);

/// Number of upcoming fires inspected to find the shortest interval.
const INTERVAL_SAMPLES: usize = 32;

/// Day-of-week names in Unix order (index 0 = Sunday).
const DAY_NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// A schedule that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScheduleError {
    /// The expression does not parse.
    #[error(
        "invalid schedule '{expression}': {reason}; expected cron 'min hour day month weekday' (e.g. '*/15 * * * *'), 'sec min hour day month weekday [year]' or @hourly/@daily/@weekly/@monthly/@yearly"
    )]
    Invalid {
        /// The expression as written.
        expression: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A parsed cron schedule (UTC); see the module docs for the format.
#[derive(Debug, Clone)]
pub struct Schedule {
    inner: cron::Schedule,
    /// Normalized expression (seconds form).
    normalized: String,
    /// Shortest gap between consecutive fires seen when parsing.
    min_interval: Option<Duration>,
}

impl Schedule {
    /// Parses a 5-field (Unix cron), 6/7-field (seconds first) or `@shortcut` expression.
    pub fn parse(expression: &str) -> Result<Schedule, ScheduleError> {
        let invalid = |reason: String| ScheduleError::Invalid {
            expression: expression.to_string(),
            reason,
        };
        let trimmed = expression.trim();
        if trimmed.is_empty() {
            return Err(invalid("it is empty".into()));
        }
        let normalized = if trimmed.starts_with('@') {
            trimmed.to_ascii_lowercase()
        } else {
            let fields: Vec<&str> = trimmed.split_whitespace().collect();
            match fields.len() {
                5 => {
                    let dow = unix_days_of_week(fields[4]).map_err(invalid)?;
                    format!(
                        "0 {} {} {} {} {}",
                        fields[0], fields[1], fields[2], fields[3], dow
                    )
                }
                6 | 7 => fields.join(" "),
                n => return Err(invalid(format!("it has {n} fields"))),
            }
        };
        let inner = cron::Schedule::from_str(&normalized).map_err(|e| invalid(e.to_string()))?;
        let min_interval = min_interval(&inner, Utc::now());
        if min_interval.is_none() && inner.upcoming(Utc).next().is_none() {
            return Err(invalid("it never fires again".into()));
        }
        Ok(Schedule {
            inner,
            normalized,
            min_interval,
        })
    }

    /// The first fire strictly after `t`, or `None` when the schedule has ended (a past year).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.inner.after(&t).next()
    }

    /// Whether the seconds field names more than one second, so it fires several times a
    /// minute (e.g. `*/10 * * * * *`): too often for a sync, which callers may refuse.
    pub fn fires_more_than_once_a_minute(&self) -> bool {
        self.inner.seconds().count() > 1
    }

    /// The most random delay to add to a fire: 10% of the shortest interval between fires,
    /// at most 30 s, so that many helpdex instances on the same schedule do not hit Zendesk
    /// in the same second. Zero when the schedule fires more than once a minute.
    pub fn jitter_max(&self) -> Duration {
        if self.fires_more_than_once_a_minute() {
            return Duration::ZERO;
        }
        match self.min_interval {
            Some(interval) => (interval / 10).min(JITTER_CAP),
            None => Duration::ZERO,
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized)
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Schedule::parse(s)
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.normalized == other.normalized
    }
}

/// Shortest gap between the next few fires after `from`.
fn min_interval(schedule: &cron::Schedule, from: DateTime<Utc>) -> Option<Duration> {
    let fires: Vec<DateTime<Utc>> = schedule.after(&from).take(INTERVAL_SAMPLES).collect();
    fires
        .windows(2)
        .filter_map(|w| (w[1] - w[0]).to_std().ok())
        .min()
}

/// Rewrites a Unix cron day-of-week field (0/7 = Sunday) as names the `cron` crate reads
/// unambiguously (it numbers Sunday 1).
fn unix_days_of_week(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok(field.to_string());
    }
    let mut days = [false; 7];
    for item in field.split(',') {
        let bad = || format!("day of week '{item}' is not valid (use 0-7 or Sun-Sat)");
        let (base, step) = match item.split_once('/') {
            Some((b, s)) => (
                b,
                s.parse::<usize>().ok().filter(|s| *s > 0).ok_or_else(bad)?,
            ),
            None => (item, 1),
        };
        let (lo, hi) = if base == "*" {
            (0, 6)
        } else if let Some((a, b)) = base.split_once('-') {
            (unix_day(a).ok_or_else(bad)?, unix_day(b).ok_or_else(bad)?)
        } else {
            let d = unix_day(base).ok_or_else(bad)?;
            // `5/2` means "from 5, every 2" as in Unix cron.
            (d, if item.contains('/') { 6 } else { d })
        };
        // 7 is Sunday again; a range ending at 7 (e.g. 5-7) wraps to Sunday.
        if lo > hi {
            return Err(bad());
        }
        for d in (lo..=hi).step_by(step) {
            days[d % 7] = true;
        }
    }
    Ok(day_names(&days))
}

/// A day number 0-7 or a name (`Mon`, `monday`), in Unix numbering.
fn unix_day(s: &str) -> Option<usize> {
    if let Ok(n) = s.parse::<usize>() {
        return (n <= 7).then_some(n);
    }
    const FULL: [&str; 7] = [
        "sunday",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
    ];
    let lower = s.to_ascii_lowercase();
    FULL.iter()
        .position(|full| lower == full[..3] || lower == *full)
}

/// Comma list of names, consecutive days joined as ranges (`Mon-Fri`).
fn day_names(days: &[bool; 7]) -> String {
    let mut parts = Vec::new();
    let mut d = 0;
    while d < 7 {
        if !days[d] {
            d += 1;
            continue;
        }
        let start = d;
        while d + 1 < 7 && days[d + 1] {
            d += 1;
        }
        parts.push(if start == d {
            DAY_NAMES[d].to_string()
        } else {
            format!("{}-{}", DAY_NAMES[start], DAY_NAMES[d])
        });
        d += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Timelike, Weekday};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn five_fields_get_a_zero_seconds_field() {
        let s = Schedule::parse("*/15 * * * *").unwrap();
        assert_eq!(s.to_string(), "0 */15 * * * *");
        assert_eq!(
            s.next_after(at("2024-05-01T10:07:30Z")),
            Some(at("2024-05-01T10:15:00Z"))
        );
        assert_eq!(
            s.next_after(at("2024-05-01T10:15:00Z")),
            Some(at("2024-05-01T10:30:00Z"))
        );
    }

    #[test]
    fn six_and_seven_fields_pass_through() {
        let s = Schedule::parse("30 0 3 * * *").unwrap();
        assert_eq!(s.to_string(), "30 0 3 * * *");
        assert_eq!(
            s.next_after(at("2024-05-01T10:00:00Z")),
            Some(at("2024-05-02T03:00:30Z"))
        );
        let y = Schedule::parse("0 0 0 1 1 * 2099").unwrap();
        assert_eq!(
            y.next_after(at("2024-05-01T10:00:00Z")),
            Some(at("2099-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn shortcuts() {
        let s = Schedule::parse("@hourly").unwrap();
        assert_eq!(
            s.next_after(at("2024-05-01T10:07:00Z")),
            Some(at("2024-05-01T11:00:00Z"))
        );
        let d = Schedule::parse(" @Daily ").unwrap();
        assert_eq!(d.to_string(), "@daily");
        assert_eq!(
            d.next_after(at("2024-05-01T10:07:00Z")),
            Some(at("2024-05-02T00:00:00Z"))
        );
    }

    #[test]
    fn unix_weekday_numbers_mean_what_unix_cron_means() {
        // 2024-05-03 is a Friday.
        let s = Schedule::parse("0 9 * * 1-5").unwrap();
        assert_eq!(s.to_string(), "0 0 9 * * Mon-Fri");
        let next = s.next_after(at("2024-05-03T10:00:00Z")).unwrap();
        assert_eq!(next.weekday(), Weekday::Mon);
        assert_eq!(next, Utc.with_ymd_and_hms(2024, 5, 6, 9, 0, 0).unwrap());
        assert_eq!(
            Schedule::parse("0 9 * * 0").unwrap().to_string(),
            "0 0 9 * * Sun"
        );
        assert_eq!(
            Schedule::parse("0 9 * * 7").unwrap().to_string(),
            "0 0 9 * * Sun"
        );
        assert_eq!(
            Schedule::parse("0 9 * * 5-7").unwrap().to_string(),
            "0 0 9 * * Sun,Fri-Sat"
        );
        assert_eq!(
            Schedule::parse("0 9 * * */2").unwrap().to_string(),
            "0 0 9 * * Sun,Tue,Thu,Sat"
        );
        assert_eq!(
            Schedule::parse("0 9 * * mon,WED").unwrap().to_string(),
            "0 0 9 * * Mon,Wed"
        );
        assert_eq!(
            Schedule::parse("0 9 * * Mon-Fri").unwrap().to_string(),
            "0 0 9 * * Mon-Fri"
        );
        // The seconds form keeps the cron crate's numbering (1 = Sunday).
        let c = Schedule::parse("0 0 9 * * 1").unwrap();
        assert_eq!(
            c.next_after(at("2024-05-03T10:00:00Z")).unwrap().weekday(),
            Weekday::Sun
        );
    }

    #[test]
    fn errors_name_the_expression_and_the_format() {
        for bad in [
            "",
            "* * * *",
            "61 * * * *",
            "* * * * 8",
            "* * * * Funday",
            "* * * * 5-2",
            "every hour",
            "0 0 0 1 1 * 2001",
        ] {
            let err = Schedule::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("'{bad}'")), "{err}");
            assert!(err.contains("min hour day month weekday"), "{err}");
        }
    }

    #[test]
    fn sub_minute_schedules_are_flagged_and_get_no_jitter() {
        let s = Schedule::parse("*/10 * * * * *").unwrap();
        assert!(s.fires_more_than_once_a_minute());
        assert_eq!(s.jitter_max(), Duration::ZERO);
        let m = Schedule::parse("* * * * *").unwrap();
        assert!(!m.fires_more_than_once_a_minute());
        assert_eq!(m.jitter_max(), Duration::from_secs(6));
    }

    #[test]
    fn jitter_is_a_tenth_of_the_interval_capped_at_30s() {
        assert_eq!(
            Schedule::parse("*/2 * * * *").unwrap().jitter_max(),
            Duration::from_secs(12)
        );
        assert_eq!(
            Schedule::parse("*/15 * * * *").unwrap().jitter_max(),
            Duration::from_secs(30)
        );
        assert_eq!(
            Schedule::parse("@daily").unwrap().jitter_max(),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn next_after_is_strictly_after() {
        let s = Schedule::parse("0 * * * *").unwrap();
        let t = at("2024-05-01T10:00:00Z");
        let n = s.next_after(t).unwrap();
        assert!(n > t);
        assert_eq!((n.hour(), n.minute()), (11, 0));
    }
}
