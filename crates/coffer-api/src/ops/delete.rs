//! DeleteObject and DeleteObjects.

use coffer_auth::sigv4::Payload;
use coffer_store::Condition;
use http::{Response, StatusCode};
use hyper::body::Incoming;

use super::object::MAX_KEY_LEN;
use super::{authorized_bucket, empty_response, small_body, xml_response};
use crate::body::ResponseBody;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::ApiRequest;
use crate::state::AppState;
use crate::xml;

pub async fn delete_object(
    state: &AppState,
    req: &ApiRequest,
) -> ApiResult<Response<ResponseBody>> {
    let key = req.key()?.to_owned();
    let bucket = authorized_bucket(state, req).await?;
    state
        .meta
        .delete_object(&bucket.name, &key, Condition::Always)
        .await?;
    empty_response(StatusCode::NO_CONTENT)
}

pub async fn delete_objects(
    state: &AppState,
    req: &ApiRequest,
    body: Incoming,
    payload: Payload,
) -> ApiResult<Response<ResponseBody>> {
    let bucket = authorized_bucket(state, req).await?;
    let body = small_body(req, body, payload).await?;
    let request: xml::DeleteRequest = xml::parse(&body)?;
    if request.objects.len() > 1000 {
        return Err(ApiError::malformed_xml());
    }
    let mut outcomes = Vec::with_capacity(request.objects.len());
    for key in request.objects.into_iter().map(|o| o.key) {
        let outcome = if key.len() > MAX_KEY_LEN {
            Err(ErrorCode::KeyTooLongError)
        } else {
            state
                .meta
                .delete_object(&bucket.name, &key, Condition::Always)
                .await
                .map(|_| ())
                .map_err(|_| ErrorCode::InternalError)
        };
        outcomes.push((key, outcome));
    }
    let url_encoded = req.url_encoding()?;
    let mut w = req.xml("DeleteResult");
    if url_encoded {
        w.elem("EncodingType", "url");
    }
    for (key, outcome) in outcomes {
        match outcome {
            Ok(()) if request.quiet => {}
            Ok(()) => {
                w.start("Deleted")
                    .elem("Key", xml::encode_key(&key, url_encoded))
                    .end();
            }
            Err(code) => {
                w.start("Error")
                    .elem("Key", xml::encode_key(&key, url_encoded))
                    .elem("Code", code.s3_code())
                    .elem("Message", "The object could not be deleted")
                    .end();
            }
        }
    }
    xml_response(StatusCode::OK, w.finish())
}
