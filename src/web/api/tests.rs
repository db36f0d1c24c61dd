use std::sync::Arc;

use super::*;
use crate::config::Config;
use crate::cycles::Cycles;
use crate::store::Store;
use axum::http::Uri;

fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
    }
    h
}

#[test]
fn only_the_exact_bearer_token_passes() {
    let auth = |v: &str| headers(&[(header::AUTHORIZATION, v)]);
    let token = "s3cret-token";
    assert!(bearer_matches(&auth("Bearer s3cret-token"), token));
    assert!(
        bearer_matches(&auth("bearer   s3cret-token "), token),
        "scheme ignores case"
    );
    assert!(
        !bearer_matches(&auth("Bearer s3cret-tokem"), token),
        "same length"
    );
    assert!(!bearer_matches(&auth("Bearer s3cret"), token), "a prefix");
    assert!(
        !bearer_matches(&auth("Bearer s3cret-token-and-more"), token),
        "longer"
    );
    assert!(
        !bearer_matches(&auth("Basic s3cret-token"), token),
        "other scheme"
    );
    assert!(!bearer_matches(&auth("s3cret-token"), token), "no scheme");
    assert!(!bearer_matches(&auth("Bearer "), token));
    assert!(!bearer_matches(&HeaderMap::new(), token), "no header");
}

#[test]
fn csv_is_recognized_with_parameters_and_any_case() {
    let ct = |v: &str| headers(&[(header::CONTENT_TYPE, v)]);
    assert!(is_csv(&ct("text/csv")));
    assert!(is_csv(&ct("Text/CSV; charset=utf-8")));
    assert!(!is_csv(&ct("application/json")));
    assert!(!is_csv(&ct("text/csvx")));
    assert!(!is_csv(&HeaderMap::new()));
}

#[test]
fn an_edit_tells_a_missing_name_from_a_null_one() {
    let e: Edit = serde_json::from_str(r#"{"status": "active"}"#).unwrap();
    assert_eq!((e.name, e.status.as_deref()), (None, Some("active")));
    let e: Edit = serde_json::from_str(r#"{"name": null}"#).unwrap();
    assert_eq!(e.name, Some(None));
    let e: Edit = serde_json::from_str(r#"{"name": "Ann"}"#).unwrap();
    assert_eq!(e.name, Some(Some("Ann".to_string())));
    let typo = serde_json::from_str::<Edit>(r#"{"stauts": "active"}"#).unwrap_err();
    assert!(typo.to_string().contains("unknown field"), "{typo}");
}

#[test]
fn ids_are_positive_whole_numbers() {
    assert_eq!(parse_id("42").unwrap(), 42);
    for bad in ["0", "-1", "4.2", "abc", "", "99999999999999999999"] {
        let e = parse_id(bad).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(e.message.contains("not a subscriber id"), "{}", e.message);
    }
}

#[tokio::test]
async fn a_cycle_asked_for_while_stopping_is_503_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let config = Config::parse(
        &path,
        "[publication]\ntitle = \"T\"\nbase_url = \"https://example.org/\"\n",
        &[],
    )
    .unwrap();
    let config = Arc::new(config);
    let store = Store::open(&config.database.path).await.unwrap();
    let cycles = Arc::new(Cycles::new(config.clone(), store.clone()));
    let state = AppState::new(config, store, cycles.clone()).unwrap();
    cycles.stop();
    let e = run_cycle(State(state)).await.unwrap_err();
    assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
    let res = e.into_response();
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
    let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"], "gazette is stopping; no new cycles");
}

#[tokio::test]
async fn plain_errors_become_json_and_keep_their_headers() {
    let res = Response::builder()
        .status(StatusCode::METHOD_NOT_ALLOWED)
        .header(header::ALLOW, "GET,HEAD")
        .header("x-other", "1")
        .body(axum::body::Body::empty())
        .unwrap();
    let uri: Uri = "/api/v1/cycle".parse().unwrap();
    let request = headers(&[(header::CONTENT_LENGTH, "2")]);
    let res = json_errors(Method::PUT, OriginalUri(uri), request, res).await;
    assert_eq!(
        res.headers()[header::CONNECTION],
        "close",
        "the body may be unread"
    );
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers()[header::ALLOW], "GET,HEAD");
    assert_eq!(res.headers()["x-other"], "1");
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
    let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["error"],
        "PUT is not allowed on /api/v1/cycle; the Allow header lists the methods that are"
    );
}
