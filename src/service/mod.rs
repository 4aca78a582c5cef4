//! The long-running service's building blocks, independent of HTTP: cron [`schedule`]s, the
//! [`scheduler`] that runs syncs one at a time, Zendesk [`webhook`] verification and parsing,
//! and Prometheus [`metrics`].

pub mod metrics;
pub mod schedule;
pub mod scheduler;
pub mod webhook;
