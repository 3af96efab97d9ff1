//! Events as receivers see them, and payload templates that reshape them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{EventId, EventType};

/// The default body of a delivery: the event's fields, as the partner docs show them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventBody {
    /// `evt_…`, the same on every attempt and redelivery, so receivers can drop duplicates.
    pub id: EventId,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// Overall result: `success` or `failed`.
    pub status: String,
    /// When it happened; receivers order events by it.
    pub created_at: DateTime<Utc>,
    /// The verification's details.
    pub data: serde_json::Value,
}

impl EventBody {
    /// The sample `verification.completed` event of the docs: what template previews render
    /// (the catalog's example of that type).
    pub fn sample() -> Self {
        EventType::VerificationCompleted.example()
    }
}

/// The most bytes a test event's `data` may take, written as JSON.
pub const MAX_TEST_DATA_BYTES: usize = 64 * 1024;

#[cfg(feature = "ssr")]
impl EventBody {
    /// What "Test Webhook" sends: an event of `event_type` (by default
    /// `verification.completed`) with `data` (by default the catalog's example of that type),
    /// a fresh `evt_test_…` id, created now. Every broken rule is reported; `data` must be a
    /// JSON object of at most 64 KiB.
    pub fn for_test(event_type: Option<&str>, data: Option<serde_json::Value>) -> Result<Self, Vec<super::FieldError>> {
        use super::FieldError;
        let mut errors = Vec::new();
        let event_type = match event_type.map(str::trim).filter(|t| !t.is_empty()) {
            None => Some(EventType::VerificationCompleted),
            Some(name) => EventType::parse(name).map_err(|e| errors.push(FieldError::new("type", e.message))).ok(),
        };
        if let Some(data) = &data {
            if !data.is_object() {
                errors.push(FieldError::new("data", "must be a JSON object, such as the example of the event type"));
            } else if serde_json::to_vec(data).map_or(usize::MAX, |b| b.len()) > MAX_TEST_DATA_BYTES {
                errors.push(FieldError::new(
                    "data",
                    format!("must be at most {} KiB as JSON", MAX_TEST_DATA_BYTES / 1024),
                ));
            }
        }
        match event_type {
            Some(event_type) if errors.is_empty() => {
                let example = event_type.example();
                Ok(Self {
                    id: EventId::parse(&format!("evt_test_{}", ulid::Ulid::new())).expect("a generated id is valid"),
                    created_at: Utc::now(),
                    data: data.unwrap_or(example.data),
                    ..example
                })
            }
            _ => Err(errors),
        }
    }
}

/// The longest `verificationId` or `sessionId` that event search indexes.
pub const MAX_SEARCH_VALUE: usize = 200;

/// `data`'s `verificationId` and `sessionId`, as event search indexes them.
#[cfg(feature = "ssr")]
pub fn search_values(data: &serde_json::Value) -> (Option<String>, Option<String>) {
    let value = |key: &str| {
        let text = match data.get(key)? {
            serde_json::Value::String(s) => s.trim().to_owned(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => return None,
        };
        (!text.is_empty() && text.chars().count() <= MAX_SEARCH_VALUE).then_some(text)
    };
    (value("verificationId"), value("sessionId"))
}

/// An event to publish, checked: what the operator's `POST /api/v1/events` and
/// `portal event publish` make from their input.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Its id: given by the operator or generated (`evt_…`).
    pub id: EventId,
    /// The partner row it happened for: the account the operator names, or, once published to
    /// the sandbox, the account's sandbox row.
    pub partner: super::PartnerId,
    /// The environment it belongs to (`production` unless the operator says otherwise).
    pub environment: super::Environment,
    /// Its type.
    pub event_type: EventType,
    /// `success`, `failed`, …
    pub status: String,
    /// The details: a JSON object.
    pub data: serde_json::Value,
}

#[cfg(feature = "ssr")]
impl NewEvent {
    /// Checks every field and reports every broken rule. Without an id, one is generated;
    /// without an environment, it is production's.
    pub fn parse(
        partner: &str,
        environment: Option<&str>,
        event_type: &str,
        status: &str,
        data: serde_json::Value,
        id: Option<&str>,
    ) -> Result<Self, Vec<super::FieldError>> {
        use super::FieldError;
        let mut errors = Vec::new();
        let environment = environment
            .map_or(Ok(super::Environment::Production), super::Environment::parse)
            .map_err(|e| errors.push(FieldError::new("environment", e)))
            .unwrap_or_default();
        let partner =
            super::PartnerId::parse(partner).map_err(|e| errors.push(FieldError::new("partnerId", e.to_string()))).ok();
        let event_type = EventType::parse(event_type).map_err(|e| errors.push(FieldError::new("type", e.message))).ok();
        let status = status.trim();
        if status.is_empty() || status.len() > 64 || status.chars().any(char::is_control) {
            errors.push(FieldError::new("status", "must be 1 to 64 characters, such as `success` or `failed`"));
        }
        if !data.is_object() {
            errors.push(FieldError::new("data", "must be a JSON object"));
        }
        let id = match id {
            None => Some(EventId::generate()),
            Some(id) => EventId::parse(id).map_err(|e| errors.push(FieldError::new("id", e.to_string()))).ok(),
        };
        match (id, partner, event_type) {
            (Some(id), Some(partner), Some(event_type)) if errors.is_empty() => {
                Ok(Self { id, partner, environment, event_type, status: status.to_owned(), data })
            }
            _ => Err(errors),
        }
    }

    /// The values inside `data` that event search finds it by: `verificationId` and
    /// `sessionId` (strings or numbers, at most [`MAX_SEARCH_VALUE`] characters; longer ones are
    /// not indexed).
    pub fn search_values(&self) -> (Option<String>, Option<String>) {
        search_values(&self.data)
    }

    /// The event as receivers see it, created now.
    pub fn body(&self, created_at: DateTime<Utc>) -> EventBody {
        EventBody {
            id: self.id.clone(),
            event_type: self.event_type,
            status: self.status.clone(),
            created_at,
            data: self.data.clone(),
        }
    }
}

/// What one attempt came to; also the answer of "Test Webhook".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AttemptResult {
    /// A 2xx answer within the time limit.
    pub success: bool,
    /// The receiver's status code, when it answered.
    pub status_code: Option<u16>,
    /// From sending to the end of the answer (or the failure).
    pub latency_ms: i64,
    /// The start of the answer's body (4 KiB at most).
    pub response_body: Option<String>,
    /// Why it failed, in words.
    pub error: Option<String>,
    /// What kind of failure it was when no usable answer came (timeout, connection, refused
    /// target, request not built), for metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<FailureCause>,
    /// How long the receiver asked to be left alone (`Retry-After` on a 429 or 503), seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl AttemptResult {
    /// A failure before any answer came.
    pub fn failed(cause: FailureCause, error: String, latency_ms: i64) -> Self {
        Self {
            success: false,
            status_code: None,
            latency_ms,
            response_body: None,
            error: Some(error),
            cause: Some(cause),
            retry_after_secs: None,
        }
    }

    /// The outcome's class, as metrics count it: `2xx`, `3xx`, `4xx`, `5xx`, or the kind of
    /// failure when there was no answer (`timeout`, `connect_error`, `refused_target`,
    /// `request_error`, `invalid_request`).
    pub fn class(&self) -> &'static str {
        if let Some(cause) = self.cause {
            return cause.as_str();
        }
        match self.status_code {
            Some(200..=299) => "2xx",
            Some(300..=399) => "3xx",
            Some(400..=499) => "4xx",
            Some(500..=599) => "5xx",
            Some(_) => "other_status",
            None => "request_error",
        }
    }
}

/// Why an attempt got no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FailureCause {
    /// No answer within the time limit.
    Timeout,
    /// The connection could not be made (refused, unreachable, TLS, DNS).
    ConnectError,
    /// The target is a loopback, private or metadata address, which deliveries may not reach.
    RefusedTarget,
    /// The request failed another way (the answer broke off, a protocol error).
    RequestError,
    /// The request could not be built (the payload template failed).
    InvalidRequest,
}

impl FailureCause {
    /// The name metrics and the API use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::ConnectError => "connect_error",
            Self::RefusedTarget => "refused_target",
            Self::RequestError => "request_error",
            Self::InvalidRequest => "invalid_request",
        }
    }
}

/// Longest template accepted, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 16 * 1024;
/// Longest body a template may produce, in bytes.
pub const MAX_RENDERED_BYTES: usize = 256 * 1024;

/// A Jinja template (minijinja) that reshapes the JSON body from the event's fields: it sees
/// `id`, `type`, `status`, `createdAt` and `data`, and `event` for the whole event; `tojson`
/// writes a value as JSON. It must render valid JSON, which is checked when it is saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PayloadTemplate(String);

impl PayloadTemplate {
    /// A template read back from the store, which only holds checked ones.
    pub fn from_trusted(text: String) -> Self {
        Self(text)
    }

    /// The template's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(feature = "ssr")]
mod render {
    use minijinja::{AutoEscape, Environment, UndefinedBehavior};

    use crate::domain::FieldError;

    use super::*;

    /// Instructions one render may run: enough for any real reshaping, not for a loop that
    /// would hold a dispatcher thread.
    const FUEL: u64 = 50_000;

    /// Why a template could not produce a body.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[error("{0}")]
    pub struct TemplateError(pub String);

    fn environment() -> Environment<'static> {
        let mut env = Environment::new();
        env.set_fuel(Some(FUEL));
        env.set_auto_escape_callback(|_| AutoEscape::None);
        // A misspelt field is an error, not an empty string in the body.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_recursion_limit(50);
        // `tojson` would write a misspelt field as `null`; say so instead.
        env.add_filter(
            "tojson",
            |value: &minijinja::Value, indent: Option<minijinja::Value>, args: minijinja::value::Kwargs| {
                if value.is_undefined() {
                    return Err(minijinja::Error::new(
                        minijinja::ErrorKind::UndefinedError,
                        "tojson was given an undefined value (is a field name misspelt?)",
                    ));
                }
                minijinja::filters::tojson(value, indent, args)
            },
        );
        env
    }

    fn describe(err: &minijinja::Error) -> String {
        let mut text = err.detail().map_or_else(|| err.kind().to_string(), |d| format!("{}: {d}", err.kind()));
        if let Some(line) = err.line() {
            text = format!("line {line}: {text}");
        }
        text
    }

    /// Output that refuses to grow past [`MAX_RENDERED_BYTES`], so a template that writes too
    /// much stops there instead of building the whole text first.
    struct CappedOutput(Vec<u8>);

    impl std::io::Write for CappedOutput {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.0.len() + buf.len() > MAX_RENDERED_BYTES {
                return Err(std::io::Error::other(format!("renders more than {} KiB", MAX_RENDERED_BYTES / 1024)));
            }
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl PayloadTemplate {
        /// Checks a template's size and syntax. Only the parser runs here: compiling folds
        /// constant expressions (`"x" * 100000000 ~ …`), which could take the process's memory.
        /// Whether it renders JSON is checked by rendering the sample event in the sandbox
        /// (the sandbox's `TemplateSandbox::check`), where compiling and rendering happen.
        pub fn parse(text: &str) -> Result<Self, FieldError> {
            let err = |m: String| FieldError::new("payloadTemplate", m);
            if text.len() > MAX_TEMPLATE_BYTES {
                return Err(err(format!("must be at most {} KiB", MAX_TEMPLATE_BYTES / 1024)));
            }
            minijinja::machinery::parse(text, "payloadTemplate", Default::default(), Default::default())
                .map_err(|e| err(describe(&e)))?;
            Ok(Self(text.to_owned()))
        }

        /// Renders the body for `event` in this thread: valid JSON, written compact (no
        /// whitespace, keys in the order the template wrote them), at most 256 KiB, or an error
        /// that says why. Fuel bounds the instructions but not what one instruction costs (a
        /// string repeated or joined to itself), so nothing on the server's threads calls this:
        /// the sandbox's worker process does, under its memory limit and the sandbox's deadline.
        pub fn render_unguarded(&self, event: &EventBody) -> Result<String, TemplateError> {
            let env = environment();
            let template = env.template_from_str(&self.0).map_err(|e| TemplateError(describe(&e)))?;
            let mut context = serde_json::to_value(event).map_err(|e| TemplateError(e.to_string()))?;
            context["event"] = context.clone();
            let mut output = CappedOutput(Vec::new());
            template.render_captured_to(minijinja::Value::from_serialize(&context), &mut output).map_err(|e| {
                match std::error::Error::source(&e).and_then(|s| s.downcast_ref::<std::io::Error>()) {
                    Some(io) => TemplateError(io.to_string()),
                    None => TemplateError(describe(&e)),
                }
            })?;
            let body = String::from_utf8(output.0).map_err(|e| TemplateError(e.to_string()))?;
            let value = serde_json::from_str::<serde_json::Value>(&body)
                .map_err(|e| TemplateError(format!("does not render valid JSON ({e})")))?;
            // Sent compact, keys in the template's order: what a receiver that signs
            // `JSON.stringify(req.body)` again computes (seed 004's check) matches the bytes sent.
            serde_json::to_string(&value).map_err(|e| TemplateError(e.to_string()))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn reshapes_the_event() {
            let template = PayloadTemplate::parse(
                r#"{"kind": {{ type|tojson }}, "verification": {{ data.verificationId|tojson }}, "score": {{ data.formattedData.verificationScore }}, "at": {{ createdAt|tojson }}}"#,
            )
            .unwrap();
            let body: serde_json::Value =
                serde_json::from_str(&template.render_unguarded(&EventBody::sample()).unwrap()).unwrap();
            assert_eq!(body["kind"], "verification.completed");
            assert_eq!(body["verification"], "ver_abc123");
            assert_eq!(body["score"], 95);
            assert_eq!(body["at"], "2024-01-15T14:30:00Z");
        }

        #[test]
        fn the_whole_event_is_there_too() {
            let template = PayloadTemplate::parse(r#"{"wrapped": {{ event|tojson }}}"#).unwrap();
            let body: serde_json::Value =
                serde_json::from_str(&template.render_unguarded(&EventBody::sample()).unwrap()).unwrap();
            assert_eq!(body["wrapped"]["id"], "evt_test_0000000000000000000000");
        }

        /// Why `text` is refused: at parsing, or when it renders the sample event.
        fn error(text: &str) -> String {
            match PayloadTemplate::parse(text) {
                Err(err) => {
                    assert_eq!(err.field, "payloadTemplate");
                    err.message
                }
                Ok(template) => template.render_unguarded(&EventBody::sample()).unwrap_err().0,
            }
        }

        #[test]
        fn refuses_bad_templates_with_the_line() {
            assert!(error("{\n  \"a\": {{ id \n}").contains("line"), "syntax errors name the line");
            assert!(error(r#"{"a": {{ nosuchfield|tojson }}}"#).contains("undefined"));
            assert!(error("not json at all").contains("valid JSON"));
            assert!(error(r#"{"a": {{ id }}}"#).contains("valid JSON"), "an unquoted string is not JSON");
            assert!(error("").contains("valid JSON"));
        }

        #[test]
        fn limits_size_and_work() {
            assert!(error(&format!("{{\"a\": \"{}\"}}", "x".repeat(MAX_TEMPLATE_BYTES))).contains("at most 16 KiB"));
            let endless = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}{}";
            assert!(error(endless).contains("fuel"), "{}", error(endless));
            let huge = r#"{"a": "{% for i in range(9000) %}{{ "x" * 100 }}{% endfor %}"}"#;
            let message = error(huge);
            assert!(message.contains("256 KiB") || message.contains("fuel"), "{message}");
        }
    }
}

#[cfg(feature = "ssr")]
pub use render::TemplateError;
