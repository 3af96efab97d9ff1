//! The operator's delivery policy: when to retry a failed delivery, and how long to keep logs.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{AttemptResult, EventId, FieldError};

/// Waits between the attempts of one delivery: after the first attempt fails, the dispatcher
/// waits `delays[0]`, and so on. When the last retry fails too, the delivery has failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

/// Most retries a schedule may hold.
pub const MAX_RETRIES: usize = 20;
/// Longest wait before one retry.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(24 * 3600);

impl Default for RetrySchedule {
    /// 1, 2, 4, 8 and 16 seconds, as the partner docs promise.
    fn default() -> Self {
        Self { delays: [1, 2, 4, 8, 16].map(Duration::from_secs).to_vec() }
    }
}

impl RetrySchedule {
    /// A comma-separated list of waits: `1s,2s,4s,8s,16s`, `500ms,1m`, or bare seconds `1,2,4`.
    /// An empty text means no retries at all.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let field = "retry schedule";
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self { delays: Vec::new() });
        }
        let mut delays = Vec::new();
        for part in text.split(',').map(str::trim) {
            let delay = match part.parse::<u64>() {
                Ok(seconds) => Duration::from_secs(seconds),
                Err(_) => humantime::parse_duration(part).map_err(|e| {
                    FieldError::new(field, format!("has `{part}`, which is not a duration like `2s` or `500ms` ({e})"))
                })?,
            };
            if delay.is_zero() {
                return Err(FieldError::new(field, format!("has `{part}`: a wait must be longer than zero")));
            }
            if delay > MAX_RETRY_DELAY {
                return Err(FieldError::new(field, format!("has `{part}`: a wait may be at most 24h")));
            }
            delays.push(delay);
        }
        if delays.len() > MAX_RETRIES {
            return Err(FieldError::new(
                field,
                format!("has {} waits; at most {MAX_RETRIES} are allowed", delays.len()),
            ));
        }
        Ok(Self { delays })
    }

    /// The wait before retry number `retry` (1 is the first retry), or `None` when the schedule
    /// has no more retries and the delivery has failed.
    pub fn delay_before_retry(&self, retry: usize) -> Option<Duration> {
        retry.checked_sub(1).and_then(|i| self.delays.get(i)).copied()
    }

    /// How many retries follow a failed first attempt.
    pub fn retries(&self) -> usize {
        self.delays.len()
    }

    /// The waits in order.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }
}

impl std::fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.delays.iter().map(|d| humantime::format_duration(*d).to_string()).collect();
        f.write_str(&parts.join(","))
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Done: it succeeded.
    Succeeded,
    /// Try again at this time (ms).
    RetryAt(i64),
    /// No retries left: the delivery failed and the webhook is switched off for this reason.
    GiveUp { reason: String },
}

/// The retry decision after each attempt: the schedule and the operator's two choices about
/// what receivers ask (`410 Gone`, `Retry-After`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Waits before each retry.
    pub schedule: RetrySchedule,
    /// `410 Gone` gives up at once (and deactivates the webhook) instead of being retried.
    pub gone_deactivates: bool,
    /// A `Retry-After` longer than the scheduled wait is waited for.
    pub honor_retry_after: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { schedule: RetrySchedule::default(), gone_deactivates: true, honor_retry_after: true }
    }
}

/// A retry decision: what comes next, and words to add to the attempt's error when the
/// receiver's own wait was chosen over the schedule's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub next: Next,
    pub note: Option<String>,
}

impl RetryPolicy {
    /// After attempt `number` (1 for the first) of event `event_id` ended with `result` at
    /// `now` (ms): done on a 2xx; give up on `410 Gone` (when so set) or when the schedule has
    /// no retry left; else retry after the schedule's wait, or after the receiver's longer
    /// `Retry-After` (when honoured), which the note then says.
    pub fn decide(&self, result: &AttemptResult, number: i64, event_id: &EventId, now: i64) -> Decision {
        let just = |next| Decision { next, note: None };
        if result.success {
            return just(Next::Succeeded);
        }
        if self.gone_deactivates && result.status_code == Some(410) {
            return just(Next::GiveUp {
                reason: format!(
                    "the endpoint answered 410 Gone to event {event_id}: it asked not to be sent more events"
                ),
            });
        }
        let Some(scheduled) = usize::try_from(number).ok().and_then(|n| self.schedule.delay_before_retry(n)) else {
            return just(Next::GiveUp {
                reason: format!(
                    "{number} attempts in a row failed to deliver event {event_id}; the last: {}",
                    result.error.as_deref().unwrap_or("failed")
                ),
            });
        };
        let asked = result.retry_after_secs.filter(|_| self.honor_retry_after).map(Duration::from_secs);
        match asked {
            Some(asked) if asked > scheduled => Decision {
                next: Next::RetryAt(now + asked.as_millis() as i64),
                note: Some(format!(
                    "the next attempt waits {} as asked, not the scheduled {}",
                    humantime::format_duration(asked),
                    humantime::format_duration(scheduled)
                )),
            },
            _ => just(Next::RetryAt(now + scheduled.as_millis() as i64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_documented_backoff() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.retries(), 5);
        assert_eq!(schedule.to_string(), "1s,2s,4s,8s,16s");
        assert_eq!(schedule.delay_before_retry(1), Some(Duration::from_secs(1)));
        assert_eq!(schedule.delay_before_retry(5), Some(Duration::from_secs(16)));
        assert_eq!(schedule.delay_before_retry(6), None);
        assert_eq!(schedule.delay_before_retry(0), None);
    }

    #[test]
    fn parses_units_and_bare_seconds() {
        assert_eq!(RetrySchedule::parse("1,2,4,8,16").unwrap(), RetrySchedule::default());
        assert_eq!(RetrySchedule::parse(" 1s, 2s,4s ,8s,16s").unwrap(), RetrySchedule::default());
        let fast = RetrySchedule::parse("50ms,1m").unwrap();
        assert_eq!(fast.delays(), &[Duration::from_millis(50), Duration::from_secs(60)]);
        assert_eq!(RetrySchedule::parse("").unwrap().retries(), 0);
    }

    #[test]
    fn refuses_nonsense_with_the_culprit_named() {
        let err = RetrySchedule::parse("1s,soon").unwrap_err();
        assert_eq!(err.field, "retry schedule");
        assert!(err.message.contains("`soon`"), "{err}");
        assert!(RetrySchedule::parse("0s").unwrap_err().message.contains("longer than zero"));
        assert!(RetrySchedule::parse("25h").unwrap_err().message.contains("at most 24h"));
        assert!(RetrySchedule::parse("1,,2").is_err());
        assert!(RetrySchedule::parse(&vec!["1s"; 21].join(",")).unwrap_err().message.contains("at most 20"));
    }

    mod retry_policy {
        use super::*;
        use crate::domain::FailureCause;

        const NOW: i64 = 1_000_000;

        fn answered(status: u16, retry_after_secs: Option<u64>) -> AttemptResult {
            AttemptResult {
                success: (200..300).contains(&status),
                status_code: Some(status),
                latency_ms: 5,
                response_body: None,
                error: (!(200..300).contains(&status)).then(|| format!("HTTP {status}")),
                cause: None,
                retry_after_secs,
            }
        }

        fn event() -> EventId {
            EventId::parse("evt_1").unwrap()
        }

        fn decide(result: &AttemptResult, number: i64) -> Decision {
            RetryPolicy::default().decide(result, number, &event(), NOW)
        }

        fn retry_in(ms: i64) -> Decision {
            Decision { next: Next::RetryAt(NOW + ms), note: None }
        }

        #[test]
        fn a_2xx_is_done() {
            assert_eq!(decide(&answered(200, None), 1).next, Next::Succeeded);
            assert_eq!(decide(&answered(204, None), 5).next, Next::Succeeded);
        }

        #[test]
        fn a_3xx_or_a_5xx_is_retried_on_the_schedule() {
            assert_eq!(decide(&answered(301, None), 1), retry_in(1_000));
            assert_eq!(decide(&answered(500, None), 2), retry_in(2_000));
            assert_eq!(decide(&answered(404, None), 5), retry_in(16_000));
        }

        #[test]
        fn a_410_gives_up_at_once_unless_the_operator_says_otherwise() {
            let Next::GiveUp { reason } = decide(&answered(410, None), 1).next else { panic!("gives up") };
            assert!(reason.contains("410 Gone") && reason.contains("evt_1"), "{reason}");
            let retried = RetryPolicy { gone_deactivates: false, ..RetryPolicy::default() };
            assert_eq!(retried.decide(&answered(410, None), 1, &event(), NOW), retry_in(1_000));
        }

        #[test]
        fn retry_after_is_waited_for_when_longer_than_the_schedule() {
            let longer = decide(&answered(429, Some(30)), 1);
            assert_eq!(longer.next, Next::RetryAt(NOW + 30_000));
            assert_eq!(longer.note.as_deref(), Some("the next attempt waits 30s as asked, not the scheduled 1s"));
            assert_eq!(decide(&answered(503, Some(1)), 3), retry_in(4_000), "shorter: the schedule's wait");
            let ignored = RetryPolicy { honor_retry_after: false, ..RetryPolicy::default() };
            assert_eq!(ignored.decide(&answered(429, Some(30)), 1, &event(), NOW), retry_in(1_000));
        }

        #[test]
        fn a_timeout_or_a_connection_error_is_retried() {
            let timeout = AttemptResult::failed(FailureCause::Timeout, "timed out after 10s".into(), 10_000);
            assert_eq!(decide(&timeout, 1), retry_in(1_000));
            let refused = AttemptResult::failed(FailureCause::ConnectError, "connection refused".into(), 1);
            assert_eq!(decide(&refused, 4), retry_in(8_000));
        }

        #[test]
        fn after_the_last_retry_it_gives_up_with_the_last_error() {
            let refused = AttemptResult::failed(FailureCause::ConnectError, "connection refused".into(), 1);
            let Next::GiveUp { reason } = decide(&refused, 6).next else { panic!("gives up") };
            assert_eq!(reason, "6 attempts in a row failed to deliver event evt_1; the last: connection refused");
            let none = RetryPolicy { schedule: RetrySchedule::parse("").unwrap(), ..RetryPolicy::default() };
            assert!(matches!(none.decide(&refused, 1, &event(), NOW).next, Next::GiveUp { .. }));
        }
    }
}
