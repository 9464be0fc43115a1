//! A request's condition keys as a statement reads them: the context first, then what the
//! caller itself says (`aws:username`, `aws:userid`, `aws:PrincipalArn`,
//! `aws:PrincipalAccount`) when the context leaves them out.

use std::borrow::Cow;

use crate::{Caller, Request};

pub(crate) struct RequestView<'r> {
    pub request: &'r Request<'r>,
}

impl<'r> RequestView<'r> {
    /// The key's values, if the request has it.
    pub fn values(&self, key: &str) -> Option<Cow<'r, [String]>> {
        if let Some(values) = self.request.context.get(key) {
            return Some(Cow::Borrowed(values));
        }
        let Caller::Principal {
            arn,
            account,
            user_id,
            name,
        } = self.request.caller
        else {
            return None;
        };
        let value = match key.to_ascii_lowercase().as_str() {
            "aws:username" if !name.is_empty() => name,
            "aws:userid" if !user_id.is_empty() => user_id,
            "aws:principalarn" => arn,
            "aws:principalaccount" => account,
            _ => return None,
        };
        Some(Cow::Owned(vec![value.to_owned()]))
    }

    /// The key's first value: what a `${key}` policy variable stands for.
    pub fn first(&self, key: &str) -> Option<String> {
        self.values(key)?.first().cloned()
    }
}
