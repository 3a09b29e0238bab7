//! `/api/docs`: one Swagger UI page for the four services' OpenAPI documents, each served
//! by its service at `/api/<prefix>/openapi.json` (a menu at the top switches between
//! them). Swagger UI's files are compiled into the binary (utoipa-swagger-ui, `vendored`):
//! no CDN. Its page loads only files of its own (the initializer too, as a file), so it
//! gets its own policy: scripts and styles from this origin only (and the logo's one inline
//! style, by hash), even where the rest of the site allows Stripe's.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use utoipa_swagger_ui::{Config, SwaggerUi, Url};

/// Where the page is; the ingress sends it here (it is under none of the API prefixes).
pub const DOCS_PATH: &str = "/api/docs";

/// The documents, as the ingress serves them.
const DOCUMENTS: [(&str, &str); 4] = [
    ("auth (/api/users)", "/api/users/openapi.json"),
    ("tickets (/api/tickets)", "/api/tickets/openapi.json"),
    ("orders (/api/orders)", "/api/orders/openapi.json"),
    ("payments (/api/payments)", "/api/payments/openapi.json"),
];

/// The site's own policy, narrowed to this page's needs: beyond its files, only the one
/// inline `<style>` Swagger UI puts in its logo (the SVG's colours), by its hash, so no
/// other inline style applies.
const POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let urls = DOCUMENTS
        .iter()
        .enumerate()
        .map(|(i, (name, url))| Url::with_primary(name, url, i == 0));
    let config = Config::new(urls)
        // Swagger UI would otherwise load a badge from validator.swagger.io.
        .validator_url("none")
        .try_it_out_enabled(false)
        .display_request_duration(true);
    let swagger: Router<S> = SwaggerUi::new(DOCS_PATH).config(config).into();
    swagger.layer(axum::middleware::map_response(own_policy))
}

async fn own_policy(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    response
}
