//! Coffer's client side: SigV4-signed requests to a Coffer server.
//!
//! Today it carries the admin client behind `coffer user …`; the
//! client-side encryption library and the `coffer cp/cat/ls/rm` commands
//! will build on the same signed transport.
#![forbid(unsafe_code)]

pub mod admin;
pub mod bench;
mod connector;
pub mod kms;
pub mod objects;
pub mod transport;

pub use transport::{ClientError, ClientResponse, Endpoint, SignedClient};
