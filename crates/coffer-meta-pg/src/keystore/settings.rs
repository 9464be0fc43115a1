//! Gateway settings (`gateway_settings`, migration 3): values written once by the first gateway
//! and read by every later one — the salt of a passphrase-derived root key, the root
//! credentials sealed by the root key. What a row holds is its writer's business; the table
//! only guarantees that of gateways racing to write one name, one value wins and all read it.

use coffer_kms::KmsError;

use super::PgKeyStore;

impl PgKeyStore {
    /// The value of the setting `name`, if one was stored.
    pub fn setting(&self, name: &str) -> Result<Option<String>, KmsError> {
        let name = name.to_owned();
        self.bridge.run(|pool| async move {
            let client = pool.get().await?;
            let statement = client
                .prepare_cached("SELECT value FROM gateway_settings WHERE name = $1")
                .await?;
            Ok(client
                .query_opt(&statement, &[&name])
                .await?
                .map(|row| row.get(0)))
        })
    }

    /// The value of the setting `name`; when there is none, stores `initial` first. Of gateways
    /// racing, the first insert wins and every caller returns the stored value, which may not
    /// be its own `initial`.
    pub fn setting_or_insert(&self, name: &str, initial: String) -> Result<String, KmsError> {
        let created_ms = coffer_store::rules::epoch_ms(std::time::SystemTime::now());
        let owned = name.to_owned();
        self.bridge.run(|pool| async move {
            let client = pool.get().await?;
            let statement = client
                .prepare_cached(
                    "INSERT INTO gateway_settings (name, value, created_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO NOTHING",
                )
                .await?;
            client
                .execute(&statement, &[&owned, &initial, &created_ms])
                .await?;
            Ok(())
        })?;
        self.setting(name)?.ok_or_else(|| {
            KmsError::Internal(format!("the gateway setting '{name}' was not stored"))
        })
    }
}
