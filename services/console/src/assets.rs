//! The pages, embedded in the binary: one HTML shell for every page, one
//! script and one style sheet, all written for auditrail (no framework,
//! nothing vendored, nothing fetched at run time), so the console works
//! offline and its Content-Security-Policy can forbid everything else.
//!
//! The script routes by path (`/timeline`, `/event/ID`, `/history`,
//! `/reports`, `/ingest`, `/signin`) and keeps each page's whole state in
//! its URL, so a link can be shared.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// The HTML shell of every page.
const INDEX: &str = include_str!("../assets/index.html");
/// The console's script.
const APP_JS: &str = include_str!("../assets/app.js");
/// The console's style sheet.
const APP_CSS: &str = include_str!("../assets/app.css");

fn with_type(body: &'static str, media_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    // Revalidated on each load: a new binary's assets are never mixed with
    // an old page.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Any page: the shell, which the script fills.
pub async fn page() -> Response {
    with_type(INDEX, "text/html; charset=utf-8")
}

/// `/assets/NAME`.
pub async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match name.as_str() {
        "app.js" => with_type(APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => with_type(APP_CSS, "text/css; charset=utf-8"),
        _ => not_found().await,
    }
}

/// A path the console does not serve.
pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "not found: the console's pages are /timeline, /event/ID, /history, /reports, /ingest\n",
    )
        .into_response()
}
