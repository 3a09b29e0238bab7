//! Checks that a service's OpenAPI document and its router describe the same routes:
//! every documented operation is answered by the spawned app (not 404 "Route not found",
//! not 405), every other method on a documented path is 405, and the router registers its
//! routes only through the document's registration (`utoipa_axum::routes!`).

use std::collections::BTreeSet;

use serde_json::Value;

/// The methods a route could be registered for (HEAD and OPTIONS follow GET in axum).
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The document the app serves at `document_path`, checked to be OpenAPI 3.1.
pub async fn fetch_document(address: &str, document_path: &str) -> Value {
    let response = reqwest::get(format!("{address}{document_path}"))
        .await
        .expect("fetch the OpenAPI document");
    assert_eq!(response.status(), 200, "{document_path}");
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        "application/json"
    );
    let doc: Value = response.json().await.expect("the document is JSON");
    assert_eq!(doc["openapi"], "3.1.0", "an OpenAPI 3.1 document");
    doc
}

/// `(METHOD, path)` of every operation in the document.
pub fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(|method| (method.to_uppercase(), path.clone()))
        })
        .collect()
}

/// The document's operations as `METHOD path`, sorted: what a test compares with the
/// routes it expects.
pub fn operation_names(doc: &Value) -> Vec<String> {
    operations(doc)
        .into_iter()
        .map(|(method, path)| format!("{method} {path}"))
        .collect()
}

/// Sends every method to every documented path of the app at `address` (path parameters
/// filled with a fresh id, a JSON body of `{}`, the given `Cookie` header), and fails
/// naming each route that the document describes but the router does not answer, and
/// each method the router answers that the document does not describe.
pub async fn assert_router_matches_document(address: &str, doc: &Value, cookie: &str) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let documented = operations(doc);
    let mut wrong = Vec::new();
    for path in doc["paths"].as_object().expect("paths").keys() {
        let concrete = fill_parameters(path);
        for method in METHODS {
            let method = method.to_uppercase();
            let response = client
                .request(
                    method.parse().expect("method"),
                    format!("{address}{concrete}"),
                )
                .header("cookie", cookie)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("request");
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let unrouted = status == 405
                || (status == 404 && body["errors"][0]["message"] == "Route not found");
            match (
                documented.contains(&(method.clone(), path.clone())),
                unrouted,
            ) {
                (true, true) => wrong.push(format!(
                    "{method} {path} is documented but the router answers {status}"
                )),
                (false, false) => wrong.push(format!(
                    "{method} {path} is answered ({status}) but not documented"
                )),
                _ => {}
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Fails when a service's `http` module source registers a route outside the OpenAPI
/// registration (a plain axum `.route(…)`, `.nest(…)` or `.merge(…)`), which the document
/// would not describe.
pub fn assert_routes_only_through_the_document(sources: &[(&str, &str)]) {
    for (file, source) in sources {
        for call in [
            ".route(",
            ".route_service(",
            ".nest(",
            ".nest_service(",
            ".merge(",
        ] {
            assert!(
                !source.contains(call),
                "{file} registers a route with `{call}…)`: register it with \
                 `utoipa_axum::routes!` in http/openapi.rs so the document describes it"
            );
        }
    }
}

/// `/api/users/{id}/ban` → `/api/users/<fresh id>/ban`.
fn fill_parameters(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                crate::new_user_id()
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}
