//! Accounts (tenants) and the server's signing key.

use uuid::Uuid;

use super::{StoreError, Tx, now_micros, on_conn};

/// Row id of the JWT signing key in `signing_keys`.
pub const SIGNING_KEY_ID: &str = "jwt-hs256";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Account {
    pub id: Uuid,
    pub name: String,
    pub created_at: i64,
}

impl Tx {
    pub async fn insert_account(&mut self, name: &str) -> Result<Account, StoreError> {
        let account = Account {
            id: Uuid::now_v7(),
            name: name.to_string(),
            created_at: now_micros(),
        };
        on_conn!(self, |conn| {
            sqlx::query("INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(account.id)
                .bind(&account.name)
                .bind(account.created_at)
                .execute(conn)
                .await?;
        });
        Ok(account)
    }

    pub async fn account_by_name(&mut self, name: &str) -> Result<Option<Account>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, Account>(
                "SELECT id, name, created_at FROM accounts WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(conn)
            .await?
        }))
    }

    pub async fn count_accounts(&mut self) -> Result<i64, StoreError> {
        Ok(on_conn!(self, |conn| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM accounts"
        )
        .fetch_one(conn)
        .await?))
    }

    /// The signing key, created (from `fresh`) if there is none yet. Safe against two servers
    /// starting at once: the first insert wins and both read the winner.
    pub async fn signing_key_or_insert(&mut self, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        on_conn!(self, |conn| {
            sqlx::query("INSERT INTO signing_keys (id, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
                .bind(SIGNING_KEY_ID)
                .bind(fresh)
                .bind(now_micros())
                .execute(&mut *conn)
                .await?;
            Ok(
                sqlx::query_scalar::<_, Vec<u8>>("SELECT secret FROM signing_keys WHERE id = $1")
                    .bind(SIGNING_KEY_ID)
                    .fetch_one(conn)
                    .await?,
            )
        })
    }
}
