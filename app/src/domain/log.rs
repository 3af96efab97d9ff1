//! The delivery log as pages and the API read it: attempts, the filters over them, the keyset
//! cursor that pages them, and replay progress.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::{AttemptId, DeliveryId, EventId, EventType, FieldError, RecoveryId, ReplayId, WebhookId};

/// Most attempts one page holds.
pub const MAX_PAGE: i64 = 100;
/// Attempts on a page when the caller does not say.
pub const DEFAULT_PAGE: i64 = 50;

/// Whether an attempt succeeded (a 2xx within the time limit) or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A 2xx answer in time.
    Success,
    /// Anything else.
    Failure,
}

impl Outcome {
    /// The word the store, the API and the URL use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }

    /// `success` or `failure`, or an error naming the `outcome` field.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        match text {
            "success" => Ok(Self::Success),
            "failure" => Ok(Self::Failure),
            other => Err(FieldError::new("outcome", format!("must be `success` or `failure`, not `{other}`"))),
        }
    }
}

/// Where a log page starts: just past the attempt it names. Attempts sort newest first by
/// (time, id), so a page never repeats or skips a row while new attempts arrive on top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCursor {
    /// The attempt's time (ms).
    pub at: i64,
    /// The attempt.
    pub id: AttemptId,
}

impl LogCursor {
    /// The cursor as the URL and the API carry it: `<ms>.<attempt id>`.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.at, self.id)
    }

    /// A cursor from [`encode`](Self::encode), or an error naming the `cursor` field.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let bad = || FieldError::new("cursor", "is not a cursor this log gave out (use the `next` of a page)");
        let (at, id) = text.split_once('.').ok_or_else(bad)?;
        Ok(Self { at: at.parse().map_err(|_| bad())?, id: AttemptId::parse(id).map_err(|_| bad())? })
    }
}

/// Which attempts a log shows. Every field is optional; the partner is always implied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Only this webhook's.
    pub webhook: Option<WebhookId>,
    /// Only successes or only failures.
    pub outcome: Option<Outcome>,
    /// Only attempts of this event type.
    pub event_type: Option<EventType>,
    /// From this time on (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Before this time (exclusive).
    pub to: Option<DateTime<Utc>>,
}

/// A log request as the URL or the API spells it, before any check. Blank means "not given".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LogQuery {
    /// `wh_…`
    pub webhook: Option<String>,
    /// `success` or `failure`.
    pub outcome: Option<String>,
    /// An event type name.
    #[serde(alias = "type")]
    pub event_type: Option<String>,
    /// RFC 3339, or `YYYY-MM-DDTHH:MM` read as UTC.
    pub from: Option<String>,
    /// RFC 3339, or `YYYY-MM-DDTHH:MM` read as UTC.
    pub to: Option<String>,
    /// A page's `next`.
    pub cursor: Option<String>,
    /// 1 to 100.
    pub limit: Option<String>,
}

/// A checked log request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRequest {
    /// Which attempts.
    pub filter: LogFilter,
    /// Where the page starts; `None` for the newest.
    pub cursor: Option<LogCursor>,
    /// How many at most.
    pub limit: i64,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A time filter: RFC 3339 (`2026-01-15T14:30:00Z`), or what `<input type=datetime-local>`
/// sends (`2026-01-15T14:30`), read as UTC.
pub fn parse_time(field: &str, text: &str) -> Result<DateTime<Utc>, FieldError> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| Utc.from_utc_datetime(&naive))
        .ok_or_else(|| {
            FieldError::new(
                field,
                format!("must be a time like 2026-01-15T14:30:00Z or 2026-01-15T14:30, not `{text}`"),
            )
        })
}

impl LogQuery {
    /// Checks every field; all the refusals at once.
    pub fn parse(&self) -> Result<LogRequest, Vec<FieldError>> {
        let mut errors = Vec::new();
        fn keep<T>(errors: &mut Vec<FieldError>, result: Result<T, FieldError>) -> Option<T> {
            result.map_err(|e| errors.push(e)).ok()
        }
        let webhook = given(&self.webhook).and_then(|w| {
            keep(&mut errors, WebhookId::parse(w).map_err(|e| FieldError::new("webhook", e.to_string())))
        });
        let outcome = given(&self.outcome).and_then(|o| keep(&mut errors, Outcome::parse(o)));
        let event_type = given(&self.event_type)
            .and_then(|t| keep(&mut errors, EventType::parse(t).map_err(|e| FieldError::new("eventType", e.message))));
        let from = given(&self.from).and_then(|t| keep(&mut errors, parse_time("from", t)));
        let to = given(&self.to).and_then(|t| keep(&mut errors, parse_time("to", t)));
        let cursor = given(&self.cursor).and_then(|c| keep(&mut errors, LogCursor::parse(c)));
        let limit = match given(&self.limit) {
            None => Some(DEFAULT_PAGE),
            Some(text) => keep(
                &mut errors,
                text.parse::<i64>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| FieldError::new("limit", format!("must be a whole number from 1 to {MAX_PAGE}"))),
            ),
        };
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            errors.push(FieldError::new("to", "must be later than from"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(LogRequest {
            filter: LogFilter { webhook, outcome, event_type, from, to },
            cursor,
            limit: limit.unwrap_or(DEFAULT_PAGE),
        })
    }

    /// The same query with another cursor: the link to a page.
    pub fn with_cursor(&self, cursor: Option<String>) -> Self {
        Self { cursor, ..self.clone() }
    }

    /// The query string for a link (`?outcome=failure&cursor=…`), blanks left out.
    pub fn to_query_string(&self) -> String {
        let pairs = [
            ("webhook", &self.webhook),
            ("outcome", &self.outcome),
            ("eventType", &self.event_type),
            ("from", &self.from),
            ("to", &self.to),
            ("cursor", &self.cursor),
            ("limit", &self.limit),
        ];
        query_string(&pairs)
    }
}

/// A link's query string (`?a=1&b=2`) from named values, blanks left out; empty when all are.
pub fn query_string(pairs: &[(&str, &Option<String>)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        if let Some(value) = given(value) {
            out.append_pair(name, value);
        }
    }
    let query = out.finish();
    if query.is_empty() { query } else { format!("?{query}") }
}

/// Why a delivery exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The event was published.
    Event,
    /// Sent again from the log.
    Resend,
    /// "Replay missed events".
    Replay,
    /// "Test Webhook" (no delivery).
    Test,
}

impl Origin {
    /// The word the store and the API use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Resend => "resend",
            Self::Replay => "replay",
            Self::Test => "test",
        }
    }

    /// A stored origin back; unknown words read as `event`.
    pub fn from_stored(text: &str) -> Self {
        match text {
            "resend" => Self::Resend,
            "replay" => Self::Replay,
            "test" => Self::Test,
            _ => Self::Event,
        }
    }
}

/// One attempt, as a log row shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AttemptSummary {
    /// `att_…`
    #[cfg_attr(feature = "ssr", schema(value_type = String))]
    pub id: AttemptId,
    /// The webhook it went to.
    #[cfg_attr(feature = "ssr", schema(value_type = String))]
    pub webhook_id: WebhookId,
    /// Its delivery; `null` for a test.
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>))]
    pub delivery_id: Option<DeliveryId>,
    /// The event sent.
    #[cfg_attr(feature = "ssr", schema(value_type = String))]
    pub event_id: EventId,
    /// The event's type.
    pub event_type: String,
    /// 1 for a delivery's first attempt.
    pub attempt: i64,
    /// `success` or `failure`.
    pub outcome: Outcome,
    /// The receiver's status code, when it answered.
    pub status_code: Option<u16>,
    /// From sending to the end of the answer or the failure.
    pub latency_ms: i64,
    /// Why it failed.
    pub error: Option<String>,
    /// A "Test Webhook" attempt.
    pub test: bool,
    /// Why its delivery exists: event, resend, replay or test.
    pub origin: Origin,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

impl AttemptSummary {
    /// The cursor of the page that starts after this row.
    pub fn cursor(&self) -> LogCursor {
        LogCursor { at: self.created_at.timestamp_millis(), id: self.id.clone() }
    }
}

/// One attempt with what was sent and answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AttemptDetail {
    /// The row.
    #[serde(flatten)]
    pub summary: AttemptSummary,
    /// The URL it went to (the webhook's URL now).
    pub webhook_url: String,
    /// The request's headers, the auth header's value masked.
    pub request_headers: Vec<(String, String)>,
    /// The body sent.
    pub request_body: String,
    /// The first 4 KiB of the answer's body.
    pub response_body: Option<String>,
}

/// A page of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AttemptPage {
    /// Newest first.
    pub data: Vec<AttemptSummary>,
    /// The cursor of the next (older) page; `null` on the last.
    pub next: Option<String>,
}

/// A "Replay missed events" run and how far it got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ReplayView {
    /// `rpl_…`
    #[cfg_attr(feature = "ssr", schema(value_type = String))]
    pub id: ReplayId,
    /// Events created from this time on were sent.
    pub since: DateTime<Utc>,
    /// Deliveries it queued.
    pub total: i64,
    /// Of those, delivered.
    pub delivered: i64,
    /// Of those, failed after every retry.
    pub failed: i64,
    /// Of those, still waiting or retrying.
    pub waiting: i64,
    /// When it started.
    pub created_at: DateTime<Utc>,
}

/// A "Recover failed deliveries" run and how far it got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RecoveryView {
    /// `rcv_…`
    #[cfg_attr(feature = "ssr", schema(value_type = String))]
    pub id: RecoveryId,
    /// Deliveries that failed from this time on…
    pub since: DateTime<Utc>,
    /// …and before this one were queued again.
    pub until: DateTime<Utc>,
    /// Deliveries it queued again.
    pub total: i64,
    /// Of those, delivered.
    pub delivered: i64,
    /// Of those, failed again after every retry.
    pub failed: i64,
    /// Of those, still waiting or retrying.
    pub waiting: i64,
    /// When it started.
    pub created_at: DateTime<Utc>,
}

/// Attempts and failures in one hour: a bar of the success-rate chart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HourBar {
    /// The hour's start.
    pub hour: DateTime<Utc>,
    /// Non-test attempts in it.
    pub attempts: i64,
    /// Of those, failed.
    pub failures: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let cursor = LogCursor { at: 1_700_000_000_123, id: AttemptId::generate() };
        assert_eq!(LogCursor::parse(&cursor.encode()).unwrap(), cursor);
        for bad in ["", "123", "abc.att_01", "12.wh_01KAQ3M7A8Q9XKJ2V5T6N4B0CD"] {
            assert_eq!(LogCursor::parse(bad).unwrap_err().field, "cursor", "{bad}");
        }
    }

    #[test]
    fn a_query_is_checked_whole() {
        let query = LogQuery {
            outcome: Some("maybe".into()),
            event_type: Some("nope".into()),
            from: Some("yesterday".into()),
            limit: Some("500".into()),
            ..LogQuery::default()
        };
        let fields: Vec<String> = query.parse().unwrap_err().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["outcome", "eventType", "from", "limit"]);
    }

    #[test]
    fn blank_fields_are_not_given_and_times_read_as_utc() {
        let query = LogQuery {
            outcome: Some("failure".into()),
            event_type: Some(" ".into()),
            from: Some("2026-01-15T14:30".into()),
            to: Some("2026-01-16T00:00:00+01:00".into()),
            ..LogQuery::default()
        };
        let request = query.parse().unwrap();
        assert_eq!(request.filter.outcome, Some(Outcome::Failure));
        assert_eq!(request.filter.event_type, None);
        assert_eq!(request.filter.from.unwrap().to_rfc3339(), "2026-01-15T14:30:00+00:00");
        assert_eq!(request.filter.to.unwrap().to_rfc3339(), "2026-01-15T23:00:00+00:00");
        assert_eq!(request.limit, DEFAULT_PAGE);
        assert_eq!(
            query.to_query_string(),
            "?outcome=failure&from=2026-01-15T14%3A30&to=2026-01-16T00%3A00%3A00%2B01%3A00"
        );
    }

    #[test]
    fn an_empty_range_is_refused() {
        let query = LogQuery {
            from: Some("2026-01-15T14:30".into()),
            to: Some("2026-01-15T14:30".into()),
            ..LogQuery::default()
        };
        assert_eq!(query.parse().unwrap_err()[0].field, "to");
    }
}
