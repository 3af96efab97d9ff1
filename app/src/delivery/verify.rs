//! The signature checker: a request as a receiver got it (headers and body), checked against a
//! webhook's secrets the way a receiver checks it, and, when a check fails, the likeliest reason:
//! another secret, a body that was re-serialised, a timestamp outside the tolerance, a missing
//! or malformed header.

use super::sign::{hex_signature, standard_signature};
use crate::domain::{
    CheckOutcome, EventBody, SignatureCheck, SignatureReport, SigningSecret, TIMESTAMP_TOLERANCE_SECS,
};

/// One of the webhook's secrets, and how the report names it.
#[derive(Debug, Clone, Copy)]
pub struct NamedSecret<'a> {
    /// "the current secret", "the previous secret".
    pub name: &'a str,
    /// The secret.
    pub secret: &'a SigningSecret,
}

/// How each check went, and why the request fails when it does. `now` is the time (Unix
/// seconds) `webhook-timestamp` is held against: the time of checking, or when a logged
/// attempt was sent.
pub fn check(secrets: &[NamedSecret<'_>], headers: &[(String, String)], body: &str, now: i64) -> SignatureReport {
    let header = |name: &str| headers.iter().find(|(n, _)| n.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim());
    let variants = variants(body);
    let mut reserialised = None;

    let hex = match header("x-webhook-signature") {
        None => missing("x-webhook-signature", "The request has no x-webhook-signature header."),
        Some(value) if value.len() != 64 || !value.chars().all(|c| c.is_ascii_hexdigit()) => outcome(
            "x-webhook-signature",
            CheckOutcome::Malformed,
            format!(
                "x-webhook-signature must be 64 hexadecimal digits (an HMAC-SHA256); it holds {} characters.",
                value.chars().count()
            ),
        ),
        Some(value) => {
            let value = value.to_ascii_lowercase();
            let signs = |secret: &SigningSecret, body: &str| hex_signature(secret, body.as_bytes()) == value;
            judge("x-webhook-signature", secrets, body, &variants, signs, &mut reserialised)
        }
    };

    let timestamp = header("webhook-timestamp");
    let standard = match (header("webhook-signature"), header("webhook-id"), timestamp) {
        (None, _, _) => missing("webhook-signature", "The request has no webhook-signature header."),
        (Some(_), None, _) => {
            missing("webhook-signature", "webhook-signature is signed over webhook-id, and the request has none.")
        }
        (Some(_), Some(_), None) => missing(
            "webhook-signature",
            "webhook-signature is signed over webhook-timestamp, and the request has none.",
        ),
        (Some(signatures), Some(id), Some(timestamp)) => {
            let entries: Vec<&str> = signatures.split_whitespace().collect();
            match timestamp.parse::<i64>() {
                _ if !entries.iter().any(|e| e.starts_with("v1,")) => outcome(
                    "webhook-signature",
                    CheckOutcome::Malformed,
                    "webhook-signature must hold one or more `v1,` and a base64 signature, separated by spaces.".into(),
                ),
                Err(_) => outcome(
                    "webhook-signature",
                    CheckOutcome::Malformed,
                    "webhook-signature can't be checked: webhook-timestamp is not a whole number of seconds.".into(),
                ),
                Ok(seconds) => {
                    let signs = |secret: &SigningSecret, body: &str| {
                        let expected = standard_signature(secret, id, seconds, body.as_bytes());
                        entries.iter().any(|e| *e == expected)
                    };
                    judge("webhook-signature", secrets, body, &variants, signs, &mut reserialised)
                }
            }
        }
    };

    let timing = match timestamp {
        None => missing("webhook-timestamp", "The request has no webhook-timestamp header."),
        Some(text) => match text.parse::<i64>() {
            Err(_) => outcome(
                "webhook-timestamp",
                CheckOutcome::Malformed,
                "webhook-timestamp must be a whole number of seconds since 1970.".into(),
            ),
            Ok(sent) if (now - sent).abs() <= TIMESTAMP_TOLERANCE_SECS => outcome(
                "webhook-timestamp",
                CheckOutcome::Pass,
                format!("Sent {} of checking: within the 5 minutes receivers allow.", distance(now - sent)),
            ),
            Ok(sent) => outcome(
                "webhook-timestamp",
                CheckOutcome::Fail,
                format!(
                    "Sent {} of checking: outside the 5 minutes receivers allow, so a Standard Webhooks library refuses it.",
                    distance(now - sent)
                ),
            ),
        },
    };

    let valid = hex.outcome == CheckOutcome::Pass || standard.outcome == CheckOutcome::Pass;
    let checks = vec![hex, standard, timing];
    let likely_cause = cause(&checks, valid, reserialised);
    SignatureReport { valid, checks, likely_cause }
}

/// A signature check: passes with a secret over the body as given; else fails, saying so when
/// it would pass over a re-serialised form of the body (kept in `reserialised`).
fn judge(
    name: &str,
    secrets: &[NamedSecret<'_>],
    body: &str,
    variants: &[(&'static str, String)],
    signs: impl Fn(&SigningSecret, &str) -> bool,
    reserialised: &mut Option<&'static str>,
) -> SignatureCheck {
    if let Some(secret) = secrets.iter().find(|s| signs(s.secret, body)) {
        return outcome(name, CheckOutcome::Pass, format!("Matches this body, signed with {}.", secret.name));
    }
    for (how, variant) in variants {
        if let Some(secret) = secrets.iter().find(|s| signs(s.secret, variant)) {
            reserialised.get_or_insert(*how);
            return outcome(
                name,
                CheckOutcome::Fail,
                format!("Does not match this body, but matches the same JSON {how}, signed with {}.", secret.name),
            );
        }
    }
    outcome(name, CheckOutcome::Fail, "Matches this body with none of this webhook's secrets.".into())
}

/// The body as a receiver's code may have changed it before checking: each form that differs.
fn variants(body: &str) -> Vec<(&'static str, String)> {
    let mut forms: Vec<(&'static str, String)> = Vec::new();
    let mut add = |how: &'static str, text: String| {
        if text != body && !forms.iter().any(|(_, t)| *t == text) {
            forms.push((how, text));
        }
    };
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(body) {
        if let Ok(event) = serde_json::from_value::<EventBody>(value.clone()) {
            add("written compact in the portal's key order", serde_json::to_string(&event).unwrap_or_default());
        }
        add("written compact, without spaces or line breaks", serde_json::to_string(&value).unwrap_or_default());
    }
    add("without the whitespace around it", body.trim().to_owned());
    add("with its \\r\\n line ends as \\n", body.replace("\r\n", "\n"));
    forms
}

/// The likeliest reason a request fails, from what failed; `None` when every check passed.
fn cause(checks: &[SignatureCheck], valid: bool, reserialised: Option<&'static str>) -> Option<String> {
    let [hex, standard, timing] = checks else { return None };
    if checks.iter().all(|c| c.outcome == CheckOutcome::Pass) {
        return None;
    }
    if let Some(how) = reserialised {
        return Some(format!(
            "The body was re-serialised: the signature matches the same JSON {how}. Your code (or its framework) \
             parsed the body and wrote it again before checking. Check the raw bytes exactly as received, and \
             parse the JSON only after (express.raw, request.get_data(), io.ReadAll)."
        ));
    }
    if hex.outcome == CheckOutcome::Missing && standard.outcome == CheckOutcome::Missing {
        return Some(
            "The request carries none of the portal's signature headers: a proxy or your framework dropped them, \
             or it did not come from the portal."
                .into(),
        );
    }
    if let Some(bad) = checks.iter().find(|c| c.outcome == CheckOutcome::Malformed) {
        return Some(format!(
            "{} is not in its form: it was cut or changed on the way, or copied in part. {}",
            bad.check, bad.detail
        ));
    }
    if !valid {
        return Some(
            "No secret of this webhook signs this body: it was changed after signing (whitespace, key order, number \
             formatting, an encoding), or it was signed with another secret: another webhook's, or one rotated out \
             more than 24 hours ago. Reveal this webhook's secret and check your receiver uses exactly that one."
                .into(),
        );
    }
    if timing.outcome == CheckOutcome::Fail {
        return Some(
            "The signature is genuine, but the request was checked more than 5 minutes from when it was sent: a \
             queue or a replay before checking, or a clock that is off. Check each request when it arrives, and \
             keep your server's clock in sync (NTP)."
                .into(),
        );
    }
    let failed = checks.iter().find(|c| c.outcome != CheckOutcome::Pass)?;
    Some(format!(
        "{} passes but {} does not: a proxy or your framework dropped or changed it on the way. Either signature \
         is enough to trust the request.",
        if hex.outcome == CheckOutcome::Pass { &hex.check } else { &standard.check },
        failed.check
    ))
}

fn outcome(check: &str, outcome: CheckOutcome, detail: String) -> SignatureCheck {
    SignatureCheck { check: check.to_owned(), outcome, detail }
}

fn missing(check: &str, detail: &str) -> SignatureCheck {
    outcome(check, CheckOutcome::Missing, detail.to_owned())
}

/// "12 s before", "3 min 5 s after".
fn distance(before: i64) -> String {
    let side = if before >= 0 { "before" } else { "after" };
    let secs = before.unsigned_abs();
    let words = if secs < 60 { format!("{secs} s") } else { format!("{} min {} s", secs / 60, secs % 60) };
    format!("{words} {side} the time")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_950_400;

    fn secret(text: &str) -> SigningSecret {
        SigningSecret::from_trusted(format!("whsec_{text}"))
    }

    /// The headers the portal sends for `body` at `sent`, signed with `secret`.
    fn signed(secret: &SigningSecret, body: &str, sent: i64) -> Vec<(String, String)> {
        vec![
            ("X-Webhook-Signature".into(), hex_signature(secret, body.as_bytes())),
            ("webhook-id".into(), "evt_1".into()),
            ("webhook-timestamp".into(), sent.to_string()),
            ("webhook-signature".into(), standard_signature(secret, "evt_1", sent, body.as_bytes())),
        ]
    }

    fn outcomes(report: &SignatureReport) -> Vec<CheckOutcome> {
        report.checks.iter().map(|c| c.outcome).collect()
    }

    fn current(s: &SigningSecret) -> Vec<NamedSecret<'_>> {
        vec![NamedSecret { name: "the current secret", secret: s }]
    }

    #[test]
    fn a_request_as_sent_passes_every_check() {
        let key = secret("C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
        let body = r#"{"id":"evt_1","type":"verification.completed"}"#;
        let report = check(&current(&key), &signed(&key, body, NOW - 3), body, NOW);
        assert!(report.valid);
        assert_eq!(outcomes(&report), [CheckOutcome::Pass; 3]);
        assert_eq!(report.likely_cause, None);
        assert!(report.checks[0].detail.contains("the current secret"));
    }

    #[test]
    fn a_rotated_secret_is_named() {
        let (old, new) = (secret("b2xk"), secret("bmV3"));
        let body = "{}";
        let secrets = [
            NamedSecret { name: "the current secret", secret: &new },
            NamedSecret { name: "the previous secret", secret: &old },
        ];
        let report = check(&secrets, &signed(&old, body, NOW), body, NOW);
        assert!(report.valid);
        assert!(report.checks[0].detail.contains("the previous secret"), "{report:?}");
        let report = check(&current(&new), &signed(&old, body, NOW), body, NOW);
        assert!(!report.valid);
        assert!(report.likely_cause.unwrap().contains("another secret"));
    }

    #[test]
    fn a_body_written_again_is_called_re_serialised() {
        let key = secret("a2V5");
        let event = EventBody::sample();
        let sent = serde_json::to_string(&event).unwrap();
        let headers = signed(&key, &sent, NOW);
        // Pretty-printed, then keys sorted (what many JSON libraries do).
        let value: serde_json::Value = serde_json::from_str(&sent).unwrap();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let report = check(&current(&key), &headers, &pretty, NOW);
        assert!(!report.valid);
        assert_eq!(outcomes(&report), [CheckOutcome::Fail, CheckOutcome::Fail, CheckOutcome::Pass]);
        let cause = report.likely_cause.unwrap();
        assert!(cause.contains("re-serialised") && cause.contains("raw bytes"), "{cause}");
        let sorted: std::collections::BTreeMap<String, serde_json::Value> = serde_json::from_str(&sent).unwrap();
        let report = check(&current(&key), &headers, &serde_json::to_string(&sorted).unwrap(), NOW);
        assert!(report.checks[0].detail.contains("in the portal's key order"), "{report:?}");
        // A trailing newline added by a copy.
        let report = check(&current(&key), &headers, &format!("{sent}\n"), NOW);
        assert!(report.likely_cause.unwrap().contains("re-serialised"));
    }

    #[test]
    fn a_changed_body_is_not_called_re_serialised() {
        let key = secret("a2V5");
        let headers = signed(&key, r#"{"amount":1}"#, NOW);
        let report = check(&current(&key), &headers, r#"{"amount":2}"#, NOW);
        assert!(!report.valid);
        assert!(report.likely_cause.unwrap().starts_with("No secret of this webhook signs this body"));
    }

    #[test]
    fn an_old_timestamp_fails_only_the_timing() {
        let key = secret("a2V5");
        let report = check(&current(&key), &signed(&key, "{}", NOW - 3600), "{}", NOW);
        assert!(report.valid, "the signature itself is genuine");
        assert_eq!(outcomes(&report), [CheckOutcome::Pass, CheckOutcome::Pass, CheckOutcome::Fail]);
        assert!(report.checks[2].detail.contains("60 min 0 s before"), "{report:?}");
        assert!(report.likely_cause.unwrap().contains("more than 5 minutes"));
    }

    #[test]
    fn missing_and_malformed_headers_are_named() {
        let key = secret("a2V5");
        let report = check(&current(&key), &[], "{}", NOW);
        assert_eq!(outcomes(&report), [CheckOutcome::Missing; 3]);
        assert!(report.likely_cause.unwrap().contains("none of the portal's signature headers"));

        let mut headers = signed(&key, "{}", NOW);
        headers[0].1.truncate(20);
        let report = check(&current(&key), &headers, "{}", NOW);
        assert_eq!(report.checks[0].outcome, CheckOutcome::Malformed);
        assert!(report.valid, "webhook-signature still passes");
        assert!(report.likely_cause.unwrap().starts_with("x-webhook-signature is not in its form"));

        let mut headers = signed(&key, "{}", NOW);
        headers.retain(|(n, _)| n != "webhook-id");
        let report = check(&current(&key), &headers, "{}", NOW);
        assert_eq!(report.checks[1].outcome, CheckOutcome::Missing);
        assert!(report.checks[1].detail.contains("webhook-id"));
        assert!(report.likely_cause.unwrap().contains("webhook-signature does not"), "the other one passes");
    }
}
