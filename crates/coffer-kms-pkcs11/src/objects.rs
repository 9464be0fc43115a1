//! How Coffer's keys and aliases are kept as token objects, and the token
//! calls on them. The token is the only truth: nothing here is cached.
//!
//! - A key version is an AES-256 secret key object: `CKA_LABEL` = the key
//!   id, `CKA_ID` = the version (u32, big-endian; a key made outside Coffer
//!   with another `CKA_ID` counts as version 1), `CKA_TOKEN`,
//!   `CKA_PRIVATE`, `CKA_SENSITIVE`, not `CKA_EXTRACTABLE`: its material
//!   never leaves the token.
//! - A key's state: a deletion record (below) ⇒ PendingDeletion;
//!   `CKA_ENCRYPT` or `CKA_DECRYPT` false on any version ⇒ Disabled; else
//!   Enabled. The token itself refuses a key whose `CKA_ENCRYPT`/`CKA_DECRYPT`
//!   is false, so a change made with the token's own tools takes effect at once.
//! - Records are private data objects, `CKA_APPLICATION` naming the kind:
//!   an alias (`coffer-kms-alias`, `CKA_LABEL` = the alias name, `CKA_VALUE`
//!   = the key id) and a scheduled deletion (`coffer-kms-deletion`,
//!   `CKA_LABEL` = the key id, `CKA_VALUE` = the day, `YYYY-MM-DD`).
//!   (Not `CKA_END_DATE`: softhsm2 2.6 cannot read a date attribute back
//!   once it is set.)

use coffer_kms::KmsError;
use coffer_kms::kms::KeyState;
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use time::Date as Day;
use time::macros::format_description;
use zeroize::Zeroizing;

use crate::token::unavailable;

/// `CKA_APPLICATION` of alias records.
const ALIAS: &[u8] = b"coffer-kms-alias";
/// `CKA_APPLICATION` of deletion records.
const DELETION: &[u8] = b"coffer-kms-deletion";
const DAY_FORMAT: &[time::format_description::FormatItem<'static>] =
    format_description!("[year]-[month]-[day]");
/// AES-256.
const KEY_LEN: u64 = 32;

/// One version of a key.
pub struct Version {
    pub number: u32,
    pub handle: ObjectHandle,
    usable: bool,
}

/// A key as the token has it: every version, oldest first (never empty).
pub struct Key {
    pub id: String,
    pub versions: Vec<Version>,
    /// When a PendingDeletion key is to be destroyed.
    pub deletion_day: Option<Day>,
}

impl Key {
    /// The state the token's objects give (see the module doc).
    pub fn state(&self) -> KeyState {
        if self.deletion_day.is_some() {
            KeyState::PendingDeletion
        } else if self.versions.iter().all(|v| v.usable) {
            KeyState::Enabled
        } else {
            KeyState::Disabled
        }
    }

    pub fn current(&self) -> &Version {
        self.versions
            .last()
            .expect("a Key is only made from at least one version")
    }

    pub fn version(&self, number: u32) -> Option<&Version> {
        self.versions.iter().find(|v| v.number == number)
    }

    /// `Ok` if the key may be used, else the error a use gets.
    pub fn require_enabled(&self) -> Result<(), KmsError> {
        match self.state() {
            KeyState::Enabled => Ok(()),
            KeyState::Disabled => Err(KmsError::Disabled(self.id.clone())),
            state => Err(KmsError::InvalidState {
                key: self.id.clone(),
                state: state.as_str(),
            }),
        }
    }
}

/// Maps a token error: errors that say the token or session is gone are
/// [`KmsError::Internal`] (the connection is started over); others are what
/// `refused` makes of them.
fn token_error(call: &str, error: Error, refused: impl FnOnce() -> KmsError) -> KmsError {
    match error {
        Error::Pkcs11(
            RvError::KeyFunctionNotPermitted
            | RvError::EncryptedDataInvalid
            | RvError::EncryptedDataLenRange
            | RvError::GeneralError
            | RvError::DataLenRange
            | RvError::DataInvalid,
            _,
        ) => refused(),
        other => unavailable(call, other),
    }
}

fn find(session: &Session, template: &[Attribute]) -> Result<Vec<ObjectHandle>, KmsError> {
    session
        .find_objects(template)
        .map_err(|e| unavailable("C_FindObjects", e))
}

/// The key `key_id`, or `NotFound`.
pub fn key(session: &Session, key_id: &str) -> Result<Key, KmsError> {
    let handles = find(
        session,
        &[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Label(key_id.as_bytes().to_vec()),
        ],
    )?;
    let mut versions = Vec::with_capacity(handles.len());
    for handle in handles {
        versions.push(read_version(session, handle)?);
    }
    if versions.is_empty() {
        return Err(KmsError::NotFound(key_id.to_owned()));
    }
    versions.sort_by_key(|v| v.number);
    let deletion_day = records(session, DELETION, Some(key_id))?
        .first()
        .and_then(|record| Day::parse(&record.value, DAY_FORMAT).ok());
    Ok(Key {
        id: key_id.to_owned(),
        versions,
        deletion_day,
    })
}

fn read_version(session: &Session, handle: ObjectHandle) -> Result<Version, KmsError> {
    let attributes = session
        .get_attributes(
            handle,
            &[
                AttributeType::Id,
                AttributeType::Encrypt,
                AttributeType::Decrypt,
            ],
        )
        .map_err(|e| unavailable("C_GetAttributeValue", e))?;
    let mut version = Version {
        number: 1,
        handle,
        usable: true,
    };
    for attribute in attributes {
        match attribute {
            Attribute::Id(id) => {
                if let Ok(bytes) = <[u8; 4]>::try_from(id.as_slice()) {
                    version.number = u32::from_be_bytes(bytes);
                }
            }
            Attribute::Encrypt(allowed) | Attribute::Decrypt(allowed) => {
                version.usable &= allowed;
            }
            _ => {}
        }
    }
    Ok(version)
}

/// Every key id in the token (labels of AES secret keys).
pub fn key_ids(session: &Session) -> Result<Vec<String>, KmsError> {
    let handles = find(
        session,
        &[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
        ],
    )?;
    let mut ids = std::collections::BTreeSet::new();
    for handle in handles {
        let attributes = session
            .get_attributes(handle, &[AttributeType::Label])
            .map_err(|e| unavailable("C_GetAttributeValue", e))?;
        for attribute in attributes {
            if let Attribute::Label(label) = attribute
                && let Ok(label) = String::from_utf8(label)
                && !label.is_empty()
            {
                ids.insert(label);
            }
        }
    }
    Ok(ids.into_iter().collect())
}

/// Generates version `number` of `key_id` in the token, usable or not.
pub fn generate(
    session: &Session,
    key_id: &str,
    number: u32,
    usable: bool,
) -> Result<(), KmsError> {
    session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(KEY_LEN.into()),
                Attribute::Label(key_id.as_bytes().to_vec()),
                Attribute::Id(number.to_be_bytes().to_vec()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Encrypt(usable),
                Attribute::Decrypt(usable),
            ],
        )
        .map_err(|e| unavailable("C_GenerateKey", e))?;
    Ok(())
}

/// Sets `CKA_ENCRYPT`/`CKA_DECRYPT` on every version.
pub fn set_usable(session: &Session, key: &Key, usable: bool) -> Result<(), KmsError> {
    update(
        session,
        key,
        &[Attribute::Encrypt(usable), Attribute::Decrypt(usable)],
    )
}

/// Records (or, with `None`, removes) the key's deletion day.
pub fn set_deletion_day(session: &Session, key: &Key, day: Option<Day>) -> Result<(), KmsError> {
    for record in records(session, DELETION, Some(&key.id))? {
        delete_record(session, &record)?;
    }
    match day {
        Some(day) => {
            let text = day
                .format(DAY_FORMAT)
                .map_err(|e| KmsError::Internal(e.to_string()))?;
            create_record(session, DELETION, &key.id, &text)
        }
        None => Ok(()),
    }
}

fn update(session: &Session, key: &Key, template: &[Attribute]) -> Result<(), KmsError> {
    for version in &key.versions {
        session
            .update_attributes(version.handle, template)
            .map_err(|e| unavailable("C_SetAttributeValue", e))?;
    }
    Ok(())
}

/// Destroys every version of the key (its material is gone for good),
/// its deletion record and the aliases naming it.
pub fn destroy(session: &Session, key: &Key) -> Result<(), KmsError> {
    for version in &key.versions {
        session
            .destroy_object(version.handle)
            .map_err(|e| unavailable("C_DestroyObject", e))?;
    }
    set_deletion_day(session, key, None)?;
    for alias in aliases(session, None)? {
        if alias.value == key.id {
            delete_record(session, &alias)?;
        }
    }
    Ok(())
}

/// AES-256-GCM in the token: ciphertext ‖ tag.
pub fn encrypt(
    session: &Session,
    key: &Key,
    version: &Version,
    iv: &mut [u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, KmsError> {
    let params = GcmParams::new(iv, aad, 128.into())
        .map_err(|e| KmsError::Internal(format!("GCM parameters: {e}")))?;
    session
        .encrypt(&Mechanism::AesGcm(params), version.handle, plaintext)
        .map_err(|e| token_error("C_Encrypt", e, || KmsError::Disabled(key.id.clone())))
}

/// Opens ciphertext ‖ tag in the token; a wrong tag, key or AAD is
/// [`KmsError::InvalidCiphertext`] (or `Disabled` if the token refuses the key).
pub fn decrypt(
    session: &Session,
    key: &Key,
    version: &Version,
    iv: &mut [u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    let params = GcmParams::new(iv, aad, 128.into())
        .map_err(|e| KmsError::Internal(format!("GCM parameters: {e}")))?;
    match session.decrypt(&Mechanism::AesGcm(params), version.handle, sealed) {
        Ok(plaintext) => Ok(Zeroizing::new(plaintext)),
        Err(Error::Pkcs11(RvError::KeyFunctionNotPermitted, _)) => {
            Err(KmsError::Disabled(key.id.clone()))
        }
        Err(e) => Err(token_error("C_Decrypt", e, || KmsError::InvalidCiphertext)),
    }
}

/// Random bytes from the token's generator.
pub fn random(session: &Session, out: &mut [u8]) -> Result<(), KmsError> {
    session
        .generate_random_slice(out)
        .map_err(|e| unavailable("C_GenerateRandom", e))
}

/// One record (a private data object): its name (`CKA_LABEL`), value and handle.
pub struct Record {
    pub name: String,
    pub value: String,
    handle: ObjectHandle,
}

fn record_template(application: &[u8], name: Option<&str>) -> Vec<Attribute> {
    let mut template = vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Application(application.to_vec()),
    ];
    if let Some(name) = name {
        template.push(Attribute::Label(name.as_bytes().to_vec()));
    }
    template
}

fn records(
    session: &Session,
    application: &[u8],
    name: Option<&str>,
) -> Result<Vec<Record>, KmsError> {
    let mut out = Vec::new();
    for handle in find(session, &record_template(application, name))? {
        let attributes = session
            .get_attributes(handle, &[AttributeType::Label, AttributeType::Value])
            .map_err(|e| unavailable("C_GetAttributeValue", e))?;
        let (mut label, mut value) = (None, None);
        for attribute in attributes {
            match attribute {
                Attribute::Label(bytes) => label = String::from_utf8(bytes).ok(),
                Attribute::Value(bytes) => value = String::from_utf8(bytes).ok(),
                _ => {}
            }
        }
        if let (Some(name), Some(value)) = (label, value) {
            out.push(Record {
                name,
                value,
                handle,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn create_record(
    session: &Session,
    application: &[u8],
    name: &str,
    value: &str,
) -> Result<(), KmsError> {
    let mut template = record_template(application, Some(name));
    template.extend([
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Value(value.as_bytes().to_vec()),
    ]);
    session
        .create_object(&template)
        .map_err(|e| unavailable("C_CreateObject", e))?;
    Ok(())
}

fn delete_record(session: &Session, record: &Record) -> Result<(), KmsError> {
    session
        .destroy_object(record.handle)
        .map_err(|e| unavailable("C_DestroyObject", e))
}

/// Every alias (`value`: the key id), or the one named `name`.
pub fn aliases(session: &Session, name: Option<&str>) -> Result<Vec<Record>, KmsError> {
    records(session, ALIAS, name)
}

/// Creates the alias `name` naming `key_id`.
pub fn create_alias(session: &Session, name: &str, key_id: &str) -> Result<(), KmsError> {
    create_record(session, ALIAS, name, key_id)
}

/// Deletes an alias.
pub fn delete_alias(session: &Session, alias: &Record) -> Result<(), KmsError> {
    delete_record(session, alias)
}
