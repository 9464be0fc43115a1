//! The backend's connection: Coffer's SigV4 client on a small runtime of the backend's own,
//! behind a blocking call, and the AWS KMS exceptions mapped back to [`KmsError`].
//!
//! The `Kms` trait is synchronous and is called from blocking threads, while the client is
//! async. As the PostgreSQL keystore's bridge does (and for the same reasons: it works from
//! any thread, whatever runtime the caller is on), each call is spawned on the backend's own
//! one-worker runtime and the calling thread waits for its answer on a channel.

use std::time::Duration;

use coffer_client::kms::{KmsCallError, call_typed};
use coffer_client::{ClientError, Endpoint, SignedClient, Timeouts};
use coffer_kms::KmsError;
use serde_json::Value;
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

use crate::settings::{AwsKmsSettings, Credentials};

/// How long a TCP connect to the backend may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the backend may take to answer one call. With [`CONNECT_TIMEOUT`], the longest a
/// request waits for an unreachable backend before it fails.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// A signed client for the backend and the runtime it runs on.
pub(crate) struct Wire {
    /// `Some` until dropped; shut down in the background, never blocking the dropping thread.
    runtime: Option<Runtime>,
    client: std::sync::Arc<SignedClient>,
    url: String,
}

impl Wire {
    pub(crate) fn connect(settings: &AwsKmsSettings) -> Result<Wire, String> {
        let credentials = Credentials::from_env()?;
        let endpoint = Endpoint {
            url: settings.url.clone(),
            access_key: credentials.access_key,
            secret_key: credentials.secret_key,
            region: settings.region.clone(),
        };
        let timeouts = Timeouts {
            connect: Some(CONNECT_TIMEOUT),
            response: Some(RESPONSE_TIMEOUT),
        };
        let client = match &settings.ca_file {
            Some(ca_file) => SignedClient::with_ca_file(endpoint, timeouts, Some(ca_file)),
            None => SignedClient::with_timeouts(endpoint, timeouts),
        }
        .map_err(|e| format!("aws-kms backend: {e}"))?;
        let client = match credentials.session_token {
            Some(token) => client.with_session_token(token),
            None => client,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("coffer-aws-kms")
            .enable_all()
            .build()
            .map_err(|e| format!("aws-kms backend: cannot start its runtime: {e}"))?;
        Ok(Wire {
            runtime: Some(runtime),
            client: std::sync::Arc::new(client),
            url: settings.url.clone(),
        })
    }

    /// Calls `operation` and waits for its answer; `key` names the key the call is about, for
    /// the errors that need one.
    pub(crate) fn call(
        &self,
        operation: &str,
        request: Value,
        key: &str,
    ) -> Result<Value, KmsError> {
        let runtime = self
            .runtime
            .as_ref()
            .expect("the runtime is only taken when the wire is dropped");
        let client = self.client.clone();
        let name = operation.to_owned();
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let result = call_typed(&client, &name, &request).await;
            // The caller waits until it has the answer; a send fails only if it is gone.
            let _ = answer.send(result);
        });
        let wait = move || answered.recv();
        let received = match Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        };
        match received {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.describe(operation, key, error)),
            Err(_) => Err(KmsError::Internal(format!(
                "aws-kms backend {}: its client stopped",
                self.url
            ))),
        }
    }

    /// The `KmsError` of a failed call: the backend's exception where the trait has one, else
    /// an internal error naming the backend (unreachable, refused credentials, throttled).
    fn describe(&self, operation: &str, key: &str, error: KmsCallError) -> KmsError {
        let (kind, message) = match error {
            KmsCallError::Exception { kind, message, .. } => (kind, message),
            KmsCallError::Client(error) => {
                let why = match error {
                    ClientError::Timeout { waited, .. } => format!("no answer within {waited:?}"),
                    ClientError::Transport { message, .. } => message,
                    other => other.to_string(),
                };
                return KmsError::Internal(format!(
                    "aws-kms backend {} unreachable ({operation}): {why}",
                    self.url
                ));
            }
        };
        match kind.as_str() {
            "NotFoundException" => KmsError::NotFound(key.to_owned()),
            "DisabledException" => KmsError::Disabled(key.to_owned()),
            "KMSInvalidStateException" => KmsError::InvalidState {
                key: key.to_owned(),
                state: "not usable in the backend",
            },
            "InvalidCiphertextException" => KmsError::InvalidCiphertext,
            "IncorrectKeyException" => KmsError::IncorrectKey,
            "AlreadyExistsException" => KmsError::AlreadyExists(key.to_owned()),
            "InvalidImportTokenException" => KmsError::InvalidImportToken,
            "IncorrectKeyMaterialException" => KmsError::IncorrectKeyMaterial,
            "ExpiredImportTokenException" => KmsError::ExpiredImportToken,
            "ValidationException"
            | "InvalidKeyUsageException"
            | "InvalidAliasNameException"
            | "InvalidArnException"
            | "UnsupportedOperationException" => KmsError::Validation(message),
            _ => KmsError::Internal(format!(
                "aws-kms backend {} refused {operation}: {kind}: {message}",
                self.url
            )),
        }
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Dropping a runtime blocks, which panics on an async worker.
            runtime.shutdown_background();
        }
    }
}
