//! Users and their access keys.

use coffer_store::{StoreError, UserRecord};

use crate::codec::{decode, encode};
use crate::db::{Tx, execute, query, query_opt};
use crate::error::Error;

pub(crate) async fn add(tx: &Tx<'_>, user: &UserRecord) -> Result<(), Error> {
    let taken = query_opt(
        tx,
        "SELECT 1 WHERE EXISTS (SELECT 1 FROM users WHERE name = $1)
            OR EXISTS (SELECT 1 FROM access_keys WHERE access_key = $2)",
        &[&user.name, &user.access_key],
    )
    .await?;
    if taken.is_some() {
        return Err(StoreError::UserExists.into());
    }
    execute(
        tx,
        "INSERT INTO users (name, record) VALUES ($1, $2)",
        &[&user.name, &encode(user)?],
    )
    .await?;
    execute(
        tx,
        "INSERT INTO access_keys (access_key, user_name) VALUES ($1, $2)",
        &[&user.access_key, &user.name],
    )
    .await?;
    Ok(())
}

pub(crate) async fn by_access_key(
    tx: &Tx<'_>,
    access_key: &str,
) -> Result<Option<UserRecord>, Error> {
    let row = query_opt(
        tx,
        "SELECT u.record FROM access_keys k JOIN users u ON u.name = k.user_name
         WHERE k.access_key = $1",
        &[&access_key],
    )
    .await?;
    Ok(row.map(|r| decode(r.get::<_, &str>(0))).transpose()?)
}

pub(crate) async fn by_name(tx: &Tx<'_>, name: &str) -> Result<Option<UserRecord>, Error> {
    let row = query_opt(tx, "SELECT record FROM users WHERE name = $1", &[&name]).await?;
    Ok(row.map(|r| decode(r.get::<_, &str>(0))).transpose()?)
}

/// Replaces the user's policy in its record (read for update, so a concurrent change of the
/// same user serialises behind this one).
pub(crate) async fn set_policy(
    tx: &Tx<'_>,
    name: &str,
    policy: Option<String>,
) -> Result<bool, Error> {
    let row = query_opt(
        tx,
        "SELECT record FROM users WHERE name = $1 FOR UPDATE",
        &[&name],
    )
    .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let mut user: UserRecord = decode(row.get::<_, &str>(0))?;
    user.policy = policy;
    execute(
        tx,
        "UPDATE users SET record = $2 WHERE name = $1",
        &[&name, &encode(&user)?],
    )
    .await?;
    Ok(true)
}

pub(crate) async fn list(tx: &Tx<'_>) -> Result<Vec<UserRecord>, Error> {
    let rows = query(tx, "SELECT record FROM users ORDER BY name", &[]).await?;
    rows.iter()
        .map(|r| Ok(decode(r.get::<_, &str>(0))?))
        .collect()
}

pub(crate) async fn remove(tx: &Tx<'_>, name: &str) -> Result<bool, Error> {
    execute(tx, "DELETE FROM access_keys WHERE user_name = $1", &[&name]).await?;
    Ok(execute(tx, "DELETE FROM users WHERE name = $1", &[&name]).await? > 0)
}
