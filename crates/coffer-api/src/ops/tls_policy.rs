//! OSS `?httpsConfig` (PUT/GET): the handlers of the per-bucket TLS rule whose document and
//! enforcement are `bucket_config::https_config`.

use coffer_auth::sigv4::Payload;
use http::{Response, StatusCode};
use hyper::body::Incoming;

use super::{authorized_bucket, empty_response, save_bucket_config, small_body, xml_response};
use crate::body::ResponseBody;
use crate::bucket_config::https_config::{HTTPS_CONFIG_KEY, HttpsConfig};
use crate::error::{ApiError, ApiResult};
use crate::request::ApiRequest;
use crate::state::AppState;

/// `PUT /<bucket>?httpsConfig`.
pub async fn put_https_config(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let body = small_body(req, body, payload).await?;
    let config = HttpsConfig::parse(&body)?;
    let json = serde_json::to_string(&config).map_err(|e| ApiError::internal("JSON", e))?;
    save_bucket_config(state, bucket, HTTPS_CONFIG_KEY, json).await?;
    empty_response(StatusCode::OK)
}

/// `GET /<bucket>?httpsConfig`. A bucket that never had one answers
/// `Enable=false` (no TLS requirement) rather than an error: OSS documents
/// no error code for it and that is what the bucket's behaviour is.
pub async fn get_https_config(
    state: &AppState,
    req: &ApiRequest,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let config = HttpsConfig::of(&bucket).unwrap_or(HttpsConfig {
        enable: false,
        versions: Vec::new(),
        cipher_suite: None,
    });
    let mut w = req.xml("HttpsConfiguration");
    w.start("TLS").elem("Enable", config.enable.to_string());
    for version in &config.versions {
        w.elem("TLSVersion", version);
    }
    w.end();
    if let Some(suite) = &config.cipher_suite {
        w.start("CipherSuite");
        w.elem_opt("Enable", suite.enable.map(|b| b.to_string()));
        w.elem_opt("StrongCipherSuite", suite.strong.map(|b| b.to_string()));
        for name in &suite.custom {
            w.elem("CustomCipherSuite", name);
        }
        for name in &suite.tls13_custom {
            w.elem("TLS13CustomCipherSuite", name);
        }
        w.end();
    }
    xml_response(StatusCode::OK, w.finish())
}
