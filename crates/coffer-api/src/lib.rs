//! Coffer's HTTP edge on hyper: the TLS and plain listeners, the S3 and OSS
//! dialects (request routing, authentication, XML and errors), the KMS API,
//! and server-side encryption of object bodies (keys from `coffer-keying`).
//!
//! Layout: [`server`] accepts connections and renders errors; `auth`
//! names the principal; [`identity`] names it as policies do; [`authz`] decides what it may do; [`request`] resolves bucket and key; `router`
//! names the operation; `ops` holds one module per family of S3
//! operations; [`bucket_config`] holds the data-protection bucket
//! configurations as plain data (lifecycle rules and their evaluation,
//! object lock, the OSS WORM policy, tag sets); [`object_io`] is the
//! single place where object bodies are written and read (`body_checks` verifies what a body promised);
//! [`error`] holds every error code and its status; [`health`] answers the
//! unauthenticated `/health/live` and `/health/ready` probes; [`metrics`]
//! counts, [`monitoring`] serves probes and metrics on the admin listener,
//! and [`access_log`] writes the JSON access log.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod access_log;
mod admin;
mod auth;
pub mod authz;
pub mod background;
pub mod body;
mod body_checks;
pub mod bucket_config;
pub mod clock;
mod cors;
pub mod error;
mod form_data;
pub mod health;
pub mod identity;
pub mod kms_api;
pub mod lifecycle_worker;
mod limits;
pub mod metrics;
pub mod monitoring;
pub mod object_io;
mod ops;
mod policy_cache;
pub mod request;
mod router;
pub mod server;
pub mod sse;
mod stall;
pub mod state;
pub mod sweeper;
pub mod tls;
pub mod xml;

pub use limits::ConnectionLimits;
#[doc(hidden)]
pub use ops::fuzzing;
pub use server::{Frontend, serve, serve_tls, serve_with_frontend};
pub use state::{AppState, RootCredentials, ServerSettings, SharedState};

/// The admin API's path prefix, for clients.
pub use router::ADMIN_PREFIX;
