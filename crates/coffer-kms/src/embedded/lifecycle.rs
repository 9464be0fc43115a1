//! Key references, key states and the clock-driven transitions (deletion
//! windows, BYOK expiry, automatic rotation), all on the in-memory [`State`].

use coffer_crypto::SymmetricKey;
use time::{Duration, OffsetDateTime};

use super::keystore::{Cmk, ImportToken, MaterialVersion, State};
use crate::kms::{KeyMetadata, KeyState, KmsError, Origin};

/// The account every ARN names (Coffer has one).
pub const ACCOUNT: &str = "000000000000";
/// Tokens stay known this long after they expire, so a late ImportKeyMaterial
/// hears "expired" rather than "invalid"; then they are forgotten.
const EXPIRED_TOKEN_GRACE: Duration = Duration::hours(24);

/// What a key reference names: a key id, or an alias (`alias/name`) to resolve.
pub enum Target<'a> {
    /// A key id (from an id or a key ARN).
    Id(&'a str),
    /// An alias name, `alias/…` (from the name or an alias ARN).
    Alias(&'a str),
}

/// Reads a key reference: key id, key ARN, `alias/name` or alias ARN. An ARN
/// for another region or account names nothing here. Shared by every backend,
/// so each reads references alike.
pub fn parse_key_ref<'a>(key_ref: &'a str, region: &str) -> Option<Target<'a>> {
    if let Some(rest) = key_ref.strip_prefix("arn:") {
        let mut parts = rest.splitn(5, ':');
        let (partition, service, arn_region, account, resource) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        if partition != "aws" || service != "kms" || arn_region != region || account != ACCOUNT {
            return None;
        }
        if let Some(id) = resource.strip_prefix("key/") {
            return Some(Target::Id(id));
        }
        return resource
            .starts_with("alias/")
            .then_some(Target::Alias(resource));
    }
    if key_ref.starts_with("alias/") {
        Some(Target::Alias(key_ref))
    } else {
        Some(Target::Id(key_ref))
    }
}

impl State {
    /// The key id a reference names.
    pub fn resolve_id(&self, key_ref: &str, region: &str) -> Result<String, KmsError> {
        let not_found = || KmsError::NotFound(key_ref.to_owned());
        let id = match parse_key_ref(key_ref, region).ok_or_else(not_found)? {
            Target::Id(id) => id,
            Target::Alias(alias) => self.aliases.get(alias).ok_or_else(not_found)?.as_str(),
        };
        if self.keys.contains_key(id) {
            Ok(id.to_owned())
        } else {
            Err(not_found())
        }
    }

    pub fn resolve(&self, key_ref: &str, region: &str) -> Result<&Cmk, KmsError> {
        let id = self.resolve_id(key_ref, region)?;
        self.keys
            .get(&id)
            .ok_or_else(|| KmsError::NotFound(key_ref.to_owned()))
    }

    pub fn resolve_mut(&mut self, key_ref: &str, region: &str) -> Result<&mut Cmk, KmsError> {
        let id = self.resolve_id(key_ref, region)?;
        self.keys
            .get_mut(&id)
            .ok_or_else(|| KmsError::NotFound(key_ref.to_owned()))
    }

    /// Whether any clock-driven transition is due at `now`.
    pub fn timers_due(&self, now: OffsetDateTime) -> bool {
        self.keys
            .values()
            .any(|cmk| deletion_due(cmk, now) || expiry_due(cmk, now) || rotation_due(cmk, now))
            || self
                .import_tokens
                .values()
                .any(|t| t.expires + EXPIRED_TOKEN_GRACE <= now)
    }

    /// Applies every transition due at `now`: keys past their deletion date
    /// are removed with all their material, aliases and import tokens; BYOK
    /// material past its ValidTo is destroyed (state PendingImport); keys
    /// past their rotation date get a new `AUTOMATIC` version.
    pub fn fire_timers(&mut self, now: OffsetDateTime) -> Result<(), KmsError> {
        let doomed: Vec<String> = self
            .keys
            .values()
            .filter(|cmk| deletion_due(cmk, now))
            .map(|cmk| cmk.key_id.clone())
            .collect();
        for id in &doomed {
            self.keys.remove(id);
            self.aliases.retain(|_, target| target != id);
            self.import_tokens.retain(|_, token| &token.key_id != id);
            tracing::info!(key_id = %id, "KMS key deleted: its deletion window has passed");
        }
        for cmk in self.keys.values_mut() {
            if expiry_due(cmk, now) {
                cmk.versions.clear();
                cmk.valid_to = None;
                if matches!(cmk.state, KeyState::Enabled | KeyState::Disabled) {
                    cmk.state = KeyState::PendingImport;
                }
                tracing::info!(key_id = %cmk.key_id, "KMS imported key material expired and was deleted");
            }
            if rotation_due(cmk, now) {
                add_version(cmk, now, "AUTOMATIC")?;
                cmk.rotation.anchor = Some(now);
            }
        }
        self.import_tokens.retain(|_, t| !token_forgotten(t, now));
        Ok(())
    }
}

fn token_forgotten(token: &ImportToken, now: OffsetDateTime) -> bool {
    token
        .expires
        .checked_add(EXPIRED_TOKEN_GRACE)
        .is_some_and(|forget| forget <= now)
}

fn deletion_due(cmk: &Cmk, now: OffsetDateTime) -> bool {
    cmk.state == KeyState::PendingDeletion && cmk.deletion_date.is_some_and(|d| d <= now)
}

fn expiry_due(cmk: &Cmk, now: OffsetDateTime) -> bool {
    cmk.origin == Origin::External && cmk.valid_to.is_some_and(|v| v <= now)
}

fn rotation_due(cmk: &Cmk, now: OffsetDateTime) -> bool {
    cmk.state == KeyState::Enabled
        && cmk.origin == Origin::Generated
        && cmk.rotation.next().is_some_and(|next| next <= now)
}

/// Adds a fresh material version and makes it current; returns its number.
pub fn add_version(
    cmk: &mut Cmk,
    now: OffsetDateTime,
    rotation_type: &'static str,
) -> Result<u32, KmsError> {
    let version = cmk
        .versions
        .keys()
        .next_back()
        .copied()
        .unwrap_or(0)
        .max(cmk.current_version)
        .checked_add(1)
        .ok_or_else(|| KmsError::Internal("material version overflow".into()))?;
    cmk.versions.insert(
        version,
        MaterialVersion {
            created: now,
            rotation_type: Some(rotation_type),
            key: generate_material()?,
        },
    );
    cmk.current_version = version;
    Ok(version)
}

pub fn generate_material() -> Result<SymmetricKey, KmsError> {
    SymmetricKey::generate().map_err(|e| KmsError::Internal(e.to_string()))
}

/// Data-plane gate: only Enabled keys encrypt and decrypt.
pub fn check_usable(cmk: &Cmk) -> Result<(), KmsError> {
    match cmk.state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(KmsError::Disabled(cmk.key_id.clone())),
        state => Err(invalid_state(cmk, state)),
    }
}

pub fn invalid_state(cmk: &Cmk, state: KeyState) -> KmsError {
    KmsError::InvalidState {
        key: cmk.key_id.clone(),
        state: state.as_str(),
    }
}

/// The material of `version`, or InvalidCiphertext when the key has none.
pub fn material(cmk: &Cmk, version: u32) -> Result<&SymmetricKey, KmsError> {
    cmk.versions
        .get(&version)
        .map(|m| &m.key)
        .ok_or(KmsError::InvalidCiphertext)
}

/// The current version and its material, for encryption.
pub fn current_material(cmk: &Cmk) -> Result<(u32, &SymmetricKey), KmsError> {
    let key = cmk
        .versions
        .get(&cmk.current_version)
        .map(|m| &m.key)
        .ok_or_else(|| invalid_state(cmk, KeyState::PendingImport))?;
    Ok((cmk.current_version, key))
}

/// A key's ARN in `region`.
pub fn key_arn(region: &str, key_id: &str) -> String {
    format!("arn:aws:kms:{region}:{ACCOUNT}:key/{key_id}")
}

pub fn metadata(cmk: &Cmk, region: &str) -> KeyMetadata {
    KeyMetadata {
        key_id: cmk.key_id.clone(),
        arn: key_arn(region, &cmk.key_id),
        description: cmk.description.clone(),
        state: cmk.state,
        origin: cmk.origin,
        key_spec: cmk.key_spec,
        created: cmk.created,
        deletion_date: cmk.deletion_date,
        valid_to: cmk.valid_to,
        current_version: cmk.current_version,
        managed: cmk.managed,
    }
}

/// A fresh key id, unused in `state`.
pub fn new_key_id(state: &State) -> Result<String, KmsError> {
    loop {
        let id = random_key_id()?;
        if !state.keys.contains_key(&id) {
            return Ok(id);
        }
    }
}

/// 16 random bytes as a version-4 UUID: the form of every key id.
pub fn random_key_id() -> Result<String, KmsError> {
    let mut bytes = [0u8; 16];
    coffer_crypto::random::fill(&mut bytes).map_err(|e| KmsError::Internal(e.to_string()))?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// Alias names: `alias/` then 1..=250 of `[A-Za-z0-9/_-]`; `alias/aws/` is
/// reserved for the service.
pub fn validate_alias(name: &str, allow_reserved: bool) -> Result<(), KmsError> {
    let invalid = || {
        KmsError::Validation(format!(
            "alias name '{name}' must be 'alias/' followed by 1 to 250 of A-Z a-z 0-9 / _ -"
        ))
    };
    let rest = name.strip_prefix("alias/").ok_or_else(invalid)?;
    if rest.is_empty()
        || rest.len() > 250
        || !rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
    {
        return Err(invalid());
    }
    if !allow_reserved && name.starts_with("alias/aws/") {
        return Err(KmsError::Validation(format!(
            "alias name '{name}' is reserved: 'alias/aws/' names belong to the service"
        )));
    }
    Ok(())
}

pub fn validate_tags(tags: &[(String, String)]) -> Result<(), KmsError> {
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
            return Err(KmsError::Validation(
                "tag keys must be 1..=128 characters and values at most 256".into(),
            ));
        }
        if key.starts_with("aws:") {
            return Err(KmsError::Validation(
                "tag keys starting with 'aws:' are reserved".into(),
            ));
        }
    }
    Ok(())
}
