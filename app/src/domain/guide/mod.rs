//! The integration guide's code: how to receive and verify one webhook's deliveries, in each
//! language a partner is likely to use, filled in with that webhook's path, auth header name
//! and event types. The secret never appears: every snippet reads it from `WEBHOOK_SECRET`.
//!
//! Each snippet is a template (the `*.txt` files beside this one) with `@NAME@` holes, and lines
//! starting with `?auth ` that are kept (without the mark) only when the webhook sends an auth
//! header. The test suite runs the Node.js and Python ones against real deliveries and compiles
//! the Rust one (`server/examples/receive_webhooks.rs` is its output for [`GuideFor::example`]).

use super::EventType;

/// One language's receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// A short key: `node`, `python`, `go`, `ruby`, `php`, `java`, `rust`.
    pub key: &'static str,
    /// What a partner looks for: "Node.js (express)".
    pub label: &'static str,
    /// The file name the code is written for.
    pub file: &'static str,
    /// The code, ready to copy.
    pub code: String,
}

/// What the snippets are filled in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuideFor {
    /// The path the webhook's URL ends in (the route to serve); `/webhooks` when the URL's path
    /// has characters some router would read as a pattern.
    pub path: String,
    /// The name of the header the webhook sends with its own value, when it has one.
    pub auth_header: Option<String>,
    /// The event types the webhook takes.
    pub event_types: Vec<EventType>,
}

/// Each language: key, label, file name, template, and how one event type's branch is written
/// (`@TYPE@`, `@DESCRIPTION@`).
const LANGUAGES: [(&str, &str, &str, &str, &str); 7] = [
    (
        "node",
        "Node.js (express)",
        "server.js",
        include_str!("node.js.txt"),
        "    case \"@TYPE@\": // @DESCRIPTION@\n      console.log(`received ${event.type} ${event.id}`);\n      break;",
    ),
    (
        "python",
        "Python (Flask)",
        "receiver.py",
        include_str!("flask.py.txt"),
        "        case \"@TYPE@\":  # @DESCRIPTION@\n            print(f\"received {event['type']} {event['id']}\", flush=True)",
    ),
    (
        "go",
        "Go (net/http)",
        "main.go",
        include_str!("go.go.txt"),
        "\tcase \"@TYPE@\": // @DESCRIPTION@\n\t\tlog.Printf(\"received %s %s\", event.Type, event.ID)",
    ),
    (
        "ruby",
        "Ruby (Sinatra)",
        "receiver.rb",
        include_str!("sinatra.rb.txt"),
        "  when \"@TYPE@\" # @DESCRIPTION@\n    puts \"received #{event[\"type\"]} #{event[\"id\"]}\"",
    ),
    (
        "php",
        "PHP",
        "receiver.php",
        include_str!("plain.php.txt"),
        "        case '@TYPE@': // @DESCRIPTION@\n            error_log(\"received {$event['type']} {$event['id']}\");\n            break;",
    ),
    (
        "java",
        "Java (Spring Boot)",
        "WebhookReceiver.java",
        include_str!("spring.java.txt"),
        "            // @DESCRIPTION@\n            case \"@TYPE@\" -> System.out.println(\"received \" + event.path(\"type\").asText() + \" \" + event.path(\"id\").asText());",
    ),
    (
        "rust",
        "Rust (axum)",
        "main.rs",
        include_str!("axum.rs.txt"),
        "        // @DESCRIPTION@\n        \"@TYPE@\" => println!(\"received @TYPE@ {id}\"),",
    ),
];

/// The path snippets serve when the webhook's own has characters a router reads as a pattern.
pub const FALLBACK_PATH: &str = "/webhooks";

impl GuideFor {
    /// The guide for a webhook at `url` (its path is the route), with this auth header and
    /// these event types (`None`: all).
    pub fn new(url: &str, auth_header: Option<&str>, event_types: Option<&[String]>) -> Self {
        let path = url::Url::parse(url).map(|u| u.path().to_owned()).unwrap_or_default();
        let plain = |c: char| c.is_ascii_alphanumeric() || "/_.~-".contains(c);
        let path = if path.starts_with('/') && path.len() > 1 && path.chars().all(plain) && !path.contains("//") {
            path
        } else {
            FALLBACK_PATH.to_owned()
        };
        let event_types = match event_types {
            Some(names) => EventType::ALL.into_iter().filter(|t| names.iter().any(|n| n == t.as_str())).collect(),
            None => EventType::ALL.to_vec(),
        };
        Self { path, auth_header: auth_header.map(str::to_owned), event_types }
    }

    /// The webhook whose Rust snippet `server/examples/receive_webhooks.rs` holds.
    pub fn example() -> Self {
        Self {
            path: "/hooks/verifications".into(),
            auth_header: Some("X-Partner-Key".into()),
            event_types: EventType::ALL.to_vec(),
        }
    }
}

/// Every language's receiver for `guide`, in the order the page shows them.
pub fn snippets(guide: &GuideFor) -> Vec<Snippet> {
    LANGUAGES
        .iter()
        .map(|&(key, label, file, template, case)| Snippet { key, label, file, code: fill(template, case, guide) })
        .collect()
}

fn fill(template: &str, case: &str, guide: &GuideFor) -> String {
    let cases: Vec<String> = guide
        .event_types
        .iter()
        .map(|t| case.replace("@TYPE@", t.as_str()).replace("@DESCRIPTION@", &first_sentence(t.description())))
        .collect();
    let header = guide.auth_header.as_deref().unwrap_or_default();
    let run_auth = if guide.auth_header.is_some() { "WEBHOOK_AUTH_VALUE='…' " } else { "" };
    let mut out = String::with_capacity(template.len() + 512);
    for line in template.lines() {
        let line = match line.strip_prefix("?auth") {
            Some(_) if guide.auth_header.is_none() => continue,
            Some(rest) => rest.strip_prefix(' ').unwrap_or(rest),
            None => line,
        };
        if line == "@CASES@" {
            out.push_str(&cases.join("\n"));
        } else {
            out.push_str(
                &line
                    .replace("@PATH@", &guide.path)
                    .replace("@RUN_AUTH@", run_auth)
                    // A header name is an HTTP token: no `"` or `\`, so a double-quoted literal
                    // needs no escape in the languages that use it; Ruby and PHP get single quotes.
                    .replace("@AUTH_HEADER@", &format!("\"{header}\""))
                    .replace(
                        "@AUTH_RACK@",
                        &single_quoted(&format!("HTTP_{}", header.to_uppercase().replace('-', "_"))),
                    )
                    .replace("@AUTH_LOWER_SINGLE@", &single_quoted(&header.to_lowercase())),
            );
        }
        out.push('\n');
    }
    out
}

/// A single-quoted literal (Ruby, PHP): `'` and `\` escaped.
fn single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The first sentence of a description, on one line, for a comment.
fn first_sentence(text: &str) -> String {
    let end = text.find(". ").map(|i| i + 1).unwrap_or(text.len());
    text[..end].split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_snippet_is_filled_in_for_the_webhook() {
        let guide = GuideFor::new(
            "https://partner.example/hooks/kyc?x=1",
            Some("X-Partner-Key"),
            Some(&["verification.failed".to_owned()]),
        );
        assert_eq!(guide.path, "/hooks/kyc");
        for snippet in snippets(&guide) {
            let code = &snippet.code;
            assert!(!has_hole(code), "{}: a hole left in\n{code}", snippet.key);
            assert!(!code.contains("?auth"), "{}", snippet.key);
            assert!(code.contains("/hooks/kyc"), "{}: the route is the webhook's path", snippet.key);
            assert!(code.contains("verification.failed"), "{}", snippet.key);
            assert!(!code.contains("verification.completed\""), "{}: only the types it takes", snippet.key);
            assert!(code.contains("WEBHOOK_SECRET") && code.contains("WEBHOOK_AUTH_VALUE"), "{}", snippet.key);
            assert!(code.contains("x-webhook-signature") || code.contains("X_WEBHOOK_SIGNATURE"), "{}", snippet.key);
            assert!(code.contains("webhook-id"), "{}: drops duplicates", snippet.key);
            let header = ["X-Partner-Key", "HTTP_X_PARTNER_KEY", "x-partner-key"];
            assert!(header.iter().any(|h| code.contains(h)), "{}: checks the auth header", snippet.key);
        }
    }

    /// An `@NAME@` left unfilled.
    fn has_hole(code: &str) -> bool {
        let pieces: Vec<&str> = code.split('@').collect();
        pieces.len() > 2
            && pieces[1..pieces.len() - 1]
                .iter()
                .any(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
    }

    #[test]
    fn without_an_auth_header_no_snippet_checks_one() {
        let guide = GuideFor::new("https://partner.example/in", None, None);
        for snippet in snippets(&guide) {
            assert!(!snippet.code.contains("WEBHOOK_AUTH_VALUE"), "{}\n{}", snippet.key, snippet.code);
            assert!(!snippet.code.contains("wrong auth header"), "{}", snippet.key);
            for t in EventType::ALL {
                assert!(snippet.code.contains(t.as_str()), "{}: every type when it takes all", snippet.key);
            }
        }
    }

    #[test]
    fn paths_a_router_would_misread_fall_back() {
        for url in ["https://p.example/", "https://p.example/a/:id", "https://p.example/a/{x}", "https://p.example/a*"]
        {
            assert_eq!(GuideFor::new(url, None, None).path, FALLBACK_PATH, "{url}");
        }
        assert_eq!(GuideFor::new("https://p.example/a-b/c_d.e~f", None, None).path, "/a-b/c_d.e~f");
    }

    #[test]
    fn quotes_in_a_header_name_stay_inside_the_literal() {
        let guide = GuideFor::new("https://p.example/in", Some("X-It's"), None);
        let ruby = snippets(&guide).into_iter().find(|s| s.key == "ruby").unwrap().code;
        assert!(ruby.contains(r"request.env['HTTP_X_IT\'S']"), "{ruby}");
        let php = snippets(&guide).into_iter().find(|s| s.key == "php").unwrap().code;
        assert!(php.contains(r"$headers['x-it\'s']"), "{php}");
    }
}
