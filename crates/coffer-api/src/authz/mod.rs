//! Authorization: whether the request's principal may run its operation on its target, as
//! AWS evaluates it — explicit deny in any policy wins; otherwise ownership, an allow in the
//! bucket policy or the principal's own (identity) policy, or an ACL grant allows; the bucket's
//! public access block filters public grants; nothing allowed means denied.
//!
//! Layout: this module holds the evaluation order; [`acl`] the access control lists of buckets
//! and objects; [`identity`] the policies attached to users; [`public_access_block`] the
//! bucket's four switches. The policy documents themselves are parsed and evaluated by
//! `coffer-policy`.
//!
//! Today (the seam): `ops::authorized_bucket` allows owners and root and enforces the bucket's
//! TLS policy; the evaluation moves here, called once per request from `ops::dispatch` with
//! the operation the router named (issue #15).

pub mod acl;
pub mod identity;
pub mod public_access_block;
