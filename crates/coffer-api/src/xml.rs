//! XML in and out. Responses are written with a small escaping writer (the
//! shapes are fixed and flat, so a writer is clearer than serde attributes);
//! request bodies are parsed with quick-xml's serde support.

use coffer_auth::checksum::ChecksumAlgorithm;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};

/// The `xmlns` of S3 response documents (OSS documents carry none).
pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Builds an XML document element by element, escaping text.
pub struct XmlWriter {
    out: String,
    open: Vec<&'static str>,
}

impl XmlWriter {
    /// Starts a document whose root element carries the S3 namespace.
    pub fn new(root: &'static str) -> Self {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push('<');
        out.push_str(root);
        out.push_str(" xmlns=\"");
        out.push_str(S3_NAMESPACE);
        out.push_str("\">");
        Self {
            out,
            open: vec![root],
        }
    }

    /// Starts a document whose root element has no namespace (errors).
    pub fn bare(root: &'static str) -> Self {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push('<');
        out.push_str(root);
        out.push('>');
        Self {
            out,
            open: vec![root],
        }
    }

    /// Opens `<name>`; it is closed by [`end`](Self::end) or [`finish`](Self::finish).
    pub fn start(&mut self, name: &'static str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self.open.push(name);
        self
    }

    /// Opens `<name a="v" …>` with the attribute values escaped; closed like [`start`](Self::start).
    pub fn start_with(&mut self, name: &'static str, attributes: &[(&str, &str)]) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        for (attribute, value) in attributes {
            self.out.push(' ');
            self.out.push_str(attribute);
            self.out.push_str("=\"");
            escape_into(&mut self.out, value);
            self.out.push('"');
        }
        self.out.push('>');
        self.open.push(name);
        self
    }

    /// Closes the innermost open element (nothing if none is open).
    pub fn end(&mut self) -> &mut Self {
        if let Some(name) = self.open.pop() {
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push('>');
        }
        self
    }

    /// `<name>text</name>`, with `text` escaped.
    pub fn elem(&mut self, name: &str, text: impl AsRef<str>) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        escape_into(&mut self.out, text.as_ref());
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// Escaped text inside the innermost open element.
    pub fn text(&mut self, text: &str) {
        escape_into(&mut self.out, text);
    }

    /// `<name>text</name>` when there is a `text`; nothing otherwise.
    pub fn elem_opt(&mut self, name: &str, text: Option<impl AsRef<str>>) -> &mut Self {
        if let Some(text) = text {
            self.elem(name, text);
        }
        self
    }

    /// The document, with every element still open closed.
    pub fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.end();
        }
        self.out
    }
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Every control character goes out as a character reference, as
            // S3 writes them: a literal CR would be read back as LF (XML
            // end-of-line handling) and the others are not XML 1.0 text.
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("&#x{:X};", c as u32));
            }
            c => out.push(c),
        }
    }
}

/// What `encoding-type=url` escapes: everything but unreserved characters
/// and `/`. Space is `%20` and `+` is `%2B`, so that both `unquote` (OSS
/// SDKs) and `unquote_plus` (botocore) decode keys right.
const URL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// A key (or prefix, marker…) as a listing writes it: URL-encoded when the
/// request asked for `encoding-type=url`.
pub fn encode_key(key: &str, url_encoded: bool) -> String {
    if url_encoded {
        utf8_percent_encode(key, URL_ENCODE).to_string()
    } else {
        key.to_owned()
    }
}

/// Whether `text` can be written into an XML 1.0 document at all: S3 keys
/// may hold control characters that not even a character reference can
/// carry (U+0001–U+0008, U+000B, U+000C, U+000E–U+001F); only
/// `encoding-type=url` lists those so that XML parsers accept the answer.
pub fn is_xml_text(text: &str) -> bool {
    text.chars()
        .all(|c| (c as u32) >= 0x20 || matches!(c, '\t' | '\n' | '\r'))
}

/// Parses a request body into `T`, mapping any failure to MalformedXML.
pub fn parse<'de, T: Deserialize<'de>>(body: &'de [u8]) -> ApiResult<T> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::malformed_xml())?;
    quick_xml::de::from_str(text).map_err(|_| ApiError::malformed_xml())
}

/// `<Delete>` (DeleteObjects).
#[derive(Debug, Deserialize)]
pub struct DeleteRequest {
    /// `<Quiet>`: report only the keys that failed.
    #[serde(rename = "Quiet", default)]
    pub quiet: bool,
    /// The objects to delete.
    #[serde(rename = "Object", default)]
    pub objects: Vec<DeleteEntry>,
}

/// One `<Object>` of a DeleteObjects request.
#[derive(Debug, Deserialize)]
pub struct DeleteEntry {
    /// The key to delete.
    #[serde(rename = "Key")]
    pub key: String,
    /// Accepted and ignored: Coffer keeps no versions.
    #[serde(rename = "VersionId")]
    pub version_id: Option<String>,
}

/// `<CompleteMultipartUpload>`.
#[derive(Debug, Deserialize)]
pub struct CompleteRequest {
    /// The parts that make the object, in the client's order.
    #[serde(rename = "Part", default)]
    pub parts: Vec<CompletePart>,
}

/// One `<Part>` of a CompleteMultipartUpload request.
#[derive(Debug, Deserialize)]
pub struct CompletePart {
    /// The part's number.
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    /// The ETag the upload of that part returned (quotes allowed).
    #[serde(rename = "ETag")]
    pub etag: String,
    /// `<ChecksumCRC32>` and its siblings: the part's checksum as its upload
    /// returned it.
    #[serde(rename = "ChecksumCRC32")]
    pub checksum_crc32: Option<String>,
    #[serde(rename = "ChecksumCRC32C")]
    #[allow(missing_docs)]
    pub checksum_crc32c: Option<String>,
    #[serde(rename = "ChecksumCRC64NVME")]
    #[allow(missing_docs)]
    pub checksum_crc64nvme: Option<String>,
    #[serde(rename = "ChecksumSHA1")]
    #[allow(missing_docs)]
    pub checksum_sha1: Option<String>,
    #[serde(rename = "ChecksumSHA256")]
    #[allow(missing_docs)]
    pub checksum_sha256: Option<String>,
}

impl CompletePart {
    /// The checksums the part names, with their algorithms.
    pub fn checksums(&self) -> impl Iterator<Item = (ChecksumAlgorithm, &str)> {
        use ChecksumAlgorithm::*;
        [
            (Crc32, &self.checksum_crc32),
            (Crc32c, &self.checksum_crc32c),
            (Crc64Nvme, &self.checksum_crc64nvme),
            (Sha1, &self.checksum_sha1),
            (Sha256, &self.checksum_sha256),
        ]
        .into_iter()
        .filter_map(|(algorithm, value)| Some((algorithm, value.as_deref()?.trim())))
    }
}

/// `<CreateBucketConfiguration>`.
#[derive(Debug, Deserialize)]
pub struct CreateBucketConfiguration {
    /// The region asked for; empty or absent means the default region.
    #[serde(rename = "LocationConstraint")]
    pub location_constraint: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_escapes_text() {
        let mut w = XmlWriter::new("R");
        w.elem("Key", "a<b&\"c\u{1}\n\r\t");
        assert!(
            w.finish()
                .ends_with("<Key>a&lt;b&amp;&quot;c&#x1;&#xA;&#xD;&#x9;</Key></R>")
        );
        assert!(is_xml_text("a\tb\r\nc"));
        assert!(!is_xml_text("a\u{1}b"));
    }

    #[test]
    fn url_encoding_escapes_plus_and_space() {
        assert_eq!(encode_key("a b+c/d~ä", true), "a%20b%2Bc/d~%C3%A4");
        assert_eq!(encode_key("a b", false), "a b");
    }

    #[test]
    fn parses_complete_multipart_upload() {
        let body = br#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>"aa"</ETag><PartNumber>1</PartNumber></Part><Part><ETag>bb</ETag><PartNumber>2</PartNumber></Part></CompleteMultipartUpload>"#;
        let parsed: CompleteRequest = parse(body).expect("valid");
        assert_eq!(parsed.parts.len(), 2);
        assert_eq!(parsed.parts[1].part_number, 2);
        assert_eq!(parsed.parts[1].checksums().count(), 0);
        let body = br#"<CompleteMultipartUpload><Part><ChecksumSHA256>abc=</ChecksumSHA256><ETag>"aa"</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>"#;
        let parsed: CompleteRequest = parse(body).expect("valid");
        assert_eq!(
            parsed.parts[0].checksums().collect::<Vec<_>>(),
            [(ChecksumAlgorithm::Sha256, "abc=")]
        );
    }

    #[test]
    fn parses_delete_with_quiet() {
        let body = b"<Delete><Quiet>true</Quiet><Object><Key>a</Key></Object><Object><Key>b</Key></Object></Delete>";
        let parsed: DeleteRequest = parse(body).expect("valid");
        assert!(parsed.quiet);
        assert_eq!(parsed.objects.len(), 2);
    }

    #[test]
    fn garbage_is_malformed_xml() {
        assert_eq!(
            parse::<CompleteRequest>(b"<Complete><Part>")
                .err()
                .map(|e| e.code),
            Some(crate::error::ErrorCode::MalformedXML)
        );
        assert!(parse::<DeleteRequest>(&[0xff, 0xfe]).is_err());
    }
}
