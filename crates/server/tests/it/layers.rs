//! The layers every surface shares: one request id per request, the client's correlation id
//! echoed and used in the activity log.

use serde_json::json;

use crate::{group, server};

#[tokio::test]
async fn the_client_correlation_id_is_echoed_and_logged() {
    let server = server().await;
    let token = server.admin_token("https://management.azure.com/.default").await.unwrap();
    let http = server.http(&[]).unwrap();
    let correlation = "test-correlation-1";
    let response = http
        .put(format!("{}{}?api-version=2024-11-01", server.url(), group(&server, "rg")))
        .bearer_auth(&token)
        .header("x-ms-client-request-id", correlation)
        .json(&json!({"location": "westus"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-ms-correlation-request-id"], correlation);
    let request_id = response.headers()["x-ms-request-id"].to_str().unwrap().to_owned();
    assert_ne!(request_id, correlation);
    let log = server
        .admin()
        .unwrap()
        .get(&format!(
            "/subscriptions/{}/providers/microsoft.insights/eventtypes/management/values?api-version=2015-04-01&$filter=correlationId%20eq%20'{correlation}'",
            server.subscription_id()
        ))
        .await
        .unwrap();
    let events = log["value"].as_array().unwrap();
    assert_eq!(events.len(), 2, "Started and Succeeded: {log}");
    assert_eq!(events[0]["status"]["value"], "Succeeded", "newest first");
    // Every answer, errors included, carries a fresh request id.
    let missing = http.get(format!("{}/nope", server.url())).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().contains_key("x-ms-request-id"));
    server.stop().await;
}
