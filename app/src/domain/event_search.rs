//! Event search: a partner's events newest first, filtered by type and time, or found by the
//! event's id or a value a customer quotes (`verificationId`, `sessionId`); and one event with
//! its deliveries and their attempts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AttemptSummary, DeliveryId, EventId, EventType, FieldError, WebhookId, parse_time};

/// Events on one page of a list.
pub const EVENT_PAGE: usize = 50;
/// Most deliveries an event's page shows (the newest; each resend makes one).
pub const EVENT_DELIVERIES: usize = 100;
/// Most attempts an event's page shows (the newest); the log has every one.
pub const EVENT_ATTEMPTS: usize = 500;

/// One event, as a list row shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EventSummary {
    /// The event's id.
    #[cfg_attr(feature = "ssr", schema(value_type = String))]
    pub id: EventId,
    /// Its type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Its overall result, such as `success`.
    pub status: String,
    /// When it was published.
    pub created_at: DateTime<Utc>,
    /// `data.verificationId`, when it has one.
    pub verification_id: Option<String>,
    /// `data.sessionId`, when it has one.
    pub session_id: Option<String>,
}

/// A page of events, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    /// Newest first.
    pub data: Vec<EventSummary>,
    /// The cursor of the next (older) page; `null` on the last.
    pub next: Option<String>,
}

/// One delivery of an event: the webhook it went to and its attempts, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EventDelivery {
    /// `dlv_…`
    #[cfg_attr(feature = "ssr", schema(value_type = String))]
    pub id: DeliveryId,
    /// The webhook.
    #[cfg_attr(feature = "ssr", schema(value_type = String))]
    pub webhook_id: WebhookId,
    /// The webhook's URL now.
    pub webhook_url: String,
    /// `pending`, `held` (webhook inactive), `succeeded` or `failed`.
    pub state: String,
    /// Its attempts, oldest first.
    pub attempts: Vec<AttemptSummary>,
}

/// One event with its data and, per webhook, its deliveries and their attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EventDetail {
    /// The event.
    #[serde(flatten)]
    pub event: EventSummary,
    /// Its details, as published.
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub data: serde_json::Value,
    /// Its deliveries, one per webhook it was queued for.
    pub deliveries: Vec<EventDelivery>,
}

/// An event search as the page's form and the API's query string give it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EventQuery {
    /// An event type name.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// RFC 3339, or `YYYY-MM-DDTHH:MM` read as UTC.
    pub since: Option<String>,
    /// RFC 3339, or `YYYY-MM-DDTHH:MM` read as UTC.
    pub until: Option<String>,
    /// An event id, or a `verificationId` or `sessionId` inside the events' data.
    pub search: Option<String>,
    /// A page's `next`.
    pub cursor: Option<String>,
}

/// Where a page of events starts: just past the event it names (events sort newest first by
/// time, then id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCursor {
    /// The event's time (ms).
    pub at: i64,
    /// The event.
    pub id: String,
}

impl EventCursor {
    /// `<ms>.<event id>`.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.at, self.id)
    }
    /// A cursor from [`encode`](Self::encode), or an error naming the `cursor` field.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let bad = || FieldError::new("cursor", "is not a cursor this list gave out (use the `next` of a page)");
        let (at, id) = text.split_once('.').ok_or_else(bad)?;
        let id = EventId::parse(id).map_err(|_| bad())?;
        Ok(Self { at: at.parse().map_err(|_| bad())?, id: id.as_str().to_owned() })
    }
}

/// A checked event search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventSearch {
    /// Only this type.
    pub event_type: Option<EventType>,
    /// Published at or after (ms).
    pub since: Option<i64>,
    /// Published before (ms).
    pub until: Option<i64>,
    /// The event with this id, or those whose `verificationId` or `sessionId` is this.
    pub search: Option<String>,
    /// Where the page starts.
    pub cursor: Option<EventCursor>,
}

impl EventQuery {
    /// The same search from another page on.
    pub fn with_cursor(&self, cursor: Option<String>) -> Self {
        Self { cursor, ..self.clone() }
    }

    /// The query string for a link (`?search=…&cursor=…`), blanks left out.
    pub fn to_query_string(&self) -> String {
        super::query_string(&[
            ("search", &self.search),
            ("type", &self.event_type),
            ("since", &self.since),
            ("until", &self.until),
            ("cursor", &self.cursor),
        ])
    }

    /// Checks every field; all the refusals at once.
    pub fn parse(&self) -> Result<EventSearch, Vec<FieldError>> {
        let given = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        let mut errors = Vec::new();
        let mut search = EventSearch::default();
        if let Some(name) = given(&self.event_type) {
            search.event_type =
                EventType::parse(&name).map_err(|e| errors.push(FieldError::new("type", e.message))).ok();
        }
        if let Some(text) = given(&self.since) {
            search.since = parse_time("since", &text).map(|t| t.timestamp_millis()).map_err(|e| errors.push(e)).ok();
        }
        if let Some(text) = given(&self.until) {
            search.until = parse_time("until", &text).map(|t| t.timestamp_millis()).map_err(|e| errors.push(e)).ok();
        }
        if let (Some(since), Some(until)) = (search.since, search.until)
            && until <= since
        {
            errors.push(FieldError::new("until", "must be after `since`"));
        }
        if let Some(text) = given(&self.search) {
            if text.chars().count() > super::MAX_SEARCH_VALUE {
                errors.push(FieldError::new(
                    "search",
                    format!(
                        "must be at most {} characters: an event id, a verificationId or a sessionId",
                        super::MAX_SEARCH_VALUE
                    ),
                ));
            } else {
                search.search = Some(text);
            }
        }
        if let Some(text) = given(&self.cursor) {
            search.cursor = EventCursor::parse(&text).map_err(|e| errors.push(e)).ok();
        }
        if errors.is_empty() { Ok(search) } else { Err(errors) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_checked_field_by_field() {
        let query = EventQuery {
            event_type: Some("verification.nope".into()),
            since: Some("yesterday".into()),
            until: None,
            search: Some("x".repeat(201)),
            cursor: Some("nonsense".into()),
        };
        let fields: Vec<String> = query.parse().unwrap_err().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["type", "since", "search", "cursor"]);
        let ok = EventQuery {
            event_type: Some("verification.completed".into()),
            since: Some("2026-01-15T14:30".into()),
            until: Some("2026-01-16T00:00:00Z".into()),
            search: Some("  ver_123 ".into()),
            cursor: Some("1700000000000.evt_abc".into()),
        }
        .parse()
        .unwrap();
        assert_eq!(ok.event_type, Some(EventType::VerificationCompleted));
        assert_eq!(ok.search.as_deref(), Some("ver_123"));
        assert_eq!(ok.cursor, Some(EventCursor { at: 1_700_000_000_000, id: "evt_abc".into() }));
        let backwards = EventQuery {
            since: Some("2026-01-16T00:00".into()),
            until: Some("2026-01-15T00:00".into()),
            ..Default::default()
        };
        assert_eq!(backwards.parse().unwrap_err()[0].field, "until");
    }
}
