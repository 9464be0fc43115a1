//! JSON the way Python's `json.dumps` writes a flat string map
//! (`{"a": "b", "c": "d"}`, non-ASCII as `\uXXXX`): the SDKs store matdesc and
//! encryption contexts like that, and Coffer writes the same bytes.

use std::collections::BTreeMap;
use std::fmt::Write;

/// `json.dumps(dict(entries))` with default separators and `ensure_ascii`.
pub(crate) fn dumps<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::from("{");
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        quote(&mut out, key);
        out.push_str(": ");
        quote(&mut out, value);
    }
    out.push('}');
    out
}

fn quote(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Parses a stored JSON object whose values are strings (matdesc,
/// encryption context). Non-string values are kept as their JSON text.
pub(crate) fn parse_map(
    field: &str,
    text: &str,
) -> Result<BTreeMap<String, String>, crate::CseError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|_| crate::CseError::invalid(field, "not JSON"))?;
    let object = value
        .as_object()
        .ok_or_else(|| crate::CseError::invalid(field, "not a JSON object"))?;
    Ok(object
        .iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), v)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_python_json_dumps() {
        // python3 -c 'import json; print(json.dumps({"desc": "demo-key-1", "x": "é\"\\ 😀"}))'
        assert_eq!(
            dumps([("desc", "demo-key-1"), ("x", "é\"\\ 😀")]),
            r#"{"desc": "demo-key-1", "x": "\u00e9\"\\ \ud83d\ude00"}"#
        );
        assert_eq!(dumps([]), "{}");
    }

    #[test]
    fn parse_round_trips_and_names_the_field() {
        let map = parse_map("x-amz-t", r#"{"aws:x-amz-cek-alg": "115", "n": 3}"#).expect("json");
        assert_eq!(map["aws:x-amz-cek-alg"], "115");
        assert_eq!(map["n"], "3");
        let err = parse_map("x-amz-t", "[1]").expect_err("array");
        assert!(err.to_string().contains("x-amz-t"));
    }
}
