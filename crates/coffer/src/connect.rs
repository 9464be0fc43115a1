//! How every client command reaches a server: the endpoint and credential
//! options (`--endpoint-url`, `AWS_ACCESS_KEY_ID`, …) and the signed client
//! built from them.

use clap::Args;
use coffer_auth::Secret;
use coffer_client::{Endpoint, SignedClient};

/// The endpoint and the credentials to sign with, from flags or the usual
/// `AWS_*` environment variables.
#[derive(Args, Clone)]
pub struct ConnectArgs {
    /// The server's URL.
    #[arg(
        long,
        env = "AWS_ENDPOINT_URL",
        default_value = "http://127.0.0.1:9000"
    )]
    endpoint_url: String,
    /// Root access key.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    access_key_id: String,
    /// Root secret key.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: String,
    /// Region to sign for.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
}

/// A client that signs every request with `connect`'s credentials.
pub fn client(connect: ConnectArgs) -> Result<SignedClient, String> {
    SignedClient::new(Endpoint {
        url: connect.endpoint_url,
        access_key: connect.access_key_id,
        secret_key: Secret::new(connect.secret_access_key),
        region: connect.region,
    })
    .map_err(|e| e.to_string())
}
