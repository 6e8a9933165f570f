//! The closed sets of strings the platform stores: every `CHECK (… IN (…))` of the migrations,
//! and the `accountStatus` the server writes into a user's document.
//!
//! Each is a `Copy` enum whose `as_str()` is the stored text. Parsing is strict — `FromStr`,
//! serde and sqlx `Decode` all refuse a string that is not in the set with an [`UnknownValue`],
//! never fall back to a default — so a row or a document the code does not understand is seen
//! as such instead of being silently read as something else. The strings are matched exactly
//! (case-sensitive), as the `CHECK` constraints and today's `match`es do.

use std::fmt;

/// A string that is not one of a closed set: a stored value the code does not know, or input
/// naming something that does not exist.
///
/// Its message, `'{value}' is not a {what}; use {a, b, c}`, is the one the admin API gives today
/// for a custom-role permission (`Provisioner::check_role` in `provisioning/catalog.rs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{value}' is not a{article} {what}; use {expected}",
    article = article(what),
    expected = Expected(expected)
)]
pub struct UnknownValue {
    /// What was being parsed, e.g. `"licence state"`.
    pub what: &'static str,
    /// The text refused.
    pub value: String,
    /// The texts accepted.
    pub expected: &'static [&'static str],
}

impl UnknownValue {
    pub fn new(what: &'static str, value: &str, expected: &'static [&'static str]) -> Self {
        UnknownValue {
            what,
            value: value.to_string(),
            expected,
        }
    }
}

fn article(what: &str) -> &'static str {
    if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "n"
    } else {
        ""
    }
}

struct Expected(&'static [&'static str]);

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(", "))
    }
}

text_enum! {
    /// Whether a user's licence holds a seat: `user_licences.state`.
    ///
    /// Replaces the `"assigned"` / `"pendingSeat"` literals of `Provisioner::reconcile_licences`
    /// (`provisioning/domain.rs`) and `store/assignments.rs`, and `LicenceRow::state: String`.
    pub enum LicenceState ("licence state") {
        /// Holds one of the product's seats.
        Assigned => "assigned",
        /// Inherited from a group, waiting for a free seat (oldest first).
        PendingSeat => "pendingSeat",
    }
}

text_enum! {
    /// What an invitation is for: `invitations.kind`.
    ///
    /// Replaces `InvitationRecord::kind: String` and the `"welcome"` / `"transfer"` literals of
    /// `provisioning/invitations.rs` and `http/invitations.rs`.
    pub enum InvitationKind ("invitation kind") {
        /// A new user's first sign-in.
        Welcome => "welcome",
        /// A profile of another account moves here if the person accepts.
        Transfer => "transfer",
    }
}

text_enum! {
    /// Where an invitation link stands: `invitations.status`.
    ///
    /// Replaces `InvitationRecord::status: String`, the `status` strings of
    /// `Provisioner::answer_invitation` / `usable_invitation` (`provisioning/invitations.rs`) and
    /// the literals of `store/invitations.rs`.
    pub enum InvitationStatus ("invitation status") {
        /// Usable until `expires_at`.
        Pending => "pending",
        Accepted => "accepted",
        /// Only a transfer can be declined.
        Declined => "declined",
        /// Ran out unused (the housekeeping marks it).
        Expired => "expired",
        /// Replaced by a resend.
        Superseded => "superseded",
    }
}

text_enum! {
    /// Where a mail of the outbox stands: `outbox.status`.
    ///
    /// Replaces `OutboxRecord::status: String` and the literals of `store/invitations.rs`
    /// (`"pending"` for a retry, `"failed"` when the attempts are spent).
    pub enum OutboxStatus ("outbox status") {
        /// To send at `next_attempt_at` (first attempt or retry).
        Pending => "pending",
        Sent => "sent",
        /// Given up; its bodies are cleared (as they are once sent).
        Failed => "failed",
    }
}

text_enum! {
    /// What a history record of a profile is: `profile_records.kind`.
    ///
    /// Replaces `ProfileRecord::kind: String` and the `matches!` of
    /// `Provisioner::add_profile_record` (`provisioning/invitations.rs`), whose message for a
    /// wrong kind is "kind must be pastSession, upcomingSession or recording" rather than the
    /// [`UnknownValue`] sentence.
    pub enum ProfileRecordKind ("profile record kind") {
        PastSession => "pastSession",
        UpcomingSession => "upcomingSession",
        Recording => "recording",
    }
}

text_enum! {
    /// What a member of a group is: `group_members.member_type`, and the SCIM `members.type`.
    ///
    /// Replaces `MemberRef::member_type: String` (`store/groups.rs`).
    pub enum MemberType ("member type") {
        User => "User",
        Group => "Group",
    }
}

text_enum! {
    /// The user's state in the product, `accountStatus` of the user extension
    /// (`urn:switchboard:scim:schemas:extension:uc:1.0:User`): a read-only attribute only the
    /// server writes, kept in the user's document (not a column).
    ///
    /// These are the values the server writes today: `Provisioner::plan_invitation`
    /// (`provisioning/domain.rs`: `inviteSent`, `transferPending`, `active`),
    /// `answer_invitation` (`active`, `TRANSFER_DECLINED`) and `transfer_in`
    /// (`transferredOut`) in `provisioning/invitations.rs`. The schema's `canonicalValues` also
    /// list `inactive` and `suspended`, which nothing writes; they are refused here until
    /// something does.
    pub enum AccountStatus ("account status") {
        /// A welcome invitation was sent and not yet accepted.
        InviteSent => "inviteSent",
        /// The e-mail has a profile in another account; the transfer awaits acceptance.
        TransferPending => "transferPending",
        Active => "active",
        /// The person declined the transfer: shown as suspended, holds no seat
        /// (`domain::TRANSFER_DECLINED` today).
        TransferDeclined => "transferDeclined",
        /// The profile moved to another account; this user was soft-deleted.
        TransferredOut => "transferredOut",
    }
}

impl AccountStatus {
    /// Whether an invitation is still awaited, so that one can be resent (`resend_invitation`).
    pub const fn awaits_invitation(self) -> bool {
        matches!(
            self,
            AccountStatus::InviteSent | AccountStatus::TransferPending
        )
    }
}

impl InvitationStatus {
    /// Whether the link has been used or replaced: only `pending` can still be acted on.
    pub const fn is_final(self) -> bool {
        !matches!(self, InvitationStatus::Pending)
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;
    use std::str::FromStr;

    use proptest::prelude::*;
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use super::*;

    fn round_trips<T>(all: &[T], expected: &[&str])
    where
        T: Copy + Debug + PartialEq + fmt::Display + FromStr + Serialize + DeserializeOwned,
        <T as FromStr>::Err: Debug,
    {
        let texts: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(texts, expected);
        for (value, text) in all.iter().zip(expected) {
            assert_eq!(text.parse::<T>().unwrap(), *value);
            let json = serde_json::to_value(value).unwrap();
            assert_eq!(json, serde_json::json!(text));
            assert_eq!(serde_json::from_value::<T>(json).unwrap(), *value);
        }
    }

    #[test]
    fn every_set_matches_its_check_constraint() {
        round_trips(LicenceState::ALL, &["assigned", "pendingSeat"]);
        round_trips(InvitationKind::ALL, &["welcome", "transfer"]);
        round_trips(
            InvitationStatus::ALL,
            &["pending", "accepted", "declined", "expired", "superseded"],
        );
        round_trips(OutboxStatus::ALL, &["pending", "sent", "failed"]);
        round_trips(
            ProfileRecordKind::ALL,
            &["pastSession", "upcomingSession", "recording"],
        );
        round_trips(MemberType::ALL, &["User", "Group"]);
        round_trips(
            AccountStatus::ALL,
            &[
                "inviteSent",
                "transferPending",
                "active",
                "transferDeclined",
                "transferredOut",
            ],
        );
    }

    /// `CHECK (column IN ('a', 'b'))` for a set, as the migrations write it.
    fn check<T: fmt::Display>(column: &str, all: &[T]) -> String {
        let quoted: Vec<String> = all.iter().map(|t| format!("'{t}'")).collect();
        format!("CHECK ({column} IN ({}))", quoted.join(", "))
    }

    #[test]
    fn migrations_allow_exactly_these_strings() {
        for dialect in [
            [
                include_str!("../../migrations/sqlite/0001_foundation.sql"),
                include_str!("../../migrations/sqlite/0002_domain.sql"),
                include_str!("../../migrations/sqlite/0003_invitations.sql"),
            ],
            [
                include_str!("../../migrations/postgres/0001_foundation.sql"),
                include_str!("../../migrations/postgres/0002_domain.sql"),
                include_str!("../../migrations/postgres/0003_invitations.sql"),
            ],
        ] {
            let sql = dialect.concat();
            for expected in [
                check("member_type", MemberType::ALL),
                check("state", LicenceState::ALL),
                check("kind", InvitationKind::ALL),
                check("status", InvitationStatus::ALL),
                check("status", OutboxStatus::ALL),
                check("kind", ProfileRecordKind::ALL),
            ] {
                assert!(
                    sql.contains(&expected),
                    "{expected} is not in the migrations"
                );
            }
        }
    }

    #[test]
    fn unknown_values_are_refused_not_defaulted() {
        let err = "Assigned".parse::<LicenceState>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "'Assigned' is not a licence state; use assigned, pendingSeat"
        );
        assert!("".parse::<InvitationKind>().is_err());
        assert!("pending ".parse::<InvitationStatus>().is_err());
        assert!("queued".parse::<OutboxStatus>().is_err());
        assert!("user".parse::<MemberType>().is_err());
        assert_eq!(
            "suspended"
                .parse::<AccountStatus>()
                .unwrap_err()
                .to_string(),
            "'suspended' is not an account status; use inviteSent, transferPending, active, transferDeclined, transferredOut"
        );
        assert!(serde_json::from_value::<ProfileRecordKind>(serde_json::json!("call")).is_err());
        assert!(serde_json::from_value::<ProfileRecordKind>(serde_json::json!(1)).is_err());
    }

    #[test]
    fn helpers() {
        assert!(AccountStatus::InviteSent.awaits_invitation());
        assert!(AccountStatus::TransferPending.awaits_invitation());
        assert!(!AccountStatus::TransferDeclined.awaits_invitation());
        assert!(!InvitationStatus::Pending.is_final());
        assert!(InvitationStatus::Superseded.is_final());
    }

    #[tokio::test]
    async fn sqlite_stores_the_text_and_refuses_unknown_text() {
        let pool = crate::domain::tests::sqlite().await;
        sqlx::query("CREATE TABLE t (n INTEGER PRIMARY KEY, state TEXT NOT NULL, status TEXT)")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t (n, state, status) VALUES (1, $1, $2)")
            .bind(LicenceState::PendingSeat)
            .bind(Some(OutboxStatus::Sent))
            .execute(&pool)
            .await
            .unwrap();
        let raw: (String, String) = sqlx::query_as("SELECT state, status FROM t")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(raw, ("pendingSeat".into(), "sent".into()));
        let back: (LicenceState, Option<OutboxStatus>) =
            sqlx::query_as("SELECT state, status FROM t WHERE state = $1")
                .bind(LicenceState::PendingSeat)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(back, (LicenceState::PendingSeat, Some(OutboxStatus::Sent)));

        sqlx::query("INSERT INTO t (n, state, status) VALUES (2, 'revoked', NULL)")
            .execute(&pool)
            .await
            .unwrap();
        let err = sqlx::query_scalar::<_, LicenceState>("SELECT state FROM t WHERE n = 2")
            .fetch_one(&pool)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, sqlx::Error::ColumnDecode { source, .. }
                if source.to_string() == "'revoked' is not a licence state; use assigned, pendingSeat"),
            "{err:?}"
        );
        let null: Option<OutboxStatus> = sqlx::query_scalar("SELECT status FROM t WHERE n = 2")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(null, None);
    }

    proptest! {
        #[test]
        fn parse_accepts_exactly_as_str(text in "[a-zA-Z ]{0,16}") {
            let known = AccountStatus::ALL.iter().find(|s| s.as_str() == text).copied();
            prop_assert_eq!(text.parse::<AccountStatus>().ok(), known);
            let known = InvitationStatus::ALL.iter().find(|s| s.as_str() == text).copied();
            prop_assert_eq!(text.parse::<InvitationStatus>().ok(), known);
        }

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            let _ = text.parse::<LicenceState>();
            let _ = text.parse::<ProfileRecordKind>();
            let _ = serde_json::from_value::<MemberType>(serde_json::Value::String(text));
        }
    }
}
