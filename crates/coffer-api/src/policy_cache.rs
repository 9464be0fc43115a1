//! Policy documents parsed once per distinct text and shared. Bucket, user and key policies
//! are stored as written and read with every request that needs them; parsing and
//! validating the JSON each time would cost more than evaluating it (an SSE-KMS PUT checks
//! the key policy, and the caller's identity policy, on every object).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use coffer_policy::{Kind, Policy, PolicyError, Service};

/// Documents kept per (service, kind). Bounded: when full the map starts over (documents
/// are few; a server with more simply parses more often).
const ENTRIES: usize = 1024;

/// One map per (service, kind) — see [`slot`] — by document text, looked up without copying it.
type Cache = Mutex<[HashMap<String, Arc<Policy>>; 6]>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Default::default()))
}

fn slot(service: Service, kind: Kind) -> usize {
    let service = match service {
        Service::S3 => 0,
        Service::Oss => 1,
        Service::Kms => 2,
    };
    service * 2 + usize::from(kind == Kind::Identity)
}

/// `text` parsed as a `kind` policy of `service`, from the cache when it was parsed before.
/// Refusals are not cached: they are rare (stored documents were validated when written)
/// and carry the parser's message each time.
pub fn parsed(text: &str, service: Service, kind: Kind) -> Result<Arc<Policy>, PolicyError> {
    let slot = slot(service, kind);
    if let Some(policy) = cache().lock().ok().and_then(|c| c[slot].get(text).cloned()) {
        return Ok(policy);
    }
    let policy = Arc::new(Policy::parse(text, service, kind)?);
    if let Ok(mut cache) = cache().lock() {
        let map = &mut cache[slot];
        if map.len() >= ENTRIES {
            map.clear();
        }
        map.insert(text.to_owned(), Arc::clone(&policy));
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#;

    #[test]
    fn the_same_text_is_parsed_once_per_service_and_kind() {
        let first = parsed(DOC, Service::S3, Kind::Resource).expect("valid");
        let again = parsed(DOC, Service::S3, Kind::Resource).expect("valid");
        assert!(Arc::ptr_eq(&first, &again));
        // An identity policy may not name a principal: the same text is judged as what it is.
        assert!(parsed(DOC, Service::S3, Kind::Identity).is_err());
    }
}
