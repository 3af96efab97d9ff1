//! The event catalog: for each event type, when it fires, a JSON Schema of the body a receiver
//! gets and an example of it. One source for the `/event-types` page, `GET /api/v1/event-types`,
//! the OpenAPI document's `webhooks` section and what "Test Webhook" sends by default.

use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{EventBody, EventId, EventType};

/// One entry of the catalog, as the API answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EventTypeDoc {
    /// The type's name, as in the body's `type`.
    #[serde(rename = "type")]
    #[cfg_attr(feature = "ssr", schema(example = "verification.completed"))]
    pub event_type: String,
    /// When the platform sends it.
    pub description: String,
    /// A JSON Schema (2020-12) of the whole body a receiver gets.
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub schema: Value,
    /// An example body of this type.
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub example: Value,
}

/// Every type of the catalog, in the order the docs list them.
pub fn catalog() -> Vec<EventTypeDoc> {
    EventType::ALL
        .into_iter()
        .map(|t| EventTypeDoc {
            event_type: t.as_str().to_owned(),
            description: t.description().to_owned(),
            schema: t.schema(),
            example: serde_json::to_value(t.example()).expect("an event body is JSON"),
        })
        .collect()
}

impl EventType {
    /// When the platform sends an event of this type.
    pub fn description(self) -> &'static str {
        match self {
            Self::VerificationCompleted => {
                "A verification finished and its data was verified. `data.status` is `VERIFIED`; \
                 `data.proofData` holds what the source returned and `data.formattedData` the \
                 results, ready to use."
            }
            Self::VerificationFailed => {
                "A verification ended without verifying the data (the source refused it, a \
                 document could not be read, the data did not match). `data.status` is `FAILED` \
                 and `data.failure` says why."
            }
            Self::VerificationExpired => {
                "A verification was started but not finished before its session expired. \
                 `data.status` is `EXPIRED`; `data.metadata.expiredAt` says when."
            }
            Self::ReviewCompleted => {
                "A person finished the manual review of a verification. `data.status` is \
                 `APPROVED` or `REJECTED`, with the reviewer's note."
            }
        }
    }

    /// The body's overall `status` for this type's usual outcome.
    pub fn usual_status(self) -> &'static str {
        match self {
            Self::VerificationCompleted | Self::ReviewCompleted => "success",
            Self::VerificationFailed | Self::VerificationExpired => "failed",
        }
    }

    /// An example body of this type: what "Test Webhook" sends unless the partner edits it,
    /// and (for `verification.completed`, the docs' own example) what template previews render.
    pub fn example(self) -> EventBody {
        let at = |h, m| Utc.with_ymd_and_hms(2024, 1, 15, h, m, 0).single().expect("a valid date");
        let (created_at, data) = match self {
            Self::VerificationCompleted => (
                at(14, 30),
                json!({
                    "verificationId": "ver_abc123",
                    "sessionId": 123,
                    "stepId": 456,
                    "status": "VERIFIED",
                    "proofData": { "income": { "monthlyAmount": 5000, "verified": true, "source": "chase-bank" } },
                    "formattedData": { "incomeVerified": true, "verificationScore": 95 },
                    "metadata": { "dataSource": "chase-bank", "processingTimeMs": 15000, "verifiedAt": "2024-01-15T14:30:00Z" }
                }),
            ),
            Self::VerificationFailed => (
                at(14, 32),
                json!({
                    "verificationId": "ver_def456",
                    "sessionId": 124,
                    "stepId": 457,
                    "status": "FAILED",
                    "failure": { "code": "DATA_MISMATCH", "message": "The income on the statement does not match the income declared." },
                    "proofData": {},
                    "formattedData": { "incomeVerified": false },
                    "metadata": { "dataSource": "chase-bank", "processingTimeMs": 9000, "failedAt": "2024-01-15T14:32:00Z" }
                }),
            ),
            Self::VerificationExpired => (
                at(14, 35),
                json!({
                    "verificationId": "ver_ghi789",
                    "sessionId": 125,
                    "stepId": 458,
                    "status": "EXPIRED",
                    "proofData": {},
                    "formattedData": {},
                    "metadata": { "startedAt": "2024-01-14T14:35:00Z", "expiredAt": "2024-01-15T14:35:00Z" }
                }),
            ),
            Self::ReviewCompleted => (
                at(16, 5),
                json!({
                    "verificationId": "ver_abc123",
                    "sessionId": 123,
                    "reviewId": "rev_789",
                    "status": "APPROVED",
                    "note": "Income confirmed against two statements.",
                    "metadata": { "reviewedAt": "2024-01-15T16:05:00Z" }
                }),
            ),
        };
        EventBody {
            id: EventId::parse("evt_test_0000000000000000000000").expect("a valid event id"),
            event_type: self,
            status: self.usual_status().to_owned(),
            created_at,
            data,
        }
    }

    /// A JSON Schema (2020-12) of the whole body of this type. Receivers may get fields the
    /// schema does not name (the platform adds fields, never removes or retypes them).
    pub fn schema(self) -> Value {
        let text = |description: &str| json!({ "type": "string", "description": description });
        let object = |description: &str| json!({ "type": "object", "description": description });
        let mut data = serde_json::Map::new();
        data.insert("verificationId".into(), text("Unique identifier for this verification (`ver_…`)."));
        data.insert(
            "sessionId".into(),
            json!({ "type": "integer", "description": "Your session ID from when you created the verification." }),
        );
        let mut required = vec!["verificationId", "sessionId", "status"];
        let statuses: &[&str] = match self {
            Self::VerificationCompleted => &["VERIFIED"],
            Self::VerificationFailed => &["FAILED"],
            Self::VerificationExpired => &["EXPIRED"],
            Self::ReviewCompleted => &["APPROVED", "REJECTED"],
        };
        if self != Self::ReviewCompleted {
            data.insert(
                "stepId".into(),
                json!({ "type": "integer", "description": "The step of the session that ran the verification." }),
            );
            data.insert("proofData".into(), object("Raw verification data from the source."));
            data.insert("formattedData".into(), object("Processed, ready-to-use verification results."));
        }
        data.insert(
            "status".into(),
            json!({ "type": "string", "enum": statuses, "description": "Detailed verification status." }),
        );
        match self {
            Self::VerificationFailed => {
                data.insert(
                    "failure".into(),
                    json!({
                        "type": "object",
                        "description": "Why the verification failed.",
                        "properties": {
                            "code": { "type": "string", "description": "A stable code, such as `DATA_MISMATCH` or `DOCUMENT_UNREADABLE`." },
                            "message": { "type": "string", "description": "What happened, in words." }
                        },
                        "required": ["code", "message"]
                    }),
                );
                required.push("failure");
            }
            Self::ReviewCompleted => {
                data.insert("reviewId".into(), text("Unique identifier for this review (`rev_…`)."));
                data.insert("note".into(), text("What the reviewer wrote."));
                required.push("reviewId");
            }
            Self::VerificationCompleted | Self::VerificationExpired => {}
        }
        data.insert("metadata".into(), object("Additional information about the verification process."));
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": self.as_str(),
            "description": self.description(),
            "type": "object",
            "properties": {
                "id": { "type": "string", "pattern": "^evt_", "description": "The event's id, the same on every attempt and redelivery: use it to drop duplicates." },
                "type": { "const": self.as_str() },
                "status": { "type": "string", "description": "Overall result: `success` or `failed`.", "examples": ["success", "failed"] },
                "createdAt": { "type": "string", "format": "date-time", "description": "When it happened; order events by it." },
                "data": { "type": "object", "properties": data, "required": required }
            },
            "required": ["id", "type", "status", "createdAt", "data"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_an_entry_whose_example_is_of_that_type_and_has_every_required_field() {
        let entries = catalog();
        assert_eq!(entries.len(), EventType::ALL.len());
        for entry in entries {
            assert_eq!(entry.example["type"], entry.event_type.as_str());
            assert_eq!(entry.schema["properties"]["type"]["const"], entry.event_type.as_str());
            for field in entry.schema["required"].as_array().unwrap() {
                assert!(entry.example.get(field.as_str().unwrap()).is_some(), "{} lacks {field}", entry.event_type);
            }
            for field in entry.schema["properties"]["data"]["required"].as_array().unwrap() {
                assert!(
                    entry.example["data"].get(field.as_str().unwrap()).is_some(),
                    "{}'s data lacks {field}",
                    entry.event_type
                );
            }
            let statuses = entry.schema["properties"]["data"]["properties"]["status"]["enum"].as_array().unwrap();
            assert!(statuses.contains(&entry.example["data"]["status"]), "{}", entry.event_type);
        }
    }
}
