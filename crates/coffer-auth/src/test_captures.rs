//! The SDK wire captures in `tests/vectors/sdk-captures.txt`, parsed for
//! the capture tests of every scheme (`sigv4`, `oss_v1`, `oss_v4`).

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::secret::Secret;

pub(crate) const CAPTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/sdk-captures.txt"
);

/// One `=====` block.
pub(crate) struct Capture {
    /// The whole title line, for messages.
    pub(crate) title: String,
    pub(crate) method: String,
    /// The raw path, still percent-encoded.
    pub(crate) path: String,
    /// The raw query, without `?`.
    pub(crate) query: String,
    pub(crate) headers: HeaderMap,
    /// The string to sign (V1) or canonical request (V4) the capturing
    /// server computed.
    pub(crate) canonical: String,
}

/// Undoes Python's `repr()` of a str: `'…'` with `\n`, `\\`, `\'`, `\xNN`.
fn unrepr(s: &str) -> String {
    let inner = s
        .trim()
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .expect("a quoted repr");
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(char::from(
                    u8::from_str_radix(&hex, 16).expect("\\x escape"),
                ));
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Every block whose title starts with `kind` (`aws-v4`, `oss-v1`,
/// `oss-v1-presign`, `oss-v4`, `oss-v4-presign`). Panics with a clear
/// message if the capture file is missing.
pub(crate) fn load_captures(kind: &str) -> Vec<Capture> {
    let text = std::fs::read_to_string(CAPTURES).unwrap_or_else(|e| {
        panic!("cannot read the SDK captures at {CAPTURES}: {e}. It ships in the repository.")
    });
    let mut captures = Vec::new();
    for block in text.split("\n=====").skip(1) {
        let mut lines = block.lines();
        let title = lines.next().expect("block title").trim().to_owned();
        let tokens: Vec<&str> = title.split_whitespace().collect();
        if tokens.first() != Some(&kind) {
            continue;
        }
        let (method, target) = (tokens[2].to_owned(), tokens[3]);
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut headers = HeaderMap::new();
        let mut canonical = None;
        for line in lines {
            let line = line.trim_start();
            if let Some(rest) = line.strip_prefix("CANONICAL/STRING-TO-SIGN (server-computed):") {
                canonical = Some(unrepr(rest));
                continue;
            }
            if line.starts_with("BODY(head):") || line.starts_with("AWS-CHUNKED:") {
                continue;
            }
            let Some((name, value)) = line.split_once(": ") else {
                continue;
            };
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("captured header name"),
                HeaderValue::from_str(value).expect("captured header value"),
            );
        }
        captures.push(Capture {
            title: title.clone(),
            method,
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
            canonical: canonical.unwrap_or_else(|| panic!("no canonical request in {title}")),
        });
    }
    captures
}

/// The captures' credentials: AKIDEXAMPLE / SECRETEXAMPLE.
pub(crate) fn lookup(access_key: &str) -> Option<Secret> {
    (access_key == "AKIDEXAMPLE").then(|| Secret::new("SECRETEXAMPLE"))
}

/// A different byte in the same class (letters and digits stay letters and
/// digits, anything else becomes `X`), so that a change is always a change.
pub(crate) fn mutate(b: u8) -> u8 {
    match b {
        b'z' | b'Z' | b'9' => b - 1,
        b if b.is_ascii_alphanumeric() => b + 1,
        _ => b'X',
    }
}

/// Path-style addressing as the server does it: `/bucket/key` into the
/// bucket and the percent-decoded key (`None` for `/bucket/` and `/`).
/// `None` if the path does not start with `/` or is not UTF-8 once decoded.
pub(crate) fn split_path(path: &str) -> Option<(Option<String>, Option<String>)> {
    let rest = path.strip_prefix('/')?;
    if rest.is_empty() {
        return Some((None, None));
    }
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    let decode = |s: &str| String::from_utf8(crate::canonical::percent_decode(s)).ok();
    let key = decode(key)?;
    Some((Some(decode(bucket)?), (!key.is_empty()).then_some(key)))
}
