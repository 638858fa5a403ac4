//! The dashboard at `/app/`: the web app built from `ui/` (its `ui/dist`
//! is committed and embedded by `build.rs`, so the binary serves it with
//! no Node installed). Present only with `HOTLINE_ADMIN_TOKEN`, as the API
//! it calls.
//!
//! - `/app/assets/*`: files whose names carry a content hash, cached for a
//!   year (`immutable`); an unknown asset is a 404, never the page.
//! - every other `/app/...` path: `index.html`, never cached (it names the
//!   current assets), so deep links work; without a valid session, a page
//!   other than `/app/login` redirects there.

use http::{HeaderValue, Method, Request, Response, StatusCode, header};

use super::error::AppError;
use super::respond::{Body, empty};
use super::session;
use crate::app::App;

mod files {
    include!(concat!(env!("OUT_DIR"), "/dashboard_files.rs"));
}

pub const LOGIN_PATH: &str = "/app/login";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// An embedded file by its path under `ui/dist`.
fn file(name: &str) -> Option<&'static [u8]> {
    files::FILES.iter().find(|(n, _)| *n == name).map(|(_, bytes)| *bytes)
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map_or("", |(_, ext)| ext) {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn respond(status: StatusCode, name: &str, bytes: &'static [u8], cache: &'static str) -> Response<Body> {
    let mut response = Response::new(super::respond::full(bytes::Bytes::from_static(bytes)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

pub fn handle<B>(app: &App, req: &Request<B>) -> Result<Response<Body>, AppError> {
    session::admin_token(app)?;
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return Err(AppError::MethodNotAllowed);
    }
    let path = req.uri().path();
    if path == "/app" {
        return Ok(redirect("/app/"));
    }
    if let Some(name) = path.strip_prefix("/app/").filter(|p| p.starts_with("assets/")) {
        let bytes = file(name).ok_or(AppError::NotFound)?;
        return Ok(respond(StatusCode::OK, name, bytes, IMMUTABLE));
    }
    if path != LOGIN_PATH && !session::has_session(app, req) {
        return Ok(redirect(LOGIN_PATH));
    }
    let index = file("index.html").ok_or(AppError::DashboardNotBuilt)?;
    let mut response = respond(StatusCode::OK, "index.html", index, "no-cache");
    // The page and its scripts come from here only, and no other site may
    // frame it.
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    Ok(response)
}

fn redirect(to: &'static str) -> Response<Body> {
    let mut response = empty(StatusCode::SEE_OTHER);
    response.headers_mut().insert(header::LOCATION, HeaderValue::from_static(to));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("assets/index-abc123.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("assets/index-abc123.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }

    #[test]
    fn the_built_dashboard_is_embedded_with_hashed_assets() {
        let index = std::str::from_utf8(file("index.html").expect("ui/dist/index.html is embedded")).unwrap();
        let assets: Vec<&str> = files::FILES.iter().map(|(n, _)| *n).filter(|n| n.starts_with("assets/")).collect();
        assert!(assets.iter().any(|a| a.ends_with(".js")) && assets.iter().any(|a| a.ends_with(".css")), "{assets:?}");
        for asset in assets.iter().filter(|a| a.ends_with(".js") || a.ends_with(".css")) {
            assert!(index.contains(&format!("/app/{asset}")), "index.html does not name {asset}");
        }
    }
}
