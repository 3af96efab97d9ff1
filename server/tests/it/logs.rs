//! Delivery logs and health end to end: badges driven by a scripted receiver, success-rate
//! numbers, keyset paging under new attempts, filters, resend, replay, retention, and the
//! partner wall around all of it.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Setup, setup};
use crate::receiver::{Receiver, Reply, eventually};

const DEADLINE: Duration = Duration::from_secs(15);

async fn call(s: &Setup, method: reqwest::Method, path: &str) -> (StatusCode, Value) {
    call_as(s, &s.key, method, path).await
}

async fn call_as(s: &Setup, key: &str, method: reqwest::Method, path: &str) -> (StatusCode, Value) {
    let response = crate::helpers::http().request(method, s.app.url(path)).bearer_auth(key).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(s: &Setup, path: &str) -> (StatusCode, Value) {
    call(s, reqwest::Method::GET, path).await
}

async fn post(s: &Setup, path: &str) -> (StatusCode, Value) {
    call(s, reqwest::Method::POST, path).await
}

/// Publishes `n` events `evt_<prefix>_<i>` of `type`.
async fn publish_many(s: &Setup, prefix: &str, n: usize, event_type: &str) {
    for i in 0..n {
        let (status, body) = s
            .publish(json!({"partnerId": s.partner, "type": event_type, "status": "success",
                "id": format!("evt_{prefix}_{i}"), "data": {"n": i}}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
}

/// Every attempt of a webhook's log, reading page after page of `limit`.
async fn all_pages(s: &Setup, webhook: &str, limit: usize) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/webhooks/{webhook}/attempts?limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = get(s, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        rows.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return rows,
        }
    }
}

#[tokio::test]
async fn health_goes_green_yellow_red_deactivated_and_back_to_green() {
    let s = setup(&["--retry-schedule", "1s,1s,1s,1s,1s"]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let webhook = s.create_webhook(json!({"url": receiver.url})).await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    assert_eq!(webhook["health"], "green");
    assert_eq!(webhook["successRate"], Value::Null, "no attempts yet: no rate");
    assert_eq!(webhook["lastDeliveryAt"], Value::Null);

    s.publish_event("evt_health_ok").await;
    receiver.wait_for(1, DEADLINE).await;
    eventually("a first success shows", DEADLINE, || async { s.webhook(&id).await["successRate"] == json!(100.0) })
        .await;
    let w = s.webhook(&id).await;
    assert_eq!(w["health"], "green");
    assert!(w["lastDeliveryAt"].is_string());

    // The receiver breaks: one failure is yellow, three in a row red, six deactivate.
    receiver.otherwise(Reply::Status(500, "down"));
    s.publish_event("evt_health_failing").await;
    eventually("one failure turns the badge yellow", DEADLINE, || async {
        let w = s.webhook(&id).await;
        w["health"] == "yellow" && w["failuresInARow"] == 1
    })
    .await;
    assert_eq!(s.webhook(&id).await["successRate"], json!(50.0), "1 of 2 attempts succeeded");
    eventually("three failures in a row turn it red while it is still active", DEADLINE, || async {
        let w = s.webhook(&id).await;
        if w["health"] == "red" && w["active"] == true {
            let failures = w["failuresInARow"].as_i64().unwrap();
            assert!(failures >= 3, "{w}");
            assert_eq!(w["successRate"].as_f64().unwrap(), 100.0 / (1.0 + failures as f64), "{w}");
            true
        } else {
            false
        }
    })
    .await;
    eventually("the sixth failure deactivates it", DEADLINE, || async { s.webhook(&id).await["active"] == false })
        .await;
    let w = s.webhook(&id).await;
    assert_eq!(w["health"], "red");
    assert!(w["deactivatedReason"].as_str().unwrap().contains("6 attempts in a row failed"), "{w}");
    assert_eq!(w["failuresInARow"], 6);

    // Reactivated and healthy again: green once the last 24 hours are at least 95 % good
    // again (1 + n successes of 7 + n attempts: n = 113 is the first that makes it).
    receiver.otherwise(Reply::Status(200, "ok"));
    s.post(&format!("/api/v1/webhooks/{id}/activate")).await;
    publish_many(&s, "recover", 112, "verification.completed").await;
    receiver.wait_for(1 + 6 + 112, Duration::from_secs(60)).await;
    eventually("112 successes are counted", DEADLINE, || async {
        s.webhook(&id).await["successRate"].as_f64().unwrap() == 113.0 * 100.0 / 119.0
    })
    .await;
    let w = s.webhook(&id).await;
    assert_eq!(w["health"], "yellow", "{w}: 113 of 119 is under 95 %");
    assert_eq!(w["failuresInARow"], 0);
    s.publish_event("evt_recover_last").await;
    eventually("the 113th success makes it green", DEADLINE, || async { s.webhook(&id).await["health"] == "green" })
        .await;
    assert_eq!(s.webhook(&id).await["successRate"].as_f64().unwrap(), 114.0 * 100.0 / 120.0);
}

#[tokio::test]
async fn tests_stay_out_of_the_success_rate_and_the_list_agrees_with_the_webhook() {
    let s = setup(&["--retry-schedule", ""]).await;
    let receiver = Receiver::start(Reply::Status(500, "no")).await;
    let webhook = s.create_webhook(json!({"url": receiver.url})).await;
    let id = webhook["id"].as_str().unwrap().to_owned();

    // A failing test is logged but counts for nothing.
    let (status, result) = post(&s, &format!("/api/v1/webhooks/{id}/test")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result["success"], false);
    let w = s.webhook(&id).await;
    assert_eq!((w["successRate"].clone(), w["health"].clone()), (Value::Null, json!("green")), "{w}");
    let (_, log) = get(&s, &format!("/api/v1/webhooks/{id}/attempts")).await;
    assert_eq!(log["data"][0]["test"], true);
    assert_eq!(log["data"][0]["origin"], "test");

    // Three good deliveries and one bad (no retries with this schedule): 75 %.
    receiver.script([Reply::Status(200, "ok"), Reply::Status(200, "ok"), Reply::Status(200, "ok")]);
    publish_many(&s, "rate", 3, "verification.completed").await;
    receiver.wait_for(4, DEADLINE).await;
    eventually("three successes counted", DEADLINE, || async { s.webhook(&id).await["successRate"] == json!(100.0) })
        .await;
    s.publish_event("evt_rate_bad").await;
    eventually("the failure is counted", DEADLINE, || async { s.webhook(&id).await["successRate"] == json!(75.0) })
        .await;
    let w = s.webhook(&id).await;
    assert_eq!(w["active"], false, "no retries: the one failure gives up and deactivates");
    let (_, list) = get(&s, "/api/v1/webhooks").await;
    assert_eq!(list["data"][0]["successRate"], json!(75.0));
    assert_eq!(list["data"][0]["health"], w["health"]);
    assert_eq!(list["data"][0]["lastDeliveryAt"], w["lastDeliveryAt"]);
}

#[tokio::test]
async fn paging_never_repeats_or_skips_a_row_while_new_attempts_arrive() {
    let s = setup(&[]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let webhook = s.create_webhook(json!({"url": receiver.url})).await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    publish_many(&s, "page", 60, "verification.completed").await;
    receiver.wait_for(60, DEADLINE).await;
    eventually("60 attempts logged", DEADLINE, || async { s.attempts(&id).await.len() == 60 }).await;

    let before: Vec<String> =
        all_pages(&s, &id, 100).await.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(before.len(), 60);

    // Page through 7 at a time while more events keep arriving on top.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut round = 0;
    loop {
        publish_many(&s, &format!("during_{round}"), 2, "verification.failed").await;
        round += 1;
        let mut path = format!("/api/v1/webhooks/{id}/attempts?limit=7");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (_, page) = get(&s, &path).await;
        for row in page["data"].as_array().unwrap() {
            seen.push((row["id"].as_str().unwrap().to_owned(), row["createdAt"].as_str().unwrap().to_owned()));
        }
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let ids: Vec<&String> = seen.iter().map(|(id, _)| id).collect();
    let unique: HashSet<&String> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "a row came twice");
    for old in &before {
        assert!(unique.contains(old), "row {old} was skipped");
    }
    let time = |text: &str| chrono::DateTime::parse_from_rfc3339(text).unwrap();
    for pair in seen.windows(2) {
        assert!((time(&pair[0].1), &pair[0].0) > (time(&pair[1].1), &pair[1].0), "not newest first: {pair:?}");
    }
}

#[tokio::test]
async fn filters_narrow_the_log_and_bad_ones_are_named() {
    let s = setup(&["--retry-schedule", ""]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let webhook = s.create_webhook(json!({"url": receiver.url})).await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    publish_many(&s, "good", 3, "verification.completed").await;
    receiver.wait_for(3, DEADLINE).await;
    receiver.otherwise(Reply::Status(503, "busy"));
    publish_many(&s, "bad", 1, "review.completed").await;
    receiver.wait_for(4, DEADLINE).await;
    eventually("4 attempts logged", DEADLINE, || async { s.attempts(&id).await.len() == 4 }).await;

    let (_, failures) = get(&s, &format!("/api/v1/webhooks/{id}/attempts?outcome=failure")).await;
    let failures = failures["data"].as_array().unwrap().clone();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["eventId"], "evt_bad_0");
    assert_eq!(failures[0]["statusCode"], 503);
    assert_eq!(failures[0]["outcome"], "failure");
    let (_, by_type) = get(&s, &format!("/api/v1/webhooks/{id}/attempts?eventType=verification.completed")).await;
    assert_eq!(by_type["data"].as_array().unwrap().len(), 3);
    let (_, both) =
        get(&s, &format!("/api/v1/webhooks/{id}/attempts?eventType=verification.completed&outcome=failure")).await;
    assert_eq!(both["data"], json!([]));
    let (_, future) = get(&s, &format!("/api/v1/webhooks/{id}/attempts?from=2999-01-01T00:00:00Z")).await;
    assert_eq!(future["data"], json!([]));
    let (_, past) =
        get(&s, &format!("/api/v1/webhooks/{id}/attempts?to=2999-01-01T00:00:00Z&from=2000-01-01T00:00")).await;
    assert_eq!(past["data"].as_array().unwrap().len(), 4);
    let (_, partner_wide) = get(&s, &format!("/api/v1/attempts?webhook={id}&outcome=success")).await;
    assert_eq!(partner_wide["data"].as_array().unwrap().len(), 3);

    let (status, error) =
        get(&s, &format!("/api/v1/webhooks/{id}/attempts?outcome=maybe&eventType=x&limit=0&cursor=zz")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    let fields: Vec<&str> =
        error["error"]["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["outcome", "eventType", "cursor", "limit"]);
}

#[tokio::test]
async fn an_attempt_shows_what_was_sent_with_the_auth_value_masked() {
    let s = setup(&[]).await;
    let receiver = Receiver::start(Reply::Status(201, "{\"stored\":true}")).await;
    let webhook = s
        .create_webhook(
            json!({"url": receiver.url, "authHeader": {"name": "X-Api-Key", "value": "sk_live_abcdef123456"}}),
        )
        .await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    s.publish_event("evt_detail").await;
    receiver.wait_for(1, DEADLINE).await;
    eventually("the attempt is logged", DEADLINE, || async { s.attempts(&id).await.len() == 1 }).await;
    let (_, page) = get(&s, &format!("/api/v1/webhooks/{id}/attempts")).await;
    let attempt_id = page["data"][0]["id"].as_str().unwrap();
    let (status, detail) = get(&s, &format!("/api/v1/attempts/{attempt_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["eventId"], "evt_detail");
    assert_eq!(detail["statusCode"], 201);
    assert_eq!(detail["responseBody"], "{\"stored\":true}");
    assert_eq!(detail["requestBody"], receiver.received()[0].body, "the body exactly as sent");
    let headers: Vec<(String, String)> = serde_json::from_value(detail["requestHeaders"].clone()).unwrap();
    let key = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("x-api-key")).unwrap();
    assert!(!key.1.contains("abcdef"), "auth value masked: {key:?}");
    assert!(headers.iter().any(|(n, _)| n == "x-webhook-signature"));
    assert!(!detail.to_string().contains("sk_live_abcdef123456"));
}

#[tokio::test]
async fn resend_sends_the_same_event_again_and_is_logged_as_such() {
    let s = setup(&[]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let webhook = s.create_webhook(json!({"url": receiver.url})).await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    s.publish_event("evt_resend").await;
    receiver.wait_for(1, DEADLINE).await;
    eventually("the attempt is logged", DEADLINE, || async { s.attempts(&id).await.len() == 1 }).await;
    let (_, page) = get(&s, &format!("/api/v1/webhooks/{id}/attempts")).await;
    let delivery = page["data"][0]["deliveryId"].as_str().unwrap().to_owned();

    let (status, resent) = post(&s, &format!("/api/v1/deliveries/{delivery}/resend")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{resent}");
    let new_delivery = resent["deliveryId"].as_str().unwrap();
    assert_ne!(new_delivery, delivery);
    let got = receiver.wait_for(2, DEADLINE).await;
    assert_eq!(got[0].body, got[1].body, "the same event, byte for byte");
    assert_eq!(got[0].headers["webhook-id"], got[1].headers["webhook-id"], "same event id for dedupe");
    eventually("the resend is logged", DEADLINE, || async { s.attempts(&id).await.len() == 2 }).await;
    let (_, page) = get(&s, &format!("/api/v1/webhooks/{id}/attempts")).await;
    assert_eq!(page["data"][0]["origin"], "resend");
    assert_eq!(page["data"][0]["deliveryId"], new_delivery);
    assert_eq!(page["data"][0]["eventId"], "evt_resend");
    assert_eq!(page["data"][1]["origin"], "event");

    // Not while the webhook is off: it would only be held.
    s.post(&format!("/api/v1/webhooks/{id}/deactivate")).await;
    let (status, error) = post(&s, &format!("/api/v1/deliveries/{delivery}/resend")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(error["error"]["message"].as_str().unwrap().contains("activate it first"), "{error}");
    let (status, _) = post(&s, "/api/v1/deliveries/dlv_01KAQ3M7A8Q9XKJ2V5T6N4B0CD/resend").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn replay_sends_the_events_missed_while_inactive_and_reports_progress() {
    let s = setup(&[]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let webhook = s.create_webhook(json!({"url": receiver.url, "eventTypes": ["verification.failed"]})).await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    publish_many(&s, "before", 1, "verification.failed").await;
    receiver.wait_for(1, DEADLINE).await;

    s.post(&format!("/api/v1/webhooks/{id}/deactivate")).await;
    publish_many(&s, "missed", 3, "verification.failed").await;
    publish_many(&s, "other_type", 2, "verification.completed").await;
    s.post(&format!("/api/v1/webhooks/{id}/activate")).await;
    assert_eq!(receiver.received().len(), 1, "events published while inactive are not sent on activation");

    let (status, replay) = post(&s, &format!("/api/v1/webhooks/{id}/replay")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{replay}");
    assert_eq!(replay["total"], 3, "only its type, only since the deactivation: {replay}");
    let got = receiver.wait_for(4, DEADLINE).await;
    let ids: HashSet<String> = got[1..]
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, HashSet::from(["evt_missed_0".into(), "evt_missed_1".into(), "evt_missed_2".into()]));
    eventually("progress reaches 3 of 3", DEADLINE, || async {
        let (_, progress) = get(&s, &format!("/api/v1/webhooks/{id}/replay")).await;
        progress["delivered"] == 3 && progress["waiting"] == 0
    })
    .await;
    let (_, page) = get(&s, &format!("/api/v1/webhooks/{id}/attempts")).await;
    assert_eq!(page["data"][0]["origin"], "replay");

    // Nothing is missed any more; a time before everything sends only what was never sent.
    let (_, again) = post(&s, &format!("/api/v1/webhooks/{id}/replay")).await;
    assert_eq!(again["total"], 0);
    let response = crate::helpers::http()
        .post(s.app.url(&format!("/api/v1/webhooks/{id}/replay")))
        .bearer_auth(&s.key)
        .json(&json!({"since": "last week"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["field"], "since");

    s.post(&format!("/api/v1/webhooks/{id}/deactivate")).await;
    let (status, _) = post(&s, &format!("/api/v1/webhooks/{id}/replay")).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn recover_sends_again_the_deliveries_that_failed_in_a_period() {
    let s = setup(&["--retry-schedule", ""]).await;
    let receiver = Receiver::start(Reply::Status(503, "down for maintenance")).await;
    let webhook = s.create_webhook(json!({"url": receiver.url})).await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    let since = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
    // The delivery fails (no retries here) and switches the webhook off.
    publish_many(&s, "outage", 1, "verification.completed").await;
    let failed = receiver.wait_for(1, DEADLINE).await;
    let failed_id = serde_json::from_str::<Value>(&failed[0].body).unwrap()["id"].as_str().unwrap().to_owned();
    eventually("the webhook is switched off after the failure", DEADLINE, || async {
        s.webhook(&id).await["active"] == false
    })
    .await;
    let recover = |body: Value| {
        let (s, path) = (&s, format!("/api/v1/webhooks/{id}/recover"));
        async move {
            let response =
                crate::helpers::http().post(s.app.url(&path)).bearer_auth(&s.key).json(&body).send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };

    // Bad input is named and changes nothing; an inactive webhook is refused.
    let (status, error) = recover(json!({"since": "yesterday-ish"})).await;
    assert_eq!((status, error["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("since")));
    let (status, error) = recover(json!({"since": since, "until": "2020-01-01T00:00:00Z"})).await;
    assert_eq!((status, error["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("until")));
    let (status, _) = recover(json!({"until": since})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "since is required");
    let (status, error) = recover(json!({"since": "2999-01-01T00:00:00Z"})).await;
    assert_eq!((status, error["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("since")));
    assert!(error.to_string().contains("in the future"), "{error}");
    let (status, error) = recover(json!({"since": "2999-01-01T00:00:00Z", "until": "3000-01-01T00:00:00Z"})).await;
    assert_eq!((status, error["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("since")));
    let (status, error) = recover(json!({"since": since})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(receiver.received().len(), 1, "nothing was sent");

    // The endpoint is fixed and the webhook switched on: the failed delivery stays failed
    // until it is recovered; a period after the failure finds nothing.
    receiver.otherwise(Reply::Status(200, "ok"));
    s.post(&format!("/api/v1/webhooks/{id}/activate")).await;
    let (status, none) = recover(json!({"since": chrono::Utc::now().to_rfc3339()})).await;
    assert_eq!((status, none["total"].as_i64()), (StatusCode::ACCEPTED, Some(0)), "nothing failed since then");
    // More failures than one chunk queues (500): every one is queued, chunk after chunk.
    let failed_at = app::store::now_ms() - 500;
    for n in 0..600 {
        sqlx::query(
            "INSERT INTO deliveries (id, partner_id, webhook_id, event_id, state, attempts, next_attempt_at, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, 'failed', 1, $5, $5, $5)",
        )
        .bind(format!("dlv_01KAQ3M7A8Q9XKJ2V5T6N4{n:04}"))
        .bind(&s.partner)
        .bind(&id)
        .bind(&failed_id)
        .bind(failed_at)
        .execute(s.app.db.writer())
        .await
        .unwrap();
    }
    let (status, started) = recover(json!({"since": since})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["total"], 601, "{started}");
    let got = receiver.wait_for(602, DEADLINE).await;
    assert_eq!(
        serde_json::from_str::<Value>(&got[1].body).unwrap()["id"],
        failed_id.as_str(),
        "the same event, same id"
    );
    eventually("progress reaches 601 of 601", DEADLINE, || async {
        let (_, progress) = get(&s, &format!("/api/v1/webhooks/{id}/recover")).await;
        progress["delivered"] == 601 && progress["waiting"] == 0
    })
    .await;

    // Nothing failed is left in the period: a second run sends nothing.
    let (status, second) = recover(json!({"since": since})).await;
    assert_eq!((status, second["total"].as_i64()), (StatusCode::ACCEPTED, Some(0)));
    assert_eq!(receiver.received().len(), 602);
}

#[tokio::test]
async fn another_partners_log_resend_and_replay_are_not_found() {
    let s = setup(&[]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let webhook = s.create_webhook(json!({"url": receiver.url})).await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    s.publish_event("evt_private").await;
    receiver.wait_for(1, DEADLINE).await;
    eventually("the attempt is logged", DEADLINE, || async { s.attempts(&id).await.len() == 1 }).await;
    let (_, page) = get(&s, &format!("/api/v1/webhooks/{id}/attempts")).await;
    let attempt = page["data"][0]["id"].as_str().unwrap().to_owned();
    let delivery = page["data"][0]["deliveryId"].as_str().unwrap().to_owned();

    let other = s.app.create_partner("Other", "olga@other.test").await;
    let other_key = s.app.create_api_key(&other.id).await;
    for (method, path) in [
        (reqwest::Method::GET, format!("/api/v1/webhooks/{id}/attempts")),
        (reqwest::Method::GET, format!("/api/v1/attempts/{attempt}")),
        (reqwest::Method::POST, format!("/api/v1/deliveries/{delivery}/resend")),
        (reqwest::Method::POST, format!("/api/v1/webhooks/{id}/replay")),
        (reqwest::Method::GET, format!("/api/v1/webhooks/{id}/replay")),
        (reqwest::Method::POST, format!("/api/v1/webhooks/{id}/recover")),
        (reqwest::Method::GET, format!("/api/v1/webhooks/{id}/recover")),
    ] {
        let (status, body) = call_as(&s, &other_key, method, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (_, theirs) = call_as(&s, &other_key, reqwest::Method::GET, &format!("/api/v1/attempts?webhook={id}")).await;
    assert_eq!(theirs["data"], json!([]), "a partner-wide log holds only the caller's rows");
    assert_eq!(receiver.received().len(), 1, "nothing was sent again");
}

#[tokio::test]
async fn the_log_pages_render_filtered_rows_and_details_without_javascript() {
    let s = setup(&["--retry-schedule", ""]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let webhook = s
        .create_webhook(
            json!({"url": receiver.url, "authHeader": {"name": "X-Api-Key", "value": "sk_page_secret_9876"}}),
        )
        .await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    s.publish_event("evt_page_ok").await;
    receiver.wait_for(1, DEADLINE).await;
    receiver.otherwise(Reply::Status(502, "bad gateway here"));
    s.publish_event("evt_page_bad").await;
    receiver.wait_for(2, DEADLINE).await;
    eventually("both attempts logged", DEADLINE, || async { s.attempts(&id).await.len() == 2 }).await;

    let acme = crate::helpers::TestPartner {
        id: app::domain::PartnerId::parse(&s.partner).unwrap(),
        email: "ann@acme.test".into(),
        password: "correct horse battery staple".into(),
    };
    let client = s.app.signed_in_client(&acme).await;
    let page = |path: String| {
        let client = client.clone();
        let url = s.app.url(&path);
        async move {
            let response = client.get(url).send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let (status, all) = page(format!("/webhooks/{id}/logs")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(all.contains("evt_page_ok") && all.contains("evt_page_bad"));
    let (_, failed) = page(format!("/webhooks/{id}/logs?outcome=failure")).await;
    assert!(failed.contains("evt_page_bad") && !failed.contains("evt_page_ok"), "the filter is in the URL");
    assert!(failed.contains(r#"<option value="failure" selected"#), "the form shows the filter in force");
    let (_, partner_wide) = page("/logs?eventType=review.completed".into()).await;
    assert!(partner_wide.contains("No attempts match these filters."));
    let (_, partner_wide) = page("/logs".into()).await;
    assert!(partner_wide.contains("evt_page_bad") && partner_wide.contains(&receiver.url));

    let (_, log) = get(&s, &format!("/api/v1/webhooks/{id}/attempts?outcome=failure")).await;
    let attempt = log["data"][0]["id"].as_str().unwrap();
    let (status, detail) = page(format!("/webhooks/{id}/logs/{attempt}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(detail.contains("bad gateway here"), "the answer's body");
    assert!(detail.contains("502"));
    assert!(detail.contains("x-webhook-signature"));
    assert!(!detail.contains("sk_page_secret_9876"), "the auth value is masked");
    assert!(detail.contains("Resend"));

    let (_, webhook_page) = page(format!("/webhooks/{id}")).await;
    assert!(webhook_page.contains("View Logs"));
    assert!(webhook_page.contains("2 attempts, 1 failed"), "the chart's summary");
    assert!(webhook_page.contains("<svg"), "the chart is drawn on the server");

    let other = s.app.create_partner("Other", "olga@other.test").await;
    let intruder = s.app.signed_in_client(&other).await;
    let theirs = intruder.get(s.app.url(&format!("/webhooks/{id}/logs/{attempt}"))).send().await.unwrap();
    let text = theirs.text().await.unwrap();
    assert!(text.contains("Not found.") && !text.contains("bad gateway here"));
    let theirs = intruder.get(s.app.url(&format!("/webhooks/{id}/logs"))).send().await.unwrap().text().await.unwrap();
    assert!(!theirs.contains("evt_page_bad"));
}

#[tokio::test]
async fn retention_prunes_old_attempts_and_leaves_the_counters_right() {
    let s = setup(&[]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    let webhook = s.create_webhook(json!({"url": receiver.url})).await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    publish_many(&s, "keep", 3, "verification.completed").await;
    receiver.wait_for(3, DEADLINE).await;
    eventually("3 attempts logged", DEADLINE, || async { s.attempts(&id).await.len() == 3 }).await;
    let before = s.webhook(&id).await;

    // Two of them are from 31 days ago.
    let old = app::store::now_ms() - 31 * 24 * 3600 * 1000;
    sqlx::query("UPDATE attempts SET created_at = $1 WHERE id IN (SELECT id FROM attempts WHERE webhook_id = $2 ORDER BY id LIMIT 2)")
        .bind(old)
        .bind(&id)
        .execute(s.app.db.pool())
        .await
        .unwrap();
    let cutoff = app::store::now_ms() - 30 * 24 * 3600 * 1000;
    assert_eq!(app::store::log::prune(&s.app.db, cutoff, 1).await.unwrap(), 1, "batches are bounded");
    assert_eq!(app::store::log::prune(&s.app.db, cutoff, 1).await.unwrap(), 1);
    assert_eq!(app::store::log::prune(&s.app.db, cutoff, 1).await.unwrap(), 0);
    assert_eq!(s.attempts(&id).await.len(), 1);
    let after = s.webhook(&id).await;
    for field in ["successRate", "health", "lastDeliveryAt", "failuresInARow"] {
        assert_eq!(after[field], before[field], "{field} unchanged by pruning");
    }
}

#[tokio::test]
async fn retention_prunes_old_events_with_no_delivery_left_and_keeps_those_still_to_send() {
    use sqlx::Row;
    let s = setup(&[]).await;
    let receiver = Receiver::start(Reply::Status(200, "ok")).await;
    s.create_webhook(json!({"url": receiver.url})).await;
    publish_many(&s, "aged", 3, "verification.completed").await;
    receiver.wait_for(3, DEADLINE).await;
    let finished = || async {
        sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE state = 'succeeded'")
            .fetch_one(s.app.db.pool())
            .await
            .unwrap()
            .get::<i64, _>("n")
    };
    eventually("3 deliveries finished", DEADLINE, || async { finished().await == 3 }).await;

    // evt_aged_0 and evt_aged_1 are 31 days old; evt_aged_1's delivery is still to be sent
    // (say, held while its webhook was off). evt_aged_2 is new.
    let old = app::store::now_ms() - 31 * 24 * 3600 * 1000;
    let db = s.app.db.writer();
    sqlx::query("UPDATE events SET created_at = $1 WHERE id IN ('evt_aged_0', 'evt_aged_1')")
        .bind(old)
        .execute(db)
        .await
        .unwrap();
    sqlx::query("UPDATE deliveries SET next_attempt_at = $1 WHERE event_id IN ('evt_aged_0', 'evt_aged_1')")
        .bind(old)
        .execute(db)
        .await
        .unwrap();
    sqlx::query("UPDATE deliveries SET state = 'held' WHERE event_id = 'evt_aged_1'").execute(db).await.unwrap();

    let (_stop, mut stopped) = tokio::sync::watch::channel(false);
    assert_eq!(server::retention::pass(&s.app.db, 30, &mut stopped).await, server::retention::Pass::Done);
    let events: Vec<String> = sqlx::query("SELECT id FROM events ORDER BY id")
        .fetch_all(s.app.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("id"))
        .collect();
    assert_eq!(events, ["evt_aged_1", "evt_aged_2"], "the old event with nothing left to send went, with its delivery");
    let deliveries: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM deliveries").fetch_one(s.app.db.pool()).await.unwrap().get("n");
    assert_eq!(deliveries, 2);
}

#[tokio::test]
async fn a_batch_of_attempts_to_one_webhook_counts_like_one_at_a_time() {
    use app::domain::{AttemptResult, EventBody, Origin};
    use app::store::attempts::{FinishedAttempt, Next, record_many};
    use sqlx::Row;
    let app = crate::helpers::spawn_app().await;
    let partner = app.create_partner("Acme", "ann@acme.test").await.id;
    crate::helpers::insert_webhooks(&app.db, &partner, "https://example.com/hook", 1).await;
    let webhook: String = sqlx::query("SELECT id FROM webhooks").fetch_one(app.db.pool()).await.unwrap().get("id");
    let webhook = app::domain::WebhookId::parse(&webhook).unwrap();
    let attempt = |success: bool| FinishedAttempt {
        delivery: None,
        partner: partner.clone(),
        webhook: webhook.clone(),
        event: EventBody::sample(),
        number: 1,
        request: None,
        result: AttemptResult {
            success,
            status_code: Some(if success { 200 } else { 500 }),
            latency_ms: 1,
            response_body: None,
            error: None,
            cause: None,
            retry_after_secs: None,
        },
        origin: Origin::Event,
        next: Next::Succeeded,
    };
    // Failed, succeeded, failed, failed: two failures in a row at the end, the last one failed.
    record_many(&app.db, &[attempt(false), attempt(true), attempt(false), attempt(false)]).await.unwrap();
    let row =
        sqlx::query("SELECT failures_in_a_row, last_attempt_ok FROM webhooks").fetch_one(app.db.pool()).await.unwrap();
    assert_eq!((row.get::<i64, _>("failures_in_a_row"), row.get::<i64, _>("last_attempt_ok")), (2, 0));
    let minute = sqlx::query(
        "SELECT CAST(SUM(attempts) AS BIGINT) AS a, CAST(SUM(failures) AS BIGINT) AS f FROM webhook_minutes",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!((minute.get::<i64, _>("a"), minute.get::<i64, _>("f")), (4, 3));
    // Two more failures with no success add to the count.
    record_many(&app.db, &[attempt(false), attempt(false)]).await.unwrap();
    let row = sqlx::query("SELECT failures_in_a_row FROM webhooks").fetch_one(app.db.pool()).await.unwrap();
    assert_eq!(row.get::<i64, _>("failures_in_a_row"), 4);
    let logged: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM attempts").fetch_one(app.db.pool()).await.unwrap().get("n");
    assert_eq!(logged, 6);
}
