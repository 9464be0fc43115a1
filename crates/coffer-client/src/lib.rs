//! Coffer's client side: SigV4-signed requests to a Coffer server (or any
//! S3 endpoint), behind the `coffer` client commands.
//!
//! - [`transport`]: [`SignedClient`], an HTTP/1 client (TLS with a named CA)
//!   that signs every request.
//! - [`objects`]: object transfers (`coffer cp/cat/ls/rm`): PUT, GET by
//!   chunks, multipart, copy, listings; a [`objects::BodyTransform`] hook
//!   is where client-side encryption plugs in.
//! - [`admin`], [`kms`]: the admin API (`coffer user`, `coffer sse`) and the
//!   KMS API (`coffer kms`).
//! - [`bench`](mod@bench): the load generator behind `coffer bench`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod bench;
mod connector;
pub mod kms;
pub mod objects;
pub mod transport;

pub use transport::{ClientError, ClientResponse, Endpoint, SignedClient, Timeouts};
