//! Scripted failures and the rate-limit budget: the ways a real Zendesk misbehaves that the
//! client must survive (5xx, bodies cut short, slow answers, 429 with `Retry-After`).

use super::RateLimit;
use std::time::{Duration, Instant};

/// A way to break one API answer on purpose (see [`super::Emulator::fault_next`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and an error body instead of the real answer (5xx: Zendesk's
    /// JSON error body).
    Fail(u16),
    /// Answer 200 with the first half of the real JSON body.
    Truncate,
    /// Sleep this long, then answer normally.
    Delay(Duration),
    /// A 429 in the recorded shape (`text/plain`, `x-rate-limit-remaining: 0`) with this
    /// `Retry-After` value, verbatim (`"1"`, `"99999999999999999999"`...).
    RateLimited(String),
    /// A 4xx whose JSON body echoes the request's `Authorization` header (recorded on 400/422
    /// answers of some endpoints).
    EchoAuthorization(u16),
    /// 200 with a body that is not JSON at all (a proxy's HTML error page).
    Garbage,
    /// 200 and headers, then the connection drops in the middle of the body.
    Reset,
}

/// Pending faults, consumed one per API request in order of precedence fail > truncate >
/// delay, so `fail_next(2, 503)` then `truncate_next(1)` breaks three requests in a row.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    fail: usize,
    fail_status: u16,
    truncate: usize,
    delay: usize,
    delay_for: Duration,
    /// Faults for requests whose path contains a string, consumed before the others.
    targeted: Vec<(String, Fault, usize)>,
}

impl Faults {
    pub(crate) fn fail_next(&mut self, n: usize, status: u16) {
        self.fail = n;
        self.fail_status = status;
    }

    pub(crate) fn truncate_next(&mut self, n: usize) {
        self.truncate = n;
    }

    pub(crate) fn delay_next(&mut self, n: usize, d: Duration) {
        self.delay = n;
        self.delay_for = d;
    }

    pub(crate) fn add(&mut self, n: usize, path_contains: &str, fault: Fault) {
        self.targeted.push((path_contains.to_string(), fault, n));
    }

    /// The fault for the next request to `path`, if any.
    pub(crate) fn take(&mut self, path: &str) -> Option<Fault> {
        if let Some(i) = self
            .targeted
            .iter()
            .position(|(p, _, n)| *n > 0 && path.contains(p.as_str()))
        {
            let (_, f, n) = &mut self.targeted[i];
            *n -= 1;
            let f = f.clone();
            self.targeted.retain(|(_, _, n)| *n > 0);
            return Some(f);
        }
        if self.fail > 0 {
            self.fail -= 1;
            Some(Fault::Fail(self.fail_status))
        } else if self.truncate > 0 {
            self.truncate -= 1;
            Some(Fault::Truncate)
        } else if self.delay > 0 {
            self.delay -= 1;
            Some(Fault::Delay(self.delay_for))
        } else {
            None
        }
    }
}

/// Outcome of charging one request to the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Charge {
    /// Allowed; this many requests remain in the window.
    Allowed { remaining: u32 },
    /// Budget spent; retry after this many whole seconds (at least 1).
    Limited { retry_after: u64 },
}

/// A fixed-window request budget, like Zendesk's per-minute account limit.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: RateLimit,
    window_start: Option<Instant>,
    used: u32,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            window_start: None,
            used: 0,
        }
    }

    pub(crate) fn per_window(&self) -> u32 {
        self.limit.per_window
    }

    fn roll(&mut self, now: Instant) -> Instant {
        match self.window_start {
            Some(s) if now.duration_since(s) < self.limit.window => s,
            _ => {
                self.window_start = Some(now);
                self.used = 0;
                now
            }
        }
    }

    /// Remaining budget without spending any (for responses that are not charged).
    pub(crate) fn remaining(&mut self, now: Instant) -> u32 {
        self.roll(now);
        self.limit.per_window.saturating_sub(self.used)
    }

    /// Spends one request, or says how long until the window resets.
    pub(crate) fn charge(&mut self, now: Instant) -> Charge {
        let start = self.roll(now);
        if self.used < self.limit.per_window {
            self.used += 1;
            return Charge::Allowed {
                remaining: self.limit.per_window - self.used,
            };
        }
        let left = (start + self.limit.window).saturating_duration_since(now);
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        Charge::Limited {
            retry_after: secs.max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_apply_one_per_request_by_precedence() {
        let mut f = Faults::default();
        f.delay_next(1, Duration::from_millis(5));
        f.truncate_next(1);
        f.fail_next(2, 503);
        assert_eq!(f.take("/a"), Some(Fault::Fail(503)));
        assert_eq!(f.take("/a"), Some(Fault::Fail(503)));
        assert_eq!(f.take("/a"), Some(Fault::Truncate));
        assert_eq!(f.take("/a"), Some(Fault::Delay(Duration::from_millis(5))));
        assert_eq!(f.take("/a"), None);
        f.truncate_next(3);
        f.truncate_next(0);
        assert_eq!(f.take("/a"), None, "truncate_next(0) clears");
        f.add(1, "incremental", Fault::Garbage);
        f.fail_next(1, 500);
        assert_eq!(
            f.take("/locales"),
            Some(Fault::Fail(500)),
            "targets only their path"
        );
        assert_eq!(f.take("/incremental/articles"), Some(Fault::Garbage));
        assert_eq!(f.take("/incremental/articles"), None);
    }

    #[test]
    fn budget_is_spent_then_resets_with_the_window() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(RateLimit {
            per_window: 2,
            window: Duration::from_millis(2500),
        });
        assert_eq!(r.charge(t0), Charge::Allowed { remaining: 1 });
        assert_eq!(r.charge(t0), Charge::Allowed { remaining: 0 });
        assert_eq!(
            r.charge(t0 + Duration::from_millis(100)),
            Charge::Limited { retry_after: 3 },
            "2.4 s rounds up"
        );
        assert_eq!(
            r.charge(t0 + Duration::from_millis(2499)),
            Charge::Limited { retry_after: 1 },
            "never 0"
        );
        assert_eq!(r.remaining(t0 + Duration::from_millis(2499)), 0);
        assert_eq!(
            r.charge(t0 + Duration::from_millis(2500)),
            Charge::Allowed { remaining: 1 }
        );
    }
}
