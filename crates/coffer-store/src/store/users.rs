//! Users: add, look up by access key or name, list, attach a policy, delete.

use redb::{ReadableDatabase, ReadableTable};

use super::{ACCESS_KEYS, Store, USERS};
use crate::records::{decode, encode};
use crate::{StoreError, UserRecord};

impl Store {
    // ---- Users ----

    /// Adds a user; `UserExists` if the name or the access key is taken.
    pub fn put_user(&self, user: UserRecord) -> Result<(), StoreError> {
        let value = encode(&user)?;
        self.write(|txn, _| {
            let mut users = txn.open_table(USERS)?;
            let mut access_keys = txn.open_table(ACCESS_KEYS)?;
            if users.get(user.name.as_str())?.is_some()
                || access_keys.get(user.access_key.as_str())?.is_some()
            {
                return Err(StoreError::UserExists);
            }
            users.insert(user.name.as_str(), value.as_slice())?;
            access_keys.insert(user.access_key.as_str(), user.name.as_str())?;
            Ok(())
        })
    }

    /// The user whose access key is `access_key`, if any.
    pub fn user_by_access_key(&self, access_key: &str) -> Result<Option<UserRecord>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let access_keys = txn.open_table(ACCESS_KEYS)?;
        let Some(name) = access_keys.get(access_key)? else {
            return Ok(None);
        };
        let users = txn.open_table(USERS)?;
        let user = users.get(name.value())?;
        user.map(|v| decode(v.value())).transpose()
    }

    /// The user named `name`, if any.
    pub fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let users = txn.open_table(USERS)?;
        let user = users.get(name)?;
        user.map(|v| decode(v.value())).transpose()
    }

    /// Replaces the user's identity policy; returns whether the user exists.
    pub fn set_user_policy(&self, name: &str, policy: Option<String>) -> Result<bool, StoreError> {
        self.write(|txn, _| {
            let mut users = txn.open_table(USERS)?;
            let old = users
                .get(name)?
                .map(|v| decode::<UserRecord>(v.value()))
                .transpose()?;
            let Some(mut user) = old else {
                return Ok(false);
            };
            user.policy.clone_from(&policy);
            users.insert(name, encode(&user)?.as_slice())?;
            Ok(true)
        })
    }

    /// All users, sorted by name.
    pub fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let users = txn.open_table(USERS)?;
        let mut out = Vec::new();
        for entry in users.iter()? {
            let (_, v) = entry?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    /// Returns whether a user was deleted.
    pub fn delete_user(&self, name: &str) -> Result<bool, StoreError> {
        self.write(|txn, _| {
            let mut users = txn.open_table(USERS)?;
            let old = users
                .remove(name)?
                .map(|v| decode::<UserRecord>(v.value()))
                .transpose()?;
            let Some(old) = old else {
                return Ok(false);
            };
            let mut access_keys = txn.open_table(ACCESS_KEYS)?;
            access_keys.remove(old.access_key.as_str())?;
            Ok(true)
        })
    }
}
