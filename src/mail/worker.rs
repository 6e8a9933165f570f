//! The outbox worker: claims due mails, delivers them, records the outcome. Any number of
//! servers may run one against the same database (claims are exclusive leases, see
//! `store::invitations`). A server stopping finishes the mail in hand and leaves the rest.

use std::time::Duration;

use lettre::message::Mailbox;
use tokio::sync::watch;

use super::Transport;
use crate::store::{Store, StoreError, now_micros};

/// How long a claimed mail belongs to its worker before another may retry it.
const LEASE_MICROS: i64 = 120 * 1_000_000;
/// Mails claimed per round.
const BATCH: i64 = 25;
/// Attempts before a mail is given up as `failed`.
pub const MAX_ATTEMPTS: i64 = 12;

/// When to try again after `attempts` failures: 5 s, 10 s, 20 s … capped at one hour.
pub fn backoff_micros(attempts: i64) -> i64 {
    let exponent = attempts.clamp(1, 20) - 1;
    (5_000_000i64 << exponent).min(3_600 * 1_000_000)
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub transport: Transport,
    pub from: Mailbox,
    /// Pause between rounds when nothing is due.
    pub idle: Duration,
}

/// Runs until `stop` turns true.
pub async fn run(store: Store, config: WorkerConfig, mut stop: watch::Receiver<bool>) {
    tracing::info!(transport = %config.transport.describe(), "mail worker started");
    loop {
        if *stop.borrow() {
            break;
        }
        let delivered = match round(&store, &config).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "mail worker round failed; retrying");
                0
            }
        };
        if delivered == 0 {
            tokio::select! {
                _ = tokio::time::sleep(config.idle) => {}
                _ = stop.changed() => {}
            }
        }
    }
    tracing::info!("mail worker stopped");
}

/// One round: claim, deliver, record. Returns how many mails were attempted.
///
/// An idle round only reads (is anything due?): a server with nothing to send never takes the
/// write lock. The outcomes of a round are recorded in one transaction after the deliveries; a
/// crash in between leaves the round's mails claimed, and they go out again once the lease ends
/// (at least once, as ever).
#[tracing::instrument(name = "mail.round", level = "debug", skip_all)]
pub async fn round(store: &Store, config: &WorkerConfig) -> Result<usize, StoreError> {
    if !store.outbox_due(now_micros()).await? {
        return Ok(0);
    }
    let mut tx = store.begin_write().await?;
    let claimed = tx.claim_outbox(now_micros(), LEASE_MICROS, BATCH).await?;
    tx.commit().await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let mut outcomes = Vec::with_capacity(claimed.len());
    for mail in &claimed {
        outcomes.push(config.transport.deliver(mail, &config.from).await);
    }
    let mut tx = store.begin_write().await?;
    for (mail, outcome) in claimed.iter().zip(&outcomes) {
        match outcome {
            Ok(()) => {
                tx.outbox_sent(mail.id, now_micros()).await?;
                tracing::info!(outbox = %mail.id, message_id = %mail.message_id, attempt = mail.attempts, "mail delivered");
            }
            Err(error) => {
                let retry_at = (mail.attempts < MAX_ATTEMPTS)
                    .then(|| now_micros() + backoff_micros(mail.attempts));
                tx.outbox_failed(mail.id, error, retry_at).await?;
                tracing::warn!(outbox = %mail.id, attempt = mail.attempts, error = %error, gave_up = retry_at.is_none(), "mail not delivered");
            }
        }
    }
    tx.commit().await?;
    Ok(claimed.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_an_hour() {
        assert_eq!(backoff_micros(1), 5_000_000);
        assert_eq!(backoff_micros(2), 10_000_000);
        assert_eq!(backoff_micros(4), 40_000_000);
        assert_eq!(backoff_micros(12), 3_600_000_000);
    }
}
