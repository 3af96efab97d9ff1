//! Event search (#20): `GET /api/v1/events` newest first, by type and time, found by id,
//! `verificationId` or `sessionId`, paged by cursor; `GET /api/v1/events/{id}` with its
//! deliveries and attempts; another partner's events are not found; events stored before
//! search get their values in the background pass.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Setup, http, insert_api_key, setup};
use crate::receiver::{Receiver, Reply, eventually};

async fn get(s: &Setup, key: &str, path: &str) -> (StatusCode, Value) {
    let response = http().get(s.app.url(&format!("/api/v1{path}"))).bearer_auth(key).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

fn ids(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
}

async fn publish(s: &Setup, id: &str, event_type: &str, data: Value) {
    let (status, body) = s
        .publish(json!({"partnerId": s.partner, "type": event_type, "status": "success", "id": id, "data": data}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

#[tokio::test]
async fn events_are_listed_newest_first_and_found_by_id_verification_or_session() {
    let s = setup(&[]).await;
    publish(&s, "evt_a", "verification.completed", json!({"verificationId": "ver_111", "sessionId": "ses_9"})).await;
    publish(&s, "evt_b", "verification.failed", json!({"verificationId": "ver_222", "sessionId": 42})).await;
    publish(&s, "evt_c", "review.completed", json!({"verificationId": "ver_111"})).await;

    let (status, all) = get(&s, &s.key, "/events").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(ids(&all), ["evt_c", "evt_b", "evt_a"], "newest first");
    assert_eq!(all["data"][1]["sessionId"], "42", "a number is found as its text");
    assert_eq!(all["next"], Value::Null);

    for (search, want) in [
        ("ver_111", vec!["evt_c", "evt_a"]),
        ("ses_9", vec!["evt_a"]),
        ("42", vec!["evt_b"]),
        ("evt_b", vec!["evt_b"]),
        ("ver_nobody", vec![]),
    ] {
        let (_, found) = get(&s, &s.key, &format!("/events?search={search}")).await;
        assert_eq!(ids(&found), want, "search {search}");
    }
    let (_, failed) = get(&s, &s.key, "/events?type=verification.failed").await;
    assert_eq!(ids(&failed), ["evt_b"]);
    let (_, both) = get(&s, &s.key, "/events?search=ver_111&type=review.completed").await;
    assert_eq!(ids(&both), ["evt_c"]);
    let (_, future) = get(&s, &s.key, "/events?since=2999-01-01T00:00:00Z").await;
    assert_eq!(ids(&future), Vec::<String>::new());
    let (_, past) = get(&s, &s.key, "/events?until=2999-01-01T00:00:00Z&since=2020-01-01T00:00").await;
    assert_eq!(past["data"].as_array().unwrap().len(), 3);

    let (status, refused) = get(&s, &s.key, "/events?type=verification.nope&since=yesterday").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> =
        refused["error"]["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["type", "since"], "{refused}");

    // Another partner finds none of them, by any route.
    let other = s.app.create_partner("Globex", "bob@globex.test").await;
    let other_key = insert_api_key(&s.app.db, &other.id).await;
    let (_, theirs) = get(&s, &other_key, "/events?search=ver_111").await;
    assert_eq!(theirs["data"], json!([]));
    let (_, theirs) = get(&s, &other_key, "/events").await;
    assert_eq!(theirs["data"], json!([]));
    let (status, _) = get(&s, &other_key, "/events/evt_a").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pages_follow_the_cursor_without_repeats_or_gaps() {
    let s = setup(&[]).await;
    let events: Vec<app::domain::NewEvent> = (0..57)
        .map(|i| {
            app::domain::NewEvent::parse(
                &s.partner,
                None,
                "verification.completed",
                "success",
                json!({}),
                Some(&format!("evt_{i:03}")),
            )
            .unwrap()
        })
        .collect();
    // Stored together, so many share a millisecond: the id breaks the tie.
    app::store::events::publish_many(&s.app.db, &events).await.unwrap();
    let (_, first) = get(&s, &s.key, "/events").await;
    assert_eq!(first["data"].as_array().unwrap().len(), 50);
    let next = first["next"].as_str().unwrap();
    let (_, second) = get(&s, &s.key, &format!("/events?cursor={next}")).await;
    assert_eq!(second["next"], Value::Null);
    let mut seen = ids(&first);
    seen.extend(ids(&second));
    let mut want: Vec<String> = (0..57).rev().map(|i| format!("evt_{i:03}")).collect();
    want.sort_unstable_by(|a, b| b.cmp(a));
    seen.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seen, want, "every event once");
    let (status, _) = get(&s, &s.key, "/events?cursor=not-a-cursor").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn an_event_shows_its_deliveries_and_their_attempts_per_webhook() {
    let s = setup(&["--retry-schedule", "1s"]).await;
    let ok = Receiver::start(Reply::Status(200, "")).await;
    let flaky = Receiver::start(Reply::Status(200, "")).await;
    flaky.script([Reply::Status(503, "")]);
    let good = s.create_webhook(json!({"url": ok.url})).await;
    let retried = s.create_webhook(json!({"url": flaky.url})).await;
    publish(&s, "evt_look", "verification.completed", json!({"verificationId": "ver_look"})).await;
    let done = |event: &Value| {
        event["deliveries"].as_array().is_some_and(|d| d.len() == 2 && d.iter().all(|d| d["state"] == "succeeded"))
    };
    eventually("both deliveries succeed", Duration::from_secs(30), || async {
        done(&get(&s, &s.key, "/events/evt_look").await.1)
    })
    .await;
    let event = get(&s, &s.key, "/events/evt_look").await.1;
    assert_eq!(event["type"], "verification.completed");
    assert_eq!(event["data"], json!({"verificationId": "ver_look"}));
    assert_eq!(event["verificationId"], "ver_look");
    let delivery = |webhook: &Value| {
        event["deliveries"].as_array().unwrap().iter().find(|d| d["webhookId"] == webhook["id"]).unwrap().clone()
    };
    let first = delivery(&good);
    assert_eq!(first["webhookUrl"], ok.url.as_str());
    assert_eq!(first["attempts"].as_array().unwrap().len(), 1);
    let second = delivery(&retried);
    let outcomes: Vec<&str> =
        second["attempts"].as_array().unwrap().iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["failure", "success"], "its attempts, oldest first");
    assert_eq!(second["attempts"][0]["statusCode"], 503);
    let (status, missing) = get(&s, &s.key, "/events/evt_nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
}

#[tokio::test]
async fn events_stored_before_search_are_found_once_the_background_pass_indexed_them() {
    use app::domain::{EventQuery, PartnerId};
    use app::store::event_search::{key_old_events, page};
    // A database of its own, without a portal whose own pass could run first.
    let dir = tempfile::tempdir().unwrap();
    let db = app::store::Db::connect(&crate::helpers::fresh_database_url(dir.path()).await).await.unwrap();
    db.migrate().await.unwrap();
    let partner = crate::helpers::insert_partner(&db, "Acme", "ann@acme.test").await.id;
    // An event as the table held it before search: no values, marked unkeyed.
    sqlx::query(
        "INSERT INTO events (id, partner_id, type, status, data, created_at, unkeyed) \
         VALUES ('evt_old', $1, 'verification.completed', 'success', '{\"sessionId\": \"ses_old\"}', 1, 1)",
    )
    .bind(partner.as_str())
    .execute(db.pool())
    .await
    .unwrap();
    let search = |partner: PartnerId| {
        let db = db.clone();
        async move {
            let query = EventQuery { search: Some("ses_old".into()), ..Default::default() };
            page(&db, &partner, &query.parse().unwrap()).await.unwrap().data.len()
        }
    };
    assert_eq!(search(partner.clone()).await, 0);
    assert_eq!(key_old_events(&db, 1000).await.unwrap(), 1);
    assert_eq!(key_old_events(&db, 1000).await.unwrap(), 0, "done once");
    assert_eq!(search(partner).await, 1);
}

/// However often an event was resent, its page holds the newest deliveries only.
#[tokio::test]
async fn an_events_page_is_bounded_however_often_it_was_resent() {
    let s = setup(&[]).await;
    let hook = s.create_webhook(json!({"url": "http://127.0.0.1:9/hook", "active": false})).await;
    publish(&s, "evt_many", "verification.completed", json!({})).await;
    // As 150 resends would leave them: one delivery each, made one after another.
    for i in 0..150_i64 {
        sqlx::query(
            "INSERT INTO deliveries (id, partner_id, webhook_id, event_id, state, attempts, next_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, $3, 'evt_many', 'succeeded', 1, 0, $4, $4)",
        )
        .bind(app::domain::DeliveryId::generate().as_str())
        .bind(&s.partner)
        .bind(hook["id"].as_str().unwrap())
        .bind(1_000 + i)
        .execute(s.app.db.pool())
        .await
        .unwrap();
    }
    let (status, event) = get(&s, &s.key, "/events/evt_many").await;
    assert_eq!(status, StatusCode::OK, "{event}");
    let deliveries = event["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), app::domain::EVENT_DELIVERIES, "the newest only");
}
