//! Picks the extension of a user who gets one automatically, in O(1) amortised and without an
//! account-wide lock.
//!
//! Each server keeps, per account, a cursor into the account's range and a window of the
//! extensions already taken just ahead of it (read from the unique index, [`WINDOW`] numbers at
//! a time). Numbers are handed out upwards from the cursor, skipping the taken ones; past the end
//! of the range the cursor wraps to its start, so numbers freed below the cursor (a deleted user,
//! a released hold) are reused only once the range has been gone through — the usual dial-plan
//! habit of not giving a colleague's old extension to the next hire at once.
//!
//! The cursor is a hint, never the guarantee: the unique index `users_extension_key` is. Two
//! servers on one database, or an explicit number written after the window was read, can pick
//! the same number; the insert then fails on the index, the caller calls [`forget`] and retries
//! the whole write, and the next window read sees the number taken. Two servers that keep
//! colliding (they walk the range in step) are parted by a jump to a random place.
//!
//! [`forget`]: ExtensionAllocator::forget
//!
//! [`Provisioner::retrying_extension_races`] is that retry, for every write that may pick one.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use rand::RngExt;
use tokio::sync::Mutex;
use uuid::Uuid;

use super::{Error, Provisioner, Result};
use crate::scim::error::ScimError;
use crate::store::{StoreError, Tx};

/// Attempts of a write whose automatic extension keeps losing races before it gives up.
const ATTEMPTS: usize = 8;
/// Losing this many races in a row means another server walks the same numbers in step: the
/// cursor then jumps to a random place of the range, and the two part ways.
const SCATTER_AFTER: usize = 2;

impl Provisioner {
    /// Runs `write` (one whole transaction) again when the unique index refused the extension it
    /// picked — another server, or an explicit number written meanwhile, took it first. An
    /// explicitly asked number that is taken is refused by the rules before the insert, so a
    /// retry answers it with the rule's own `409`.
    pub(crate) async fn retrying_extension_races<T, F, Fut>(
        &self,
        account_id: Uuid,
        mut write: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        for attempt in 1..ATTEMPTS {
            match write().await {
                Err(Error::Store(StoreError::Unique("users_extension_key"))) => {
                    self.extensions
                        .forget(account_id, attempt >= SCATTER_AFTER)
                        .await;
                }
                other => return other,
            }
        }
        match write().await {
            Err(Error::Store(StoreError::Unique("users_extension_key"))) => {
                Err(Error::Scim(ScimError::uniqueness(
                    "that extension was just assigned to another user of this account; send \"auto\" (or nothing) to get the next free one",
                )))
            }
            other => other,
        }
    }
}

/// How many numbers one read of the index covers.
const WINDOW: i64 = 256;

#[derive(Debug)]
struct Cursor {
    first: i64,
    last: i64,
    next: i64,
    /// Taken numbers in `[window_start, window_end)`; `next` lies in that interval or at its end.
    taken: BTreeSet<i64>,
    window_end: i64,
}

/// Per-account extension cursors of this server.
#[derive(Debug, Clone, Default)]
pub struct ExtensionAllocator {
    cursors: Arc<Mutex<HashMap<Uuid, Cursor>>>,
}

impl ExtensionAllocator {
    /// The next free extension of `first..=last` as far as the index shows now, or `None` when
    /// every number of the range is taken. Reads the index in `tx` (once per [`WINDOW`] numbers).
    pub async fn allocate(
        &self,
        tx: &mut Tx,
        account_id: Uuid,
        first: i64,
        last: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut cursors = self.cursors.lock().await;
        let stale = cursors
            .get(&account_id)
            .is_none_or(|c| c.first != first || c.last != last);
        if stale {
            let highest = tx.highest_extension(account_id, first, last).await?;
            let next = highest.map_or(first, |h| h + 1);
            cursors.insert(
                account_id,
                Cursor {
                    first,
                    last,
                    next,
                    taken: BTreeSet::new(),
                    window_end: next,
                },
            );
        }
        let Some(cursor) = cursors.get_mut(&account_id) else {
            return Ok(None);
        };
        let mut wrapped = false;
        loop {
            if cursor.next > last {
                if wrapped {
                    return Ok(None);
                }
                wrapped = true;
                cursor.next = first;
                cursor.window_end = first;
            }
            if cursor.next >= cursor.window_end {
                let end = (cursor.next + WINDOW).min(last + 1);
                cursor.taken = tx
                    .extensions_taken(account_id, cursor.next, end)
                    .await?
                    .into_iter()
                    .collect();
                cursor.window_end = end;
            }
            let candidate = cursor.next;
            cursor.next += 1;
            if !cursor.taken.contains(&candidate) {
                return Ok(Some(candidate));
            }
        }
    }

    /// Drops what this server believes about the account's extensions, after the index refused
    /// one it handed out: the next allocation reads the index afresh — from a random place of
    /// the range when `scatter`.
    pub async fn forget(&self, account_id: Uuid, scatter: bool) {
        if let Some(cursor) = self.cursors.lock().await.get_mut(&account_id) {
            if scatter {
                cursor.next = rand::rng().random_range(cursor.first..=cursor.last);
            }
            cursor.window_end = cursor.next;
        }
    }
}
