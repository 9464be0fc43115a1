//! Identity policies: the policy documents attached to users (`coffer user policy put`),
//! evaluated together with the bucket policy.

use coffer_policy::Policy;

use crate::error::ApiResult;
use crate::state::{AppState, Principal};

/// The policy attached to `principal`, if any (root and anonymous never have one).
pub async fn policy_of(state: &AppState, principal: &Principal) -> ApiResult<Option<Policy>> {
    let _ = (state, principal);
    Ok(None)
}
