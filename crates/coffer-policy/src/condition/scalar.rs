//! The typed values conditions compare: numbers, dates (ISO 8601 or epoch seconds) and
//! IPv4/IPv6 CIDR blocks. Hand-written: each is a few lines, and the crate stays free of
//! dependencies beyond serde_json.

use std::net::IpAddr;

/// A number as IAM reads one (integer or decimal).
pub(crate) fn number(text: &str) -> Option<f64> {
    let text = text.trim();
    let ok = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    ok.then(|| text.parse::<f64>().ok())
        .flatten()
        .filter(|n| n.is_finite())
}

/// A date as milliseconds since the epoch: `YYYY-MM-DD`, `YYYY-MM-DDThh:mm[:ss[.fff]]` with
/// `Z` or `±hh:mm` (UTC when absent), or a whole number of epoch seconds.
pub(crate) fn date(text: &str) -> Option<i64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().ok()?.checked_mul(1000);
    }
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut millis = days_from_civil(year, month, day) * 86_400_000;
    let mut rest = &text[10..];
    if rest.is_empty() {
        return Some(millis);
    }
    rest = rest.strip_prefix(['T', 't'])?;
    let (clock, zone) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut fields = clock.splitn(3, ':');
    let hour = two_digits(fields.next()?)?;
    let minute = two_digits(fields.next()?)?;
    let (second, fraction) = match fields.next() {
        Some(s) => match s.split_once('.') {
            Some((s, f)) => (two_digits(s)?, fraction_millis(f)?),
            None => (two_digits(s)?, 0),
        },
        None => (0, 0),
    };
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    millis += ((hour * 60 + minute) * 60 + second) * 1000 + fraction;
    let offset = match zone {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone[1..].split_once(':').unwrap_or((&zone[1..], "00"));
            let (h, m) = (two_digits(h)?, two_digits(m)?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 60 + m) * 60_000
        }
    };
    Some(millis - offset)
}

fn two_digits(s: &str) -> Option<i64> {
    (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn fraction_millis(f: &str) -> Option<i64> {
    if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let padded: String = f.chars().chain("000".chars()).take(3).collect();
    padded.parse().ok()
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An IPv4 or IPv6 block (`203.0.113.0/24`, `2001:db8::/32`; a bare address is a /32 or
/// /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = addr.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
            Some(_) => return None,
            None => max,
        };
        (prefix <= max).then_some(Cidr { network, prefix })
    }

    /// Whether `address` (text from the request) lies in the block.
    pub fn contains(&self, address: &str) -> bool {
        let Ok(address) = address.trim().parse::<IpAddr>() else {
            return false;
        };
        // A client reaching an IPv6 listener from IPv4 shows up as ::ffff:a.b.c.d.
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        let (net, addr, width) = match (self.network, address) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                (u128::from(u32::from(n)), u128::from(u32::from(a)), 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(n), u128::from(a), 128),
            _ => return false,
        };
        let shift = width - u32::from(self.prefix);
        if shift >= 128 {
            return true;
        }
        (net >> shift) == (addr >> shift)
    }

    /// Whether the block is so wide it does not narrow who may call (shorter than /8 for IPv4,
    /// /32 for IPv6), which the public test treats as no restriction.
    pub fn is_broad(&self) -> bool {
        match self.network {
            IpAddr::V4(_) => self.prefix < 8,
            IpAddr::V6(_) => self.prefix < 32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number("1.2"), Some(1.2));
        assert_eq!(number(" 10 "), Some(10.0));
        assert_eq!(number("-3"), Some(-3.0));
        assert_eq!(number("ten"), None);
        assert_eq!(number("inf"), None);
        assert_eq!(number(""), None);
    }

    #[test]
    fn dates() {
        assert_eq!(date("1970-01-01"), Some(0));
        assert_eq!(date("1970-01-02T00:00:00Z"), Some(86_400_000));
        assert_eq!(date("2020-02-29T12:30:15.5Z"), Some(1_582_979_415_500));
        assert_eq!(date("2020-02-29T14:30:15.5+02:00"), Some(1_582_979_415_500));
        assert_eq!(date("2020-02-29T12:30Z"), Some(1_582_979_400_000));
        assert_eq!(date("1582979415"), Some(1_582_979_415_000));
        assert_eq!(date("2021-02-29"), None);
        assert_eq!(date("2021-13-01"), None);
        assert_eq!(date("yesterday"), None);
        assert_eq!(date("2021-01-01T25:00:00Z"), None);
    }

    #[test]
    fn cidrs() {
        let net = Cidr::parse("203.0.113.0/24").expect("valid");
        assert!(net.contains("203.0.113.7"));
        assert!(net.contains("::ffff:203.0.113.7"));
        assert!(!net.contains("203.0.114.7"));
        assert!(!net.contains("2001:db8::1"));
        let v6 = Cidr::parse("2001:db8::/32").expect("valid");
        assert!(v6.contains("2001:db8:1::5"));
        assert!(!v6.contains("2001:db9::5"));
        assert!(Cidr::parse("0.0.0.0/0").expect("valid").contains("8.8.8.8"));
        assert!(Cidr::parse("::/0").expect("valid").contains("::1"));
        assert!(Cidr::parse("10.0.0.1").expect("valid").contains("10.0.0.1"));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("10.0.0/8").is_none());
        assert!(Cidr::parse("10.0.0.0/").is_none());
        assert!(Cidr::parse("0.0.0.0/0").expect("valid").is_broad());
        assert!(!Cidr::parse("10.0.0.0/8").expect("valid").is_broad());
    }
}
