//! Invitations, the mail outbox and the history records of profiles.
//!
//! Outbox rows are claimed by one worker at a time: on PostgreSQL with `FOR UPDATE SKIP
//! LOCKED`, so several servers on one database share the queue without sending a mail twice; on
//! SQLite the single writer already serialises claims. A claim is a lease (`claimed_until`): a
//! worker that dies mid-send leaves the row to be retried once the lease runs out.

use uuid::Uuid;

use super::{StoreError, Tx, on_conn};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRecord {
    pub id: Uuid,
    pub account_id: Uuid,
    pub user_id: Uuid,
    pub kind: String,
    pub token_hash: Vec<u8>,
    pub status: String,
    pub from_account_id: Option<Uuid>,
    pub from_user_id: Option<Uuid>,
    pub created_at: i64,
    pub expires_at: i64,
    pub acted_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRecord {
    pub id: Uuid,
    pub account_id: Uuid,
    pub invitation_id: Option<Uuid>,
    pub message_id: String,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub claimed_until: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProfileRecord {
    pub id: Uuid,
    pub account_id: Uuid,
    pub user_id: Uuid,
    pub kind: String,
    pub title: String,
    pub occurred_at: i64,
    pub created_at: i64,
}

/// A user of another account with a given e-mail, for transfers.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProfileElsewhere {
    pub account_id: Uuid,
    pub user_id: Uuid,
}

const INVITATION_COLUMNS: &str = "id, account_id, user_id, kind, token_hash, status, from_account_id, from_user_id, created_at, expires_at, acted_at";
const OUTBOX_COLUMNS: &str = "id, account_id, invitation_id, message_id, recipient, subject, text_body, html_body, status, attempts, next_attempt_at, claimed_until, last_error, created_at, sent_at";

impl super::Store {
    /// Whether a mail is due and unclaimed at `now`: a read, so that an idle worker never opens
    /// a write transaction.
    pub async fn outbox_due(&self, now: i64) -> Result<bool, StoreError> {
        self.exists_at(
            "SELECT EXISTS (SELECT 1 FROM outbox
             WHERE status = 'pending' AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1))",
            now,
        )
        .await
    }

    /// Whether a pending invitation has expired by `now` (housekeeping reads before it writes).
    pub async fn invitations_expired(&self, now: i64) -> Result<bool, StoreError> {
        self.exists_at(
            "SELECT EXISTS (SELECT 1 FROM invitations WHERE status = 'pending' AND expires_at <= $1)",
            now,
        )
        .await
    }

    /// Whether a soft-deleted user is past its restore window at `now`.
    pub async fn deleted_users_to_purge(&self, now: i64) -> Result<bool, StoreError> {
        self.exists_at(
            "SELECT EXISTS (SELECT 1 FROM deleted_users WHERE purge_after <= $1)",
            now,
        )
        .await
    }

    /// Runs a `SELECT EXISTS (…)` taking the instant `$1`, on a reading connection.
    async fn exists_at(&self, sql: &'static str, now: i64) -> Result<bool, StoreError> {
        Ok(match self {
            super::Store::Sqlite(pools) => {
                sqlx::query_scalar::<_, bool>(sql)
                    .bind(now)
                    .fetch_one(pools.readers())
                    .await?
            }
            super::Store::Postgres(pool) => {
                sqlx::query_scalar::<_, bool>(sql)
                    .bind(now)
                    .fetch_one(pool)
                    .await?
            }
        })
    }
}

impl Tx {
    pub async fn insert_invitation(&mut self, i: &InvitationRecord) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query(
                "INSERT INTO invitations (id, account_id, user_id, kind, token_hash, status, from_account_id, from_user_id,
                                          created_at, expires_at, acted_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(i.id)
            .bind(i.account_id)
            .bind(i.user_id)
            .bind(&i.kind)
            .bind(&i.token_hash)
            .bind(&i.status)
            .bind(i.from_account_id)
            .bind(i.from_user_id)
            .bind(i.created_at)
            .bind(i.expires_at)
            .bind(i.acted_at)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// The invitation of a token hash, row-locked for the accept / decline that follows.
    pub async fn invitation_by_token(
        &mut self,
        token_hash: &[u8],
        lock: bool,
    ) -> Result<Option<InvitationRecord>, StoreError> {
        let lock = if lock { self.lock_clause() } else { "" };
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE token_hash = $1{lock}"
        ));
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, InvitationRecord>(sql)
                .bind(token_hash)
                .fetch_optional(conn)
                .await?
        }))
    }

    pub async fn invitations_of_user(
        &mut self,
        account_id: Uuid,
        user_id: Uuid,
    ) -> Result<Vec<InvitationRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE account_id = $1 AND user_id = $2 ORDER BY created_at DESC"
        ));
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, InvitationRecord>(sql)
                .bind(account_id)
                .bind(user_id)
                .fetch_all(conn)
                .await?
        }))
    }

    pub async fn set_invitation_status(
        &mut self,
        id: Uuid,
        status: &str,
        acted_at: i64,
    ) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query("UPDATE invitations SET status = $1, acted_at = $2 WHERE id = $3")
                .bind(status)
                .bind(acted_at)
                .bind(id)
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// Marks the user's pending invitations superseded (a resend kills the old link); returns
    /// their ids.
    pub async fn supersede_invitations(
        &mut self,
        account_id: Uuid,
        user_id: Uuid,
        now: i64,
    ) -> Result<Vec<Uuid>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_scalar::<_, Uuid>(
                "UPDATE invitations SET status = 'superseded', acted_at = $3
                 WHERE account_id = $1 AND user_id = $2 AND status = 'pending' RETURNING id",
            )
            .bind(account_id)
            .bind(user_id)
            .bind(now)
            .fetch_all(conn)
            .await?
        }))
    }

    /// Pending invitations past their expiry, marked expired; returned for the audit trail.
    pub async fn expire_invitations(
        &mut self,
        now: i64,
    ) -> Result<Vec<InvitationRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE invitations SET status = 'expired', acted_at = $1
             WHERE status = 'pending' AND expires_at <= $1 RETURNING {INVITATION_COLUMNS}"
        ));
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, InvitationRecord>(sql)
                .bind(now)
                .fetch_all(conn)
                .await?
        }))
    }

    /// Users of other accounts whose userName is this e-mail (case-insensitively): the profile a
    /// transfer would move.
    pub async fn profiles_elsewhere(
        &mut self,
        account_id: Uuid,
        email: &str,
    ) -> Result<Vec<ProfileElsewhere>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, ProfileElsewhere>(
                "SELECT account_id, id AS user_id FROM users WHERE user_name_lower = $1 AND account_id <> $2
                 ORDER BY created_at LIMIT 1",
            )
            .bind(email.to_lowercase())
            .bind(account_id)
            .fetch_all(conn)
            .await?
        }))
    }

    // ---- outbox

    pub async fn insert_outbox(&mut self, m: &OutboxRecord) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query(
                "INSERT INTO outbox (id, account_id, invitation_id, message_id, recipient, subject, text_body, html_body,
                                     status, attempts, next_attempt_at, claimed_until, last_error, created_at, sent_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            )
            .bind(m.id)
            .bind(m.account_id)
            .bind(m.invitation_id)
            .bind(&m.message_id)
            .bind(&m.recipient)
            .bind(&m.subject)
            .bind(&m.text_body)
            .bind(&m.html_body)
            .bind(&m.status)
            .bind(m.attempts)
            .bind(m.next_attempt_at)
            .bind(m.claimed_until)
            .bind(&m.last_error)
            .bind(m.created_at)
            .bind(m.sent_at)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// Claims up to `limit` due mails for `lease` microseconds (see [`Store::outbox_due`] for
    /// the condition).
    ///
    /// [`Store::outbox_due`]: super::Store::outbox_due
    pub async fn claim_outbox(
        &mut self,
        now: i64,
        lease: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRecord>, StoreError> {
        let skip_locked = match self {
            Tx::Sqlite(_) => "",
            Tx::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE outbox SET claimed_until = $2, attempts = attempts + 1
             WHERE id IN (
                 SELECT id FROM outbox
                 WHERE status = 'pending' AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1)
                 ORDER BY next_attempt_at, id LIMIT $3{skip_locked}
             )
             RETURNING {OUTBOX_COLUMNS}"
        ));
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, OutboxRecord>(sql)
                .bind(now)
                .bind(now + lease)
                .bind(limit)
                .fetch_all(conn)
                .await?
        }))
    }

    /// Marks a mail delivered and drops its bodies: they carry a one-time link, which must not
    /// outlive the delivery in the database.
    pub async fn outbox_sent(&mut self, id: Uuid, now: i64) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query(
                "UPDATE outbox SET status = 'sent', sent_at = $1, claimed_until = NULL, last_error = NULL,
                 text_body = '', html_body = '' WHERE id = $2",
            )
            .bind(now)
            .bind(id)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// Records a failed attempt: retried at `retry_at`, or given up (`failed`) when `None`.
    pub async fn outbox_failed(
        &mut self,
        id: Uuid,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query(
                "UPDATE outbox SET status = $1, next_attempt_at = COALESCE($2, next_attempt_at), claimed_until = NULL,
                 last_error = $3,
                 text_body = CASE WHEN $1 = 'failed' THEN '' ELSE text_body END,
                 html_body = CASE WHEN $1 = 'failed' THEN '' ELSE html_body END
                 WHERE id = $4",
            )
            .bind(if retry_at.is_some() { "pending" } else { "failed" })
            .bind(retry_at)
            .bind(error)
            .bind(id)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    pub async fn outbox(
        &mut self,
        account_id: Uuid,
        limit: i64,
    ) -> Result<Vec<OutboxRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        ));
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, OutboxRecord>(sql)
                .bind(account_id)
                .bind(limit)
                .fetch_all(conn)
                .await?
        }))
    }

    // ---- profile records

    pub async fn insert_profile_record(&mut self, r: &ProfileRecord) -> Result<(), StoreError> {
        on_conn!(self, |conn| {
            sqlx::query(
                "INSERT INTO profile_records (id, account_id, user_id, kind, title, occurred_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(r.id)
            .bind(r.account_id)
            .bind(r.user_id)
            .bind(&r.kind)
            .bind(&r.title)
            .bind(r.occurred_at)
            .bind(r.created_at)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    pub async fn profile_records(
        &mut self,
        account_id: Uuid,
        user_id: Uuid,
    ) -> Result<Vec<ProfileRecord>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_as::<_, ProfileRecord>(
                "SELECT id, account_id, user_id, kind, title, occurred_at, created_at FROM profile_records
                 WHERE account_id = $1 AND user_id = $2 ORDER BY occurred_at, id",
            )
            .bind(account_id)
            .bind(user_id)
            .fetch_all(conn)
            .await?
        }))
    }

    /// Moves a profile's records to its user in another account; returns how many.
    pub async fn move_profile_records(
        &mut self,
        from_account: Uuid,
        from_user: Uuid,
        to_account: Uuid,
        to_user: Uuid,
    ) -> Result<u64, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query(
                "UPDATE profile_records SET account_id = $1, user_id = $2 WHERE account_id = $3 AND user_id = $4",
            )
            .bind(to_account)
            .bind(to_user)
            .bind(from_account)
            .bind(from_user)
            .execute(conn)
            .await?
            .rows_affected()
        }))
    }

    /// The name of an account.
    pub async fn account_name(&mut self, account_id: Uuid) -> Result<Option<String>, StoreError> {
        Ok(on_conn!(self, |conn| {
            sqlx::query_scalar::<_, String>("SELECT name FROM accounts WHERE id = $1")
                .bind(account_id)
                .fetch_optional(conn)
                .await?
        }))
    }
}
