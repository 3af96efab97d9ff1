//! The operator's delivery policy: when to retry a failed delivery, and how long to keep logs.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::FieldError;

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
}
