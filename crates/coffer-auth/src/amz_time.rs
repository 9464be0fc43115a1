//! Timestamps in the forms signatures use: `YYYYMMDDTHHMMSSZ` (ISO 8601
//! basic, as in `x-amz-date`) and the RFC 1123 `Date` header. The server's
//! HTTP dates live here too: `Last-Modified` is written by
//! [`format_http_date`], conditional headers are read by
//! [`parse_conditional_date`].

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Parses `YYYYMMDDTHHMMSSZ` (UTC). Returns `None` for anything else.
pub fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u32, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let day = u8::try_from(num(6..8)?).ok()?;
    let hour = u8::try_from(num(9..11)?).ok()?;
    let minute = u8::try_from(num(11..13)?).ok()?;
    let second = u8::try_from(num(13..15)?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Formats `t` (converted to UTC) as `YYYYMMDDTHHMMSSZ`.
pub fn format_amz_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Formats the date part of `t` (UTC) as `YYYYMMDD`.
pub fn format_scope_date(t: OffsetDateTime) -> String {
    let mut s = format_amz_date(t);
    s.truncate(8);
    s
}

const HTTP_DATE: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// Parses an HTTP date in the RFC 1123 form `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(s.trim(), HTTP_DATE)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

const RFC822_NUMERIC: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
);

/// Parses an RFC 1123 date with the zone as `GMT`, `UTC` or a numeric offset
/// (`Tue, 27 Mar 2007 19:36:42 +0000`, as s3cmd and the S3 SigV2 examples
/// write it), or an ISO 8601 basic `YYYYMMDDTHHMMSSZ`.
pub fn parse_date_lenient(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Some(t) = parse_http_date(s).or_else(|| parse_amz_date(s)) {
        return Some(t);
    }
    if let Some(rest) = s.strip_suffix(" UTC") {
        return parse_http_date(&format!("{rest} GMT"));
    }
    OffsetDateTime::parse(s, RFC822_NUMERIC).ok()
}

/// Parses the date of a conditional request header (`If-Modified-Since`,
/// `If-Unmodified-Since` and their `x-amz-copy-source-` forms): the RFC 7231
/// IMF-fixdate and every RFC 2822 form (weekday optional and unchecked,
/// one-digit day, two-digit year, seconds optional, a numeric offset or a
/// named zone). Laxer than [`parse_http_date`], which signatures use: a
/// date a client cannot write exactly only weakens a precondition, and an
/// unreadable one is ignored, as HTTP asks.
pub fn parse_conditional_date(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    let normalized = s.strip_suffix("GMT").map(|rest| format!("{rest}+0000"));
    let candidate = normalized.as_deref().unwrap_or(s);
    OffsetDateTime::parse(candidate, &time::format_description::well_known::Rfc2822).ok()
}

/// Formats `t` (converted to UTC) as an RFC 1123 HTTP date, e.g.
/// `Sun, 29 Nov 2026 11:25:32 GMT`.
pub fn format_http_date(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(HTTP_DATE)
        .expect("every UTC date-time has an RFC 1123 form")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn amz_date_round_trip() {
        let t = parse_amz_date("20261129T112534Z");
        assert_eq!(t, Some(datetime!(2026-11-29 11:25:34 UTC)));
        assert_eq!(
            format_amz_date(datetime!(2026-11-29 11:25:34 UTC)),
            "20261129T112534Z"
        );
        assert_eq!(
            format_scope_date(datetime!(2026-11-29 11:25:34 UTC)),
            "20261129"
        );
    }

    #[test]
    fn amz_date_rejects_garbage() {
        for bad in [
            "",
            "20261129T112534",
            "20261129 112534Z",
            "2026112xT112534Z",
            "20261329T112534Z",
            "20260230T112534Z",
            "20261129T256034Z",
            "+0261129T112534Z",
            "20261129T11253éZ",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn lenient_dates() {
        let t = Some(datetime!(2007-03-27 19:36:42 UTC));
        for s in [
            "Tue, 27 Mar 2007 19:36:42 +0000",
            "Tue, 27 Mar 2007 19:36:42 GMT",
            "Tue, 27 Mar 2007 19:36:42 UTC",
            "Tue, 27 Mar 2007 21:36:42 +0200",
            "20070327T193642Z",
        ] {
            assert_eq!(parse_date_lenient(s), t, "{s}");
        }
        for bad in [
            "",
            "Tue, 27 Mar 2007 19:36:42",
            "Tue, 27 Mar 2007 19:36:42 PST",
        ] {
            assert_eq!(parse_date_lenient(bad), None, "{bad}");
        }
    }

    #[test]
    fn http_date() {
        assert_eq!(
            parse_http_date("Sun, 29 Nov 2026 11:25:32 GMT"),
            Some(datetime!(2026-11-29 11:25:32 UTC))
        );
        assert_eq!(parse_http_date("Sun, 29 Nov 2026 11:25:32 PST"), None);
        assert_eq!(parse_http_date("garbage"), None);
        assert_eq!(
            format_http_date(datetime!(2026-11-29 11:25:32 UTC)),
            "Sun, 29 Nov 2026 11:25:32 GMT"
        );
    }

    /// What the server's conditional headers accepted before this parser
    /// moved here from coffer-api's `ops`: every RFC 2822 form, wider than
    /// the strict [`parse_http_date`].
    #[test]
    fn conditional_dates_accept_every_rfc_2822_form() {
        let t = Some(datetime!(2026-11-29 11:26:33 UTC));
        for s in [
            "Sun, 29 Nov 2026 11:26:33 GMT",
            " Sun, 29 Nov 2026 11:26:33 GMT ",
            "29 Nov 2026 11:26:33 GMT",
            "Mon, 29 Nov 2026 11:26:33 GMT",
            "sun, 29 nov 2026 11:26:33 GMT",
            "Sun, 29 Nov 26 11:26:33 GMT",
            "Sun, 29 Nov 2026 11:26:33 +0000",
            "Sun, 29 Nov 2026 12:26:33 +0100",
            "Sun, 29 Nov 2026 06:26:33 EST",
            "Sun, 29 Nov 2026 11:26:33 UT",
        ] {
            assert_eq!(parse_conditional_date(s), t, "{s}");
        }
        assert_eq!(
            parse_conditional_date("Sun, 1 Nov 2026 11:26 GMT"),
            Some(datetime!(2026-11-01 11:26:00 UTC))
        );
        for bad in [
            "",
            "garbage",
            "Sun, 29 Nov 2026 11:26:33",
            "20261129T112633Z",
            "Sunday, 29-Nov-26 11:26:33 GMT",
            "Sun Nov 29 11:26:33 2026",
            "Sun, 29 Nov 1899 11:26:33 GMT",
        ] {
            assert_eq!(parse_conditional_date(bad), None, "{bad}");
        }
        // The strict form the server writes is read back exactly.
        let written = format_http_date(datetime!(2026-11-29 11:26:33 UTC));
        assert_eq!(parse_conditional_date(&written), t);
        assert_eq!(parse_http_date(&written), t);
    }

    /// The vectors of the server's former `Last-Modified` formatter
    /// (coffer-api's `ops::http_date`, now this function): the same bytes.
    #[test]
    fn http_date_matches_the_servers_last_modified_vectors() {
        for (seconds, expected) in [
            (1_780_000_000, "Thu, 28 May 2026 20:26:40 GMT"),
            (1_775_000_000, "Tue, 31 Mar 2026 23:33:20 GMT"),
            (1_767_312_000, "Fri, 02 Jan 2026 00:00:00 GMT"),
            (1_795_951_593, "Sun, 29 Nov 2026 11:26:33 GMT"),
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        ] {
            let t = OffsetDateTime::from_unix_timestamp(seconds).expect("in range");
            assert_eq!(format_http_date(t), expected);
            assert_eq!(parse_http_date(expected), Some(t));
        }
        // Another offset is converted to UTC first.
        let east = datetime!(2026-11-29 12:25:32 +01:00);
        assert_eq!(format_http_date(east), "Sun, 29 Nov 2026 11:25:32 GMT");
    }
}
