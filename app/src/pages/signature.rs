//! `/tools/signature`: the signature checker. A partner pastes what their endpoint received
//! (or opens it from a logged attempt, `?attempt=att_…`) and sees which check passes, which
//! fails, and the likely cause.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api::{CheckSignature, check_attempt_signature, list_webhooks};
use crate::components::SignedIn;
use crate::domain::{CheckOutcome, SignatureReport};
use crate::error::AppError;

/// The form, and the report of the last check.
#[component]
pub fn SignatureCheckerPage() -> impl IntoView {
    let query = use_query_map();
    let attempt = move || query.read().get("attempt").filter(|a| !a.trim().is_empty());
    let webhooks = Resource::new(|| (), |_| list_webhooks());
    let from_attempt = Resource::new(attempt, |attempt| async move {
        match attempt {
            Some(id) => Some(check_attempt_signature(id).await),
            None => None,
        }
    });
    let check = ServerAction::<CheckSignature>::new();
    let pending = check.pending();
    view! {
        <SignedIn title="Signature checker">
            <h1>"Signature checker"</h1>
            <p class="lead">
                "Paste a request your endpoint received to see which signature checks pass, and why one fails: another secret, a body that was re-serialised, a timestamp outside the 5-minute tolerance, a missing header. Nothing is sent anywhere."
            </p>
            <Transition fallback=|| ()>
                {move || {
                    from_attempt
                        .get()
                        .flatten()
                        .map(|answer| {
                            let heading = format!(
                                "Attempt {}, as it was sent",
                                attempt().unwrap_or_default(),
                            );
                            view! {
                                <section class="card stack" aria-labelledby="attempt-heading">
                                    <h2 id="attempt-heading">{heading}</h2>
                                    {report_view(answer)}
                                </section>
                            }
                        })
                }}
            </Transition>
            <section class="card stack" aria-labelledby="paste-heading">
                <h2 id="paste-heading">"Check a request"</h2>
                <ActionForm action=check attr:class="stack">
                    <div class="field">
                        <label for="check-webhook">"Webhook"</label>
                        <Transition fallback=|| view! { <select id="check-webhook" name="id" disabled=true></select> }>
                            {move || {
                                webhooks
                                    .get()
                                    .map(|answer| {
                                        let options = answer
                                            .unwrap_or_default()
                                            .into_iter()
                                            .map(|w| {
                                                let value = w.id.to_string();
                                                view! { <option value=value>{w.url}</option> }
                                            })
                                            .collect_view();
                                        view! {
                                            <select id="check-webhook" name="id" required=true>
                                                {options}
                                            </select>
                                        }
                                    })
                            }}
                        </Transition>
                    </div>
                    <div class="field">
                        <label for="check-headers">"Headers, one per line"</label>
                        <textarea
                            id="check-headers"
                            name="headers"
                            rows="6"
                            spellcheck="false"
                            aria-describedby="check-headers-hint"
                            placeholder="x-webhook-signature: 5d1c…\nwebhook-id: evt_…\nwebhook-timestamp: 1764950400\nwebhook-signature: v1,…"
                        ></textarea>
                        <p class="hint" id="check-headers-hint">
                            "As your endpoint received them, " <code>"name: value"</code>
                            ". Leave out what you would rather not paste: only the signature headers are read."
                        </p>
                    </div>
                    <div class="field">
                        <label for="check-body">"Body, exactly as received"</label>
                        <textarea id="check-body" name="body" rows="8" spellcheck="false"></textarea>
                    </div>
                    <button type="submit" disabled=move || pending.get()>
                        {move || if pending.get() { "Checking…" } else { "Check signature" }}
                    </button>
                </ActionForm>
                <div role="status" aria-live="polite">
                    {move || check.value().get().map(report_view)}
                </div>
            </section>
        </SignedIn>
    }
}

/// A report: the verdict, each check with its outcome, and the likely cause.
pub(crate) fn report_view(answer: Result<SignatureReport, AppError>) -> AnyView {
    let report = match answer {
        Ok(report) => report,
        Err(e) => return view! { <p class="error">{e.to_string()}</p> }.into_any(),
    };
    let verdict = if report.valid {
        "Genuine: this body carries a signature of this webhook."
    } else {
        "Not verified: no signature of this webhook matches this body."
    };
    let rows = report
        .checks
        .into_iter()
        .map(|c| {
            let class = match c.outcome {
                CheckOutcome::Pass => "badge green",
                _ => "badge red",
            };
            let testid = format!("check-{}", c.check);
            view! {
                <tr data-testid=testid>
                    <th scope="row">
                        <code>{c.check}</code>
                    </th>
                    <td>
                        <span class=class>{c.outcome.word()}</span>
                    </td>
                    <td>{c.detail}</td>
                </tr>
            }
        })
        .collect_view();
    let class = if report.valid { "test-result ok" } else { "test-result failed" };
    view! {
        <div class=class data-testid="signature-report">
            <p>
                <strong>{verdict}</strong>
            </p>
            <div class="table-scroll">
                <table class="list">
                    <thead>
                        <tr>
                            <th scope="col">"Check"</th>
                            <th scope="col">"Result"</th>
                            <th scope="col">"What was found"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
            {report
                .likely_cause
                .map(|cause| {
                    view! {
                        <p data-testid="likely-cause">
                            <strong>"Likely cause: "</strong>
                            {cause}
                        </p>
                    }
                })}
        </div>
    }
    .into_any()
}
