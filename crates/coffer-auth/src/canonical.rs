//! Canonical encodings shared by SigV4 and the OSS schemes: RFC 3986
//! percent-encoding, query decoding (SigV4 rules and HTML form rules),
//! canonical query strings and header value normalisation.

/// Appends `input` percent-encoded per RFC 3986: the unreserved characters
/// `A-Z a-z 0-9 - _ . ~` stay, every other byte becomes `%XX` (upper case).
pub fn uri_encode_into(input: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in input {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// `input` percent-encoded per RFC 3986 (see [`uri_encode_into`]).
pub fn uri_encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len());
    uri_encode_into(input, &mut out);
    out
}

/// Appends `path` percent-encoded per RFC 3986 except that `/` stays, as in
/// the OSS V4 canonical URI.
pub fn uri_encode_path_into(path: &[u8], out: &mut String) {
    for (i, segment) in path.split(|&b| b == b'/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        uri_encode_into(segment, out);
    }
}

/// Percent-decodes `input`. `+` stays a literal plus (SigV4 clients encode a
/// space as `%20`); a `%` not followed by two hex digits stays literal.
pub fn percent_decode(input: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(input).collect()
}

/// Percent-decodes `input` with HTML form rules: `+` is a space. The OSS
/// SDKs build query strings with `requests`, which encodes a space as `+`.
pub fn form_decode(input: &str) -> Vec<u8> {
    if input.contains('+') {
        percent_decode(&input.replace('+', " "))
    } else {
        percent_decode(input)
    }
}

fn split_query(raw_query: &str, decode: fn(&str) -> Vec<u8>) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw_query
        .split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| match segment.split_once('=') {
            Some((name, value)) => (decode(name), decode(value)),
            None => (decode(segment), Vec::new()),
        })
        .collect()
}

/// The raw query split into `(name, value)` pairs, both percent-decoded.
/// Empty segments (`a=1&&b=2`) are skipped; `name` without `=` has value "".
pub fn decoded_query_pairs(raw_query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    split_query(raw_query, percent_decode)
}

/// Like [`decoded_query_pairs`], but decoded with form rules ([`form_decode`]),
/// as the OSS schemes need.
pub fn decoded_form_query_pairs(raw_query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    split_query(raw_query, form_decode)
}

fn encode_and_sort(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = pairs
        .into_iter()
        .map(|(name, value)| (uri_encode(&name), uri_encode(&value)))
        .collect();
    pairs.sort();
    pairs
}

/// The raw query as canonical `(name, value)` pairs: each part decoded then
/// re-encoded per RFC 3986, sorted by encoded name then encoded value.
pub fn canonical_query_pairs(raw_query: &str) -> Vec<(String, String)> {
    encode_and_sort(decoded_query_pairs(raw_query))
}

/// Like [`canonical_query_pairs`], but the query is decoded with form rules
/// (`+` is a space), as in the OSS V4 canonical query.
pub fn canonical_form_query_pairs(raw_query: &str) -> Vec<(String, String)> {
    encode_and_sort(decoded_form_query_pairs(raw_query))
}

/// The SigV4 canonical query string: `name=value` pairs joined by `&`,
/// with a value-less parameter written `name=`. Parameters whose decoded
/// name equals `exclude` (e.g. `X-Amz-Signature`) are left out.
pub fn canonical_query_string(raw_query: &str, exclude: Option<&str>) -> String {
    let mut out = String::with_capacity(raw_query.len() + 8);
    for (name, value) in canonical_query_pairs(raw_query) {
        if exclude.is_some_and(|ex| ex == name) {
            continue;
        }
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&name);
        out.push('=');
        out.push_str(&value);
    }
    out
}

/// Appends a header value in canonical form: leading and trailing spaces and
/// tabs removed, every inner run of them replaced by one space.
pub fn push_canonical_header_value(value: &[u8], out: &mut Vec<u8>) {
    let mut pending_space = false;
    let mut started = false;
    for &b in value {
        if b == b' ' || b == b'\t' {
            pending_space = started;
        } else {
            if pending_space {
                out.push(b' ');
                pending_space = false;
            }
            out.push(b);
            started = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_unreserved_only() {
        assert_eq!(uri_encode(b"aZ09-_.~"), "aZ09-_.~");
        assert_eq!(uri_encode(b"a b+c/d=e"), "a%20b%2Bc%2Fd%3De");
        assert_eq!(uri_encode("é".as_bytes()), "%C3%A9");
    }

    #[test]
    fn canonical_query() {
        assert_eq!(canonical_query_string("", None), "");
        assert_eq!(canonical_query_string("uploads", None), "uploads=");
        assert_eq!(
            canonical_query_string("uploadId=X&partNumber=3", None),
            "partNumber=3&uploadId=X"
        );
        assert_eq!(
            canonical_query_string("prefix=a+b%2fc&a=2&a=1&&", None),
            "a=1&a=2&prefix=a%2Bb%2Fc"
        );
        assert_eq!(canonical_query_string("x=%zz%4", None), "x=%25zz%254");
        assert_eq!(
            canonical_query_string("X-Amz-Signature=abc&b=", Some("X-Amz-Signature")),
            "b="
        );
        // Sorting is by encoded bytes: upper case before lower case.
        assert_eq!(
            canonical_query_string("Param2=value2&Param1=value1&a=b", None),
            "Param1=value1&Param2=value2&a=b"
        );
    }

    #[test]
    fn form_rules_and_paths() {
        assert_eq!(form_decode("v4%2Fx+y%2B"), b"v4/x y+");
        assert_eq!(
            canonical_form_query_pairs("prefix=a+b&uploads"),
            [
                ("prefix".to_owned(), "a%20b".to_owned()),
                ("uploads".to_owned(), String::new())
            ]
        );
        let mut out = String::new();
        uri_encode_path_into(b"/bkt/v4/obj ~.txt", &mut out);
        assert_eq!(out, "/bkt/v4/obj%20~.txt");
    }

    #[test]
    fn header_values() {
        let mut out = Vec::new();
        push_canonical_header_value(b"  a   b \t c  ", &mut out);
        assert_eq!(out, b"a b c");
        out.clear();
        push_canonical_header_value(b"   ", &mut out);
        assert_eq!(out, b"");
    }
}
