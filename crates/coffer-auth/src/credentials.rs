//! Where a request carries its signature: every scheme accepts it either in
//! one `Authorization` header or in the query string (presigned), never both.

use http::HeaderMap;

use crate::error::AuthError;

/// The signature's location in a request.
pub(crate) enum Credentials<'a> {
    /// The `Authorization` header's value, trimmed.
    Header(&'a str),
    /// Presigned: the query parameters carry it.
    Query,
}

/// Finds the signature: one `Authorization` header, or query parameters
/// (`in_query`: whether any of the scheme's presign parameters is present;
/// `query_param` names one for the error message). No credentials at all is
/// [`AuthError::Missing`].
pub(crate) fn locate<'a>(
    headers: &'a HeaderMap,
    in_query: bool,
    query_param: &str,
) -> Result<Credentials<'a>, AuthError> {
    let mut authorization = headers.get_all(http::header::AUTHORIZATION).iter();
    let header = authorization.next();
    if authorization.next().is_some() {
        return Err(AuthError::HeaderMalformed(
            "more than one Authorization header".into(),
        ));
    }
    match (header, in_query) {
        (Some(_), true) => Err(AuthError::InvalidArgument(format!(
            "Only one auth mechanism allowed; only the {query_param} query parameter or the Authorization header should be specified"
        ))),
        (Some(value), false) => value
            .to_str()
            .map(|v| Credentials::Header(v.trim()))
            .map_err(|_| {
                AuthError::HeaderMalformed("the Authorization header is not valid text".into())
            }),
        (None, true) => Ok(Credentials::Query),
        (None, false) => Err(AuthError::Missing),
    }
}

/// The presign parameters `names` from decoded query `pairs`, each at most
/// once and valid UTF-8 (absent ones are `None`).
pub(crate) fn presign_params<const N: usize>(
    pairs: &[(Vec<u8>, Vec<u8>)],
    names: &[&str; N],
) -> Result<[Option<String>; N], AuthError> {
    let bad = |m: String| AuthError::QueryMalformed(m);
    let mut found: [Option<String>; N] = std::array::from_fn(|_| None);
    for (name, value) in pairs {
        let Some(index) = names.iter().position(|p| p.as_bytes() == name.as_slice()) else {
            continue;
        };
        let param = names[index];
        let value = String::from_utf8(value.clone())
            .map_err(|_| bad(format!("{param} is not valid text")))?;
        if found[index].replace(value).is_some() {
            return Err(bad(format!("{param} appears more than once")));
        }
    }
    Ok(found)
}

/// The `Key=value` fields of an `Authorization` header of type `algorithm`
/// (`AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`), in the
/// order of `names`; commas with or without spaces, each field at most once,
/// any other field refused.
pub(crate) fn header_fields<'a, const N: usize>(
    authorization: &'a str,
    algorithm: &str,
    names: [&str; N],
) -> Result<[Option<&'a str>; N], AuthError> {
    let bad = |m: &str| AuthError::HeaderMalformed(m.to_owned());
    let rest = authorization
        .strip_prefix(algorithm)
        .filter(|r| r.starts_with([' ', '\t']))
        .ok_or_else(|| {
            AuthError::HeaderMalformed(format!("the authorization type must be {algorithm}"))
        })?;
    let mut found = [None; N];
    for field in rest.split(',') {
        let (key, value) = field
            .trim()
            .split_once('=')
            .ok_or_else(|| bad("a field is not key=value"))?;
        let index = names
            .iter()
            .position(|name| *name == key.trim())
            .ok_or_else(|| bad("unknown field"))?;
        if found[index].replace(value.trim()).is_some() {
            return Err(bad("a field appears twice"));
        }
    }
    Ok(found)
}
