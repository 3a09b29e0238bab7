//! What every service's OpenAPI 3.1 document shares: its frame (title, the session cookie
//! security scheme, the error body), the answers any route can give (a JSON body refused,
//! no session, the service not ready), and serving the document at
//! `/api/<prefix>/openapi.json` from the same registration as the routes.
//!
//! Handlers carry `#[utoipa::path]`; each service's `http/openapi.rs` lists them once with
//! `utoipa_axum::routes!`, so the router and the document cannot disagree.

use std::collections::BTreeMap;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::openapi::path::{HttpMethod, OperationBuilder};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{
    Components, ContentBuilder, HeaderBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr,
    Response,
};
use utoipa::{IntoResponses, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::auth::SESSION_COOKIE;
use crate::error::{ErrorBody, ErrorItem};

/// The name of the security scheme (`security(("session" = []))` on an operation): the
/// access token in the `session` cookie.
pub const SESSION_SCHEME: &str = "session";

/// A document with its title and description, the cookie security scheme and the error
/// schemas; the routes add the paths.
pub fn frame(title: &str, description: &str) -> OpenApi {
    let mut components = Components::new();
    components.add_security_scheme(
        SESSION_SCHEME,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            SESSION_COOKIE.to_owned(),
            format!(
                "The access token (an EdDSA JWT) that sign-up, sign-in and refresh set in the \
                 HttpOnly `{SESSION_COOKIE}` cookie"
            ),
        ))),
    );
    for (name, schema) in [
        (ErrorBody::name(), ErrorBody::schema()),
        (ErrorItem::name(), ErrorItem::schema()),
    ] {
        components.schemas.insert(name.into_owned(), schema);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title(title)
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(description)),
        )
        .components(Some(components))
        .build()
}

/// Splits `routes` into the router and its document, and serves the document at `path`
/// (described in itself, so every route the router answers is in the document).
pub fn split_and_serve<S>(routes: OpenApiRouter<S>, path: &str) -> (Router<S>, OpenApi)
where
    S: Clone + Send + Sync + 'static,
{
    let (router, mut doc) = routes.split_for_parts();
    let mut operation = OperationBuilder::new()
        .operation_id(Some("openapi"))
        .summary(Some("This OpenAPI document"))
        .tag("openapi")
        .response(
            "200",
            ResponseBuilder::new()
                .description("The OpenAPI 3.1 document of this service")
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                        .build(),
                ),
        )
        .build();
    operation
        .responses
        .responses
        .extend(Unavailable::responses());
    doc.paths
        .add_path_operation(path, vec![HttpMethod::Get], operation);
    let body = doc.to_json().unwrap_or_default();
    let router = router.route(
        path,
        get(move || {
            let body = body.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    )],
                    body,
                )
                    .into_response()
            }
        }),
    );
    (router, doc)
}

fn error(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(ErrorBody::name())))
            .build(),
    )
}

fn responses(list: impl IntoIterator<Item = (u16, Response)>) -> BTreeMap<String, RefOr<Response>> {
    list.into_iter()
        .map(|(status, response)| (status.to_string(), RefOr::T(response)))
        .collect()
}

/// What any route with a JSON request body may answer besides its own 400: a body over
/// 64 KiB (413) or not sent as `application/json` (415). A malformed or mistyped body is
/// the route's 400.
pub struct JsonBodyErrors;

impl IntoResponses for JsonBodyErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses([
            (413, error("The request body is over 64 KiB").build()),
            (
                415,
                error("The request body is not sent as `application/json`").build(),
            ),
        ])
    }
}

/// What a route that needs a session answers without one (401, with
/// `WWW-Authenticate: Cookie`) or to a suspended user (403 "Account suspended").
pub struct SessionErrors;

impl IntoResponses for SessionErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let challenge = HeaderBuilder::new()
            .schema(Some(String::schema()))
            .description(Some("`Cookie`: the session is a cookie, not HTTP auth"))
            .build();
        responses([
            (
                401,
                error("No session, or an invalid or expired one (\"Not authenticated\")")
                    .header("WWW-Authenticate", challenge)
                    .build(),
            ),
            (
                403,
                error("Not allowed: the user is suspended (\"Account suspended\"), or the resource is another user's")
                    .build(),
            ),
        ])
    }
}

/// What every route may answer while the service cannot: still starting, a dependency
/// unreachable, or the request over its time limit (503, to retry).
pub struct Unavailable;

impl IntoResponses for Unavailable {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses([(
            503,
            error("The service is starting, a dependency is unreachable, or the request took too long; try again")
                .build(),
        )])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_frame_is_openapi_3_1_with_the_cookie_scheme_and_the_error_shape() {
        let doc: serde_json::Value =
            serde_json::from_str(&frame("t", "d").to_json().unwrap()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(
            doc["components"]["securitySchemes"][SESSION_SCHEME],
            serde_json::json!({
                "type": "apiKey",
                "in": "cookie",
                "name": "session",
                "description": doc["components"]["securitySchemes"][SESSION_SCHEME]["description"],
            })
        );
        let errors = &doc["components"]["schemas"]["ErrorBody"];
        assert_eq!(errors["required"], serde_json::json!(["errors"]));
        let item = &doc["components"]["schemas"]["ErrorItem"];
        assert_eq!(item["required"], serde_json::json!(["message"]));
    }

    #[test]
    fn the_document_describes_its_own_route() {
        let routes = OpenApiRouter::<()>::with_openapi(frame("t", "d"));
        let (_, doc) = split_and_serve(routes, "/api/things/openapi.json");
        let doc: serde_json::Value = serde_json::from_str(&doc.to_json().unwrap()).unwrap();
        let get = &doc["paths"]["/api/things/openapi.json"]["get"];
        assert!(get["responses"]["200"]["content"]["application/json"].is_object());
        assert_eq!(
            get["responses"]["503"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
    }
}
