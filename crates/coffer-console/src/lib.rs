//! Coffer's web console, served by `coffer server --console-listen ADDR`:
//! plain HTML, CSS and JavaScript modules, embedded in the binary (no CDN,
//! nothing fetched at run time, no build step besides cargo's).
//!
//! The page signs every request itself (SigV4 with WebCrypto) and sends it to
//! the listener that served it: that listener answers the console's asset
//! paths here and hands every other request to the API, so the page is
//! same-origin with the S3, KMS and admin APIs and goes through the same
//! authentication and authorization as any client. `docs/console.md` says why
//! the stack is this small.
//!
//! [`respond`] only ever sees unsigned requests (the server passes signed ones
//! to the API): a bucket named `console` stays reachable with signed requests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod assets;

use http::{Method, Response, StatusCode, header};

pub use assets::{ASSETS, Asset};

/// The path under which the console's assets live; `/console/` is the page.
pub const PREFIX: &str = "/console/";

/// The page loads only its own scripts and styles and talks only to its own
/// origin; nothing may frame it (clickjacking) and no form posts anywhere.
/// `blob:` lets a download be handed to the browser as a file.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The console's answer to an unsigned request: `/` and `/console` redirect to
/// the page, `/console/…` is an asset (or 404). `None` for anything else, which
/// the server routes to the API.
pub fn respond(method: &Method, path: &str) -> Option<Response<&'static [u8]>> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return None;
    }
    if path == "/" || path == PREFIX.trim_end_matches('/') {
        return Some(redirect_to_page());
    }
    let name = path.strip_prefix(PREFIX)?;
    let name = if name.is_empty() { "index.html" } else { name };
    Some(match Asset::named(name) {
        Some(asset) => asset_response(asset),
        None => not_found(),
    })
}

fn redirect_to_page() -> Response<&'static [u8]> {
    let mut response = Response::new(&b""[..]);
    *response.status_mut() = StatusCode::FOUND;
    response
        .headers_mut()
        .insert(header::LOCATION, header::HeaderValue::from_static(PREFIX));
    response
}

fn asset_response(asset: &Asset) -> Response<&'static [u8]> {
    let mut response = Response::new(asset.bytes);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::CONTENT_LENGTH, asset.bytes.len().into());
    // The assets change with the binary: the browser revalidates each time
    // (they are small, and served from the same machine or close by).
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    response
}

fn not_found() -> Response<&'static [u8]> {
    let mut response = Response::new(&b"No such console asset.\n"[..]);
    *response.status_mut() = StatusCode::NOT_FOUND;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_assets_are_served_with_their_types() {
        let page = respond(&Method::GET, "/console/").expect("the page");
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(
            page.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(page.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        assert!(page.body().starts_with(b"<!doctype html>"));
        let script = respond(&Method::HEAD, "/console/js/app.js").expect("a script");
        assert_eq!(
            script.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
    }

    #[test]
    fn the_root_redirects_to_the_page_and_unknown_assets_are_404() {
        for path in ["/", "/console"] {
            let answer = respond(&Method::GET, path).expect("a redirect");
            assert_eq!(answer.status(), StatusCode::FOUND);
            assert_eq!(answer.headers()[header::LOCATION], PREFIX);
        }
        let missing = respond(&Method::GET, "/console/nope.js").expect("an answer");
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let traversal = respond(&Method::GET, "/console/../Cargo.toml").expect("an answer");
        assert_eq!(traversal.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn everything_else_goes_to_the_api() {
        assert!(respond(&Method::GET, "/bucket/key").is_none());
        assert!(respond(&Method::GET, "/consoles").is_none());
        assert!(respond(&Method::PUT, "/console/index.html").is_none());
        assert!(respond(&Method::POST, "/").is_none(), "the KMS API");
    }
}
