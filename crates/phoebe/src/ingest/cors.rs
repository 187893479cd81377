//! CORS for SDK endpoints: any origin, and the rate-limit headers exposed on every response,
//! errors included, because the browser SDK can only back off when it can read them.

use axum::http::HeaderValue;
use axum::response::Response;

/// Adds the CORS headers Relay sends.
pub fn with_cors(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        "access-control-allow-headers",
        HeaderValue::from_static(
            "x-sentry-auth, x-requested-with, x-forwarded-for, origin, referer, accept, content-type, \
             authentication, authorization, content-encoding, transfer-encoding, sentry-trace, baggage",
        ),
    );
    h.insert(
        "access-control-expose-headers",
        HeaderValue::from_static("x-sentry-error, x-sentry-rate-limits, retry-after"),
    );
    h.insert("access-control-max-age", HeaderValue::from_static("3600"));
    response
}
