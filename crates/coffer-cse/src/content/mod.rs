//! Content ciphers: seekable AES-256-CTR (OSS) and streaming AES-256-GCM
//! (S3EC), both built on aws-lc-rs's AES-CTR so that any byte offset can be
//! reached without touching the bytes before it.

pub mod ctr;
pub mod gcm;

/// AES block size: the unit of counter arithmetic.
pub const BLOCK_LEN: usize = 16;
