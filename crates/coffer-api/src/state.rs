//! What every request handler shares: the metadata and blob stores, the
//! keys, the root credentials and the server's settings.

use std::sync::Arc;

use coffer_auth::{Secret, SecretLookup};
use coffer_keying::ObjectKeys;
use coffer_kms::RootKey;
use coffer_store::{BlobStore, MetadataStore, UserRecord};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Root credentials: the administrator that exists before any user does.
pub struct RootCredentials {
    /// The root's access key id, checked before the user table.
    pub access_key: String,
    /// The root's secret key, wiped on drop.
    pub secret_key: Zeroizing<String>,
}

/// The server's settings that requests see.
pub struct ServerSettings {
    /// The one region the server is (bucket locations, SigV4 scopes).
    pub region: String,
    /// Host names under which virtual-host-style requests are recognised:
    /// `bucket.<domain>`.
    pub domains: Vec<String>,
    /// Timeouts and connection limits of the listeners.
    pub limits: crate::limits::ConnectionLimits,
    /// What protects a new object whose request and bucket name no
    /// encryption (`--default-sse`; AES256 unless configured).
    pub default_protection: coffer_keying::DefaultProtection,
}

/// Everything a request handler can reach, shared by all connections.
pub struct AppState {
    /// Buckets, object records, uploads and users.
    pub meta: Arc<dyn MetadataStore>,
    /// The sealed (or plain) bytes of objects and parts.
    pub blobs: Arc<dyn BlobStore>,
    /// The root key: seals users' secret keys and the service master key.
    pub root_key: std::sync::Arc<RootKey>,
    /// The keys of objects: the service master key, the KMS data plane and
    /// the bucket-key cache, behind one sealing and one opening path.
    pub keys: ObjectKeys,
    /// The KMS behind the KMS API (None: no KMS API, SSE-KMS refused).
    pub kms: Option<std::sync::Arc<dyn coffer_kms::Kms>>,
    /// The administrator's credentials.
    pub root: RootCredentials,
    /// Region, domains and limits.
    pub settings: ServerSettings,
    /// The JSON access log, when one was asked for (`--access-log`).
    pub access_log: Option<crate::access_log::AccessLog>,
}

/// The state as the listeners hold it.
pub type SharedState = Arc<AppState>;

/// Who signed a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The administrator, with the root credentials.
    Root,
    /// A user, by name.
    User(String),
    /// An unsigned request: allowed only where an ACL or a policy makes something public.
    Anonymous,
}

/// The root's name wherever a principal is named (owners, logs).
pub const ROOT_NAME: &str = "root";

/// How logs name an unsigned request's principal.
pub const ANONYMOUS_NAME: &str = "anonymous";

impl Principal {
    /// The principal's name: a user's, or [`ROOT_NAME`].
    pub fn name(&self) -> &str {
        match self {
            Principal::Root => ROOT_NAME,
            Principal::User(name) => name,
            Principal::Anonymous => ANONYMOUS_NAME,
        }
    }

    /// Whether this principal is the one named `owner` (a bucket's or an object's owner).
    /// Anonymous is nobody's owner, whatever the name.
    pub fn is(&self, owner: &str) -> bool {
        match self {
            Principal::Anonymous => false,
            _ => self.name() == owner,
        }
    }

    /// A stable canonical ID for bucket/object `Owner` elements.
    pub fn owner_id(&self) -> String {
        owner_id(self.name())
    }

    /// Whether this is the administrator.
    pub fn is_root(&self) -> bool {
        matches!(self, Principal::Root)
    }
}

/// The canonical ID S3 documents show for the owner `name`: a SHA-256 of the name, so it
/// is stable and the same on every server.
pub fn owner_id(name: &str) -> String {
    hex::encode(Sha256::digest(format!("coffer-owner:{name}").as_bytes()))
}

/// The context a user's secret key is sealed under: binds it to its access key.
pub fn user_secret_context(access_key: &str) -> String {
    format!("user-secret:{access_key}")
}

impl AppState {
    /// Maps an access key to the principal it belongs to.
    pub fn principal_for(&self, access_key: &str) -> Option<Principal> {
        if access_key == self.root.access_key {
            return Some(Principal::Root);
        }
        self.user(access_key).map(|user| Principal::User(user.name))
    }

    /// The user with `access_key`, for the signature verifiers, which ask
    /// synchronously: the store is waited on in place (the worker's other
    /// tasks move to another thread meanwhile). A failed lookup is logged
    /// and refuses the key.
    fn user(&self, access_key: &str) -> Option<UserRecord> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        let handle = Handle::try_current()
            .ok()
            .filter(|handle| handle.runtime_flavor() == RuntimeFlavor::MultiThread);
        let Some(handle) = handle else {
            tracing::error!("user lookup outside the multi-threaded server runtime");
            return None;
        };
        let lookup = self.meta.user_by_access_key(access_key);
        match tokio::task::block_in_place(|| handle.block_on(lookup)) {
            Ok(user) => user,
            Err(error) => {
                tracing::error!(%error, "user lookup failed");
                None
            }
        }
    }
}

impl SecretLookup for AppState {
    fn secret(&self, access_key: &str) -> Option<Secret> {
        if access_key == self.root.access_key {
            return Some(Secret::new(self.root.secret_key.as_str().to_owned()));
        }
        let user = self.user(access_key)?;
        let opened = self
            .root_key
            .open(&user_secret_context(access_key), &user.sealed_secret)
            .map_err(|error| tracing::error!(%error, user = %user.name, "a sealed user secret did not open"))
            .ok()?;
        let text = String::from_utf8(opened.to_vec()).ok()?;
        Some(Secret::new(text))
    }
}
