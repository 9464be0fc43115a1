//! The one place where object bodies enter and leave the store.
//!
//! Writing ([`ingest`], [`copy_range`]): bytes go through a [`BodyWriter`]
//! that hashes the plaintext and, for encrypted objects, seals it as one part
//! of the sealed-object format (docs/format.md) before it reaches a new blob
//! of the [`BlobStore`](coffer_store::BlobStore); the blob only becomes
//! visible when the operation commits its metadata ([`commit_staged`]).
//! Every blob is written in the metadata store's commit order (its module
//! docs): a pending row names it before its first byte when the store needs
//! one ([`BodyWriter::new`]), and a blob whose commit fails or never comes
//! is deleted, then its row ([`discard`]).
//! Reading ([`stream_range`]): only the blobs and chunks a range needs are
//! read, through the envelope's range planner, and sealed chunks are opened
//! before any byte is served. Every route (PUT, multipart, copies, ranged
//! GET) shares these paths. An upload's body is hashed and sealed in the
//! connection's task, one frame per poll, as it arrives (a thread hop per
//! frame cost more than the work saved the runtime's worker), and written
//! by a blocking thread one batch at a time; opening (GET) and copies run on
//! blocking threads, which wait on the stores there. Batches live in reused,
//! page-aligned buffers (`buffers.rs`), each byte copied into them once.

mod buffers;
mod ingest;
mod reader;
pub mod version;
mod writer;

pub use ingest::{BodyRules, BodyStream, MAX_SINGLE_UPLOAD, content_length, ingest, next_frame};
pub use reader::{BodySource, copy_range, stream_range};
pub use writer::{BlobTarget, BodyWriter, StagedBody, commit_staged, discard, discard_uncommitted};
