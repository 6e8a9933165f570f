-- Accounts, tokens, users, groups, memberships and the audit trail.
-- Times are microseconds since the Unix epoch (UTC) in both dialects, so that comparisons and
-- ordering are exact and identical on SQLite and PostgreSQL.

CREATE TABLE accounts (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    CONSTRAINT accounts_name_key UNIQUE (name)
);

CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY,
    secret      BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id          BLOB PRIMARY KEY,
    account_id  BLOB NOT NULL REFERENCES accounts (id),
    role        TEXT NOT NULL CHECK (role IN ('super-admin', 'admin')),
    token_hash  BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
);
CREATE INDEX api_tokens_account_idx ON api_tokens (account_id, created_at);

CREATE TABLE users (
    id              BLOB PRIMARY KEY,
    account_id      BLOB NOT NULL REFERENCES accounts (id),
    user_name       TEXT NOT NULL,
    user_name_lower TEXT NOT NULL,
    external_id     TEXT,
    display_name    TEXT,
    active          INTEGER NOT NULL,
    doc             TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    last_modified   INTEGER NOT NULL,
    version         INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_user_name_key ON users (account_id, user_name_lower);
CREATE INDEX users_external_id_idx ON users (account_id, external_id);
CREATE INDEX users_created_idx ON users (account_id, created_at, id);
CREATE INDEX users_last_modified_idx ON users (account_id, last_modified, id);

CREATE TABLE user_emails (
    account_id  BLOB NOT NULL,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    value_lower TEXT NOT NULL,
    type        TEXT,
    is_primary  INTEGER NOT NULL
);
CREATE INDEX user_emails_value_idx ON user_emails (account_id, value_lower);
CREATE INDEX user_emails_user_idx ON user_emails (user_id);

CREATE TABLE groups (
    id                 BLOB PRIMARY KEY,
    account_id         BLOB NOT NULL REFERENCES accounts (id),
    display_name       TEXT NOT NULL,
    display_name_lower TEXT NOT NULL,
    external_id        TEXT,
    doc                TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    last_modified      INTEGER NOT NULL,
    version            INTEGER NOT NULL
);
CREATE UNIQUE INDEX groups_display_name_key ON groups (account_id, display_name_lower);
CREATE INDEX groups_external_id_idx ON groups (account_id, external_id);
CREATE INDEX groups_created_idx ON groups (account_id, created_at, id);
CREATE INDEX groups_last_modified_idx ON groups (account_id, last_modified, id);

CREATE TABLE group_members (
    account_id  BLOB NOT NULL,
    group_id    BLOB NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    member_id   BLOB NOT NULL,
    member_type TEXT NOT NULL CHECK (member_type IN ('User', 'Group')),
    added_at    INTEGER NOT NULL,
    PRIMARY KEY (group_id, member_id)
) WITHOUT ROWID; -- the key is the row: one B-tree fewer to write per member
CREATE INDEX group_members_member_idx ON group_members (account_id, member_id);

-- Append-only: the application has no UPDATE or DELETE path for this table.
CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    BLOB NOT NULL,
    occurred_at   INTEGER NOT NULL,
    token_id      BLOB,
    request_id    TEXT,
    user_agent    TEXT,
    action        TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT,
    before_state  TEXT,
    after_state   TEXT
);
CREATE INDEX audit_log_account_idx ON audit_log (account_id, id);
CREATE INDEX audit_log_resource_idx ON audit_log (account_id, resource_type, resource_id, id);
CREATE INDEX audit_log_token_idx ON audit_log (account_id, token_id, id);
CREATE INDEX audit_log_time_idx ON audit_log (account_id, occurred_at);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
