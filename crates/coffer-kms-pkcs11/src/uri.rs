//! The `pkcs11:` setting, in RFC 7512 PKCS#11 URI syntax: path attributes
//! name the token (and, for the root key, the key object), query attributes
//! the module and where the PIN comes from:
//!
//! ```text
//! pkcs11:token=coffer?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/coffer/pin
//! pkcs11:token=coffer;object=coffer-root?module-path=…&pin-source=file:/etc/coffer/pin
//! ```
//!
//! The PIN is never part of the setting (`pin-value` is refused: settings
//! reach process listings and logs); it comes from the `pin-source` file or
//! from `COFFER_PKCS11_PIN`.

use std::fmt;
use std::path::PathBuf;

use percent_encoding::percent_decode_str;
use zeroize::Zeroizing;

/// The environment variable the PIN may come from instead of a file.
pub const PIN_ENV: &str = "COFFER_PKCS11_PIN";

/// A parsed `pkcs11:` URI.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenUri {
    /// The PKCS#11 module (`module-path`).
    pub module: PathBuf,
    /// The token's label (`token`).
    pub token: String,
    /// The token's serial number (`serial`), when several tokens share a label.
    pub serial: Option<String>,
    /// A key object's label (`object`): the root key's wrapping key.
    pub object: Option<String>,
    /// The file holding the PIN (`pin-source`); `None`: `COFFER_PKCS11_PIN`.
    pub pin_file: Option<PathBuf>,
}

impl fmt::Debug for TokenUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Shown in logs and errors: everything but the PIN, which the URI never holds.
impl fmt::Display for TokenUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pkcs11:token={}", self.token)?;
        if let Some(serial) = &self.serial {
            write!(f, ";serial={serial}")?;
        }
        if let Some(object) = &self.object {
            write!(f, ";object={object}")?;
        }
        write!(f, "?module-path={}", self.module.display())
    }
}

impl TokenUri {
    /// Parses `pkcs11:…`; every error names the attribute at fault.
    pub fn parse(text: &str) -> Result<TokenUri, String> {
        let rest = text
            .trim()
            .strip_prefix("pkcs11:")
            .ok_or("a PKCS#11 URI starts with \"pkcs11:\"")?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (mut module, mut token, mut serial, mut object, mut pin_file) =
            (None, None, None, None, None);
        let attributes = path
            .split(';')
            .map(|a| (a, true))
            .chain(query.split('&').map(|a| (a, false)));
        for (attribute, in_path) in attributes.filter(|(a, _)| !a.is_empty()) {
            let (name, value) = attribute
                .split_once('=')
                .ok_or_else(|| format!("PKCS#11 URI attribute {attribute:?} has no value"))?;
            let value = percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| format!("PKCS#11 URI attribute {name} is not UTF-8"))?
                .into_owned();
            match (name, in_path) {
                ("token", true) => token = Some(value),
                ("serial", true) => serial = Some(value),
                ("object", true) => object = Some(value),
                ("module-path", false) => module = Some(PathBuf::from(value)),
                ("pin-source", false) => {
                    pin_file = Some(PathBuf::from(
                        value.strip_prefix("file:").unwrap_or(&value).to_owned(),
                    ))
                }
                ("pin-value", false) => {
                    return Err(format!(
                        "a PKCS#11 URI must not hold the PIN (pin-value): use \
                         pin-source=file:/path or {PIN_ENV}"
                    ));
                }
                (_, true) => {
                    return Err(format!(
                        "unsupported PKCS#11 URI path attribute {name:?} \
                         (expected token, serial, object)"
                    ));
                }
                (_, false) => {
                    return Err(format!(
                        "unsupported PKCS#11 URI query attribute {name:?} \
                         (expected module-path, pin-source)"
                    ));
                }
            }
        }
        Ok(TokenUri {
            module: module.ok_or("a PKCS#11 URI needs ?module-path=/path/to/module.so")?,
            token: token.ok_or("a PKCS#11 URI needs token=LABEL")?,
            serial,
            object,
            pin_file,
        })
    }

    /// The user PIN: the `pin-source` file's first line, else `COFFER_PKCS11_PIN`.
    pub fn pin(&self) -> Result<Zeroizing<String>, String> {
        if let Some(path) = &self.pin_file {
            let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                format!("cannot read the PKCS#11 PIN file {}: {e}", path.display())
            })?);
            return Ok(Zeroizing::new(
                text.lines().next().unwrap_or_default().to_owned(),
            ));
        }
        match std::env::var(PIN_ENV) {
            Ok(pin) if !pin.is_empty() => Ok(Zeroizing::new(pin)),
            _ => Err(format!(
                "no PIN for the PKCS#11 token {:?}: add pin-source=file:/path to the URI or set \
                 {PIN_ENV}",
                self.token
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc_7512_attributes_and_refuses_pins_and_unknowns() {
        let uri = TokenUri::parse(
            "pkcs11:token=my%20token;object=coffer-root?module-path=/usr/lib/softhsm/libsofthsm2.so\
             &pin-source=file:/etc/coffer/pin",
        )
        .expect("parse");
        assert_eq!(uri.token, "my token");
        assert_eq!(uri.object.as_deref(), Some("coffer-root"));
        assert_eq!(uri.module, PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"));
        assert_eq!(uri.pin_file, Some(PathBuf::from("/etc/coffer/pin")));
        assert_eq!(
            uri.to_string(),
            "pkcs11:token=my token;object=coffer-root?module-path=/usr/lib/softhsm/libsofthsm2.so"
        );
        for (bad, says) in [
            ("pkcs11:token=t?module-path=/m&pin-value=1234", "pin-value"),
            ("pkcs11:token=t", "module-path"),
            ("pkcs11:?module-path=/m", "token="),
            (
                "pkcs11:token=t;slot-description=x?module-path=/m",
                "slot-description",
            ),
            ("pkcs11:token=t?module-path=/m&nope=1", "nope"),
            ("token=t", "pkcs11:"),
        ] {
            let error = TokenUri::parse(bad).expect_err(bad);
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn the_pin_comes_from_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pin");
        std::fs::write(&path, "4321\n").expect("write");
        let uri = TokenUri::parse(&format!(
            "pkcs11:token=t?module-path=/m&pin-source={}",
            path.display()
        ))
        .expect("parse");
        assert_eq!(uri.pin().expect("pin").as_str(), "4321");
        assert!(!format!("{uri:?}").contains("4321"));
    }
}
