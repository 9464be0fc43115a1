//! A streaming `multipart/form-data` reader (RFC 7578) for browser form
//! uploads: small fields are read whole, the file part is streamed in
//! bounded memory (it can be gigabytes) straight into the upload path.
//!
//! Parts are separated by `CRLF--boundary`; the body's first delimiter has
//! no CRLF before it, so the reader starts with one in its buffer. A part's
//! headers end at the first empty line; only `Content-Disposition` (its
//! `name` and `filename`) and `Content-Type` are read.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::Incoming;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::object_io::BodyStream;

/// Longest header block of one part.
const MAX_PART_HEAD: usize = 16 * 1024;
/// Longest boundary RFC 2046 allows.
const MAX_BOUNDARY: usize = 70;

/// A part's `Content-Disposition` and `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartHead {
    /// The field name, as sent.
    pub name: String,
    /// The file name, for a file part.
    pub filename: Option<String>,
    /// The part's `Content-Type`, if any.
    pub content_type: Option<String>,
}

/// Where the reader is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Before the first delimiter (a preamble may come first).
    Start,
    /// Just after a delimiter: a part's headers, or `--` (the end), follow.
    AfterDelimiter,
    /// Inside a part's body.
    InBody,
    /// After the closing delimiter.
    Closed,
}

/// Reads a `multipart/form-data` body part by part.
pub struct FormData<B = Incoming> {
    body: B,
    buf: BytesMut,
    /// `CRLF--boundary`.
    delimiter: Vec<u8>,
    position: Position,
    idle: Duration,
}

/// MalformedPOSTRequest, as S3 words it.
pub fn malformed() -> ApiError {
    ApiError::new(
        ErrorCode::MalformedPOSTRequest,
        "The body of your POST request is not well-formed multipart/form-data.",
    )
}

/// The `boundary` parameter of a `multipart/form-data` Content-Type.
pub fn boundary_of(content_type: &str) -> ApiResult<String> {
    let (kind, params) = content_type.split_once(';').ok_or_else(malformed)?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return Err(malformed());
    }
    let boundary = parameter(params, "boundary").ok_or_else(malformed)?;
    if boundary.is_empty() || boundary.len() > MAX_BOUNDARY {
        return Err(malformed());
    }
    Ok(boundary)
}

impl<B: BodyStream> FormData<B> {
    /// A reader of `body`, whose parts are separated by `boundary`.
    pub fn new(body: B, boundary: &str, idle: Duration) -> Self {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        Self {
            body,
            buf: BytesMut::from(&b"\r\n"[..]),
            delimiter,
            position: Position::Start,
            idle,
        }
    }

    /// The next part's head; `None` after the closing delimiter. The rest
    /// of the current part, if unread, is skipped.
    pub async fn next_part(&mut self) -> ApiResult<Option<PartHead>> {
        loop {
            match self.position {
                Position::Closed => return Ok(None),
                Position::InBody => while self.next_chunk().await?.is_some() {},
                Position::Start => {
                    // Skip the preamble, keeping what could start a delimiter.
                    match find(&self.buf, &self.delimiter) {
                        Some(at) => {
                            self.buf.advance(at + self.delimiter.len());
                            self.position = Position::AfterDelimiter;
                        }
                        None => {
                            let keep = self.delimiter.len() - 1;
                            if self.buf.len() > keep {
                                self.buf.advance(self.buf.len() - keep);
                            }
                            self.fill_or_fail().await?;
                        }
                    }
                }
                Position::AfterDelimiter => return self.read_head().await,
            }
        }
    }

    /// The current part's whole value; more than `limit` bytes is
    /// `too_large`.
    pub async fn read_value(&mut self, limit: usize, too_large: ApiError) -> ApiResult<Bytes> {
        let mut value = BytesMut::new();
        while let Some(chunk) = self.next_chunk().await? {
            if value.len() + chunk.len() > limit {
                return Err(too_large);
            }
            value.extend_from_slice(&chunk);
        }
        Ok(value.freeze())
    }

    /// The next bytes of the current part's body; `None` at its end.
    pub async fn next_chunk(&mut self) -> ApiResult<Option<Bytes>> {
        if self.position != Position::InBody {
            return Ok(None);
        }
        loop {
            if let Some(at) = find(&self.buf, &self.delimiter) {
                if at > 0 {
                    return Ok(Some(self.buf.split_to(at).freeze()));
                }
                self.buf.advance(self.delimiter.len());
                self.position = Position::AfterDelimiter;
                return Ok(None);
            }
            // Everything but a tail that could be the start of the delimiter.
            let safe = self.buf.len().saturating_sub(self.delimiter.len() - 1);
            if safe > 0 {
                return Ok(Some(self.buf.split_to(safe).freeze()));
            }
            self.fill_or_fail().await?;
        }
    }

    /// Reads the rest of the body after the current part, so the
    /// connection can be reused; bounded by `limit` bytes.
    pub async fn drain(&mut self, limit: u64) -> ApiResult<()> {
        let mut seen = 0u64;
        self.buf.clear();
        while let Some(data) = self.body.next_data(self.idle).await? {
            seen += data.len() as u64;
            if seen > limit {
                return Err(malformed());
            }
        }
        self.position = Position::Closed;
        Ok(())
    }

    /// After a delimiter: `--` closes the body; else the line ends and the
    /// part's headers follow up to an empty line.
    async fn read_head(&mut self) -> ApiResult<Option<PartHead>> {
        while self.buf.len() < 2 {
            self.fill_or_fail().await?;
        }
        if self.buf.starts_with(b"--") {
            self.position = Position::Closed;
            return Ok(None);
        }
        // The buffer now starts with the delimiter line's CRLF, so an empty
        // header block is found too.
        let end = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at;
            }
            if self.buf.len() > MAX_PART_HEAD {
                return Err(malformed());
            }
            self.fill_or_fail().await?;
        };
        let block = self.buf.split_to(end + 4);
        let text = std::str::from_utf8(&block).map_err(|_| malformed())?;
        let mut name = None;
        let mut filename = None;
        let mut content_type = None;
        for line in text.split("\r\n").filter(|l| !l.is_empty()) {
            let (header, value) = line.split_once(':').ok_or_else(malformed)?;
            let header = header.trim();
            if header.eq_ignore_ascii_case("content-disposition") {
                let (kind, params) = value.split_once(';').unwrap_or((value, ""));
                if !kind.trim().eq_ignore_ascii_case("form-data") {
                    return Err(malformed());
                }
                name = parameter(params, "name");
                filename = parameter(params, "filename");
            } else if header.eq_ignore_ascii_case("content-type") {
                content_type = Some(value.trim().to_owned());
            }
        }
        self.position = Position::InBody;
        Ok(Some(PartHead {
            name: name.ok_or_else(malformed)?,
            filename,
            content_type,
        }))
    }

    /// More of the body into the buffer; the body ending inside a form is
    /// MalformedPOSTRequest.
    async fn fill_or_fail(&mut self) -> ApiResult<()> {
        match self.body.next_data(self.idle).await? {
            Some(data) => {
                self.buf.extend_from_slice(&data);
                Ok(())
            }
            None => Err(malformed()),
        }
    }
}

/// Parameter `name` of a `; a=b; c="d"` list (quoted or not). Browsers
/// escape `"` in quoted values as `%22` (the HTML standard), which is kept.
fn parameter(params: &str, name: &str) -> Option<String> {
    let mut rest = params;
    while let Some(start) = rest.find(|c: char| !c.is_whitespace() && c != ';') {
        rest = &rest[start..];
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        let after = &rest[eq + 1..];
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => {
                let close = quoted.find('"')?;
                (&quoted[..close], &quoted[close + 1..])
            }
            None => {
                let end = after.find(';').unwrap_or(after.len());
                (after[..end].trim(), &after[end..])
            }
        };
        if key.eq_ignore_ascii_case(name) {
            return Some(value.to_owned());
        }
        rest = next;
    }
    None
}

/// The first position of `needle` in `haystack`: candidates are found by
/// its first byte (a fast scan), then compared whole.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while let Some(offset) = haystack[from..].iter().position(|b| *b == first) {
        let at = from + offset;
        if haystack.len() - at < needle.len() {
            return None;
        }
        if &haystack[at..at + needle.len()] == needle {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body delivered in fixed-size pieces, to cut delimiters anywhere.
    struct Pieces(Vec<Bytes>);

    impl BodyStream for Pieces {
        async fn next_data(&mut self, _idle: Duration) -> ApiResult<Option<Bytes>> {
            Ok((!self.0.is_empty()).then(|| self.0.remove(0)))
        }
    }

    fn pieces(body: &[u8], size: usize) -> Pieces {
        Pieces(body.chunks(size).map(Bytes::copy_from_slice).collect())
    }

    const BODY: &[u8] = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nuploads/${filename}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a b.txt\"\r\nContent-Type: text/plain\r\n\r\nline\r\n--XyQnot yet\r\n--Xy\r\n--XyZ--\r\n";

    async fn read_all(body: Pieces) -> (String, PartHead, Vec<u8>, Option<PartHead>) {
        let mut form = FormData::new(body, "XyZ", Duration::from_secs(1));
        let key = form.next_part().await.expect("ok").expect("a part");
        assert_eq!(key.name, "key");
        let value = form
            .read_value(100, malformed())
            .await
            .expect("short value");
        let file = form.next_part().await.expect("ok").expect("the file");
        let mut bytes = Vec::new();
        while let Some(chunk) = form.next_chunk().await.expect("ok") {
            bytes.extend_from_slice(&chunk);
        }
        let end = form.next_part().await.expect("ok");
        (
            String::from_utf8(value.to_vec()).expect("utf-8"),
            file,
            bytes,
            end,
        )
    }

    #[tokio::test]
    async fn reads_fields_and_streams_the_file_at_any_split() {
        for size in [1, 2, 3, 7, 16, BODY.len()] {
            let (key, file, bytes, end) = read_all(pieces(BODY, size)).await;
            assert_eq!(key, "uploads/${filename}", "split {size}");
            assert_eq!(file.filename.as_deref(), Some("a b.txt"));
            assert_eq!(file.content_type.as_deref(), Some("text/plain"));
            assert_eq!(bytes, b"line\r\n--XyQnot yet\r\n--Xy", "split {size}");
            assert_eq!(end, None);
        }
    }

    #[tokio::test]
    async fn truncated_or_oversized_bodies_are_refused() {
        let cut = &BODY[..BODY.len() - 20];
        let mut form = FormData::new(pieces(cut, 5), "XyZ", Duration::from_secs(1));
        form.next_part().await.expect("ok");
        form.next_part().await.expect("ok");
        let mut result = Ok(Some(Bytes::new()));
        while let Ok(Some(_)) = result {
            result = form.next_chunk().await;
        }
        assert_eq!(
            result.expect_err("cut").code,
            ErrorCode::MalformedPOSTRequest
        );
        let mut form = FormData::new(pieces(BODY, 4), "XyZ", Duration::from_secs(1));
        form.next_part().await.expect("ok");
        let too_long = form
            .read_value(3, ApiError::invalid_argument("too long"))
            .await;
        assert_eq!(
            too_long.expect_err("limit").code,
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn boundaries_and_parameters() {
        assert_eq!(
            boundary_of("multipart/form-data; boundary=----WebKitFormBoundaryabc").expect("ok"),
            "----WebKitFormBoundaryabc"
        );
        assert_eq!(
            boundary_of("Multipart/Form-Data; charset=utf-8; boundary=\"a;b\"").expect("ok"),
            "a;b"
        );
        assert!(boundary_of("multipart/form-data").is_err());
        assert!(boundary_of("text/plain; boundary=x").is_err());
        assert_eq!(
            parameter("; name=\"file\"; filename=\"x;y.txt\"", "filename").as_deref(),
            Some("x;y.txt")
        );
        assert_eq!(find(b"abcabd", b"abd"), Some(3));
        assert_eq!(find(b"ab", b"abd"), None);
    }
}
