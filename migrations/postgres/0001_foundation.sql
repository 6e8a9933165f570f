-- Accounts, tokens, users, groups, memberships and the audit trail.
-- Times are microseconds since the Unix epoch (UTC) in both dialects, so that comparisons and
-- ordering are exact and identical on SQLite and PostgreSQL.

CREATE TABLE accounts (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    CONSTRAINT accounts_name_key UNIQUE (name)
);

CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY,
    secret      BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id          UUID PRIMARY KEY,
    account_id  UUID NOT NULL REFERENCES accounts (id),
    role        TEXT NOT NULL CHECK (role IN ('super-admin', 'admin')),
    token_hash  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX api_tokens_account_idx ON api_tokens (account_id, created_at);

CREATE TABLE users (
    id              UUID PRIMARY KEY,
    account_id      UUID NOT NULL REFERENCES accounts (id),
    user_name       TEXT NOT NULL,
    -- Shadow columns compare and sort bytewise ("C"), the same on every server, and their
    -- indexes serve both equality and ORDER BY.
    user_name_lower TEXT COLLATE "C" NOT NULL,
    external_id     TEXT,
    display_name    TEXT,
    active          BOOLEAN NOT NULL,
    doc             JSONB NOT NULL,
    created_at      BIGINT NOT NULL,
    last_modified   BIGINT NOT NULL,
    version         BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_user_name_key ON users (account_id, user_name_lower);
CREATE INDEX users_external_id_idx ON users (account_id, external_id);
CREATE INDEX users_created_idx ON users (account_id, created_at, id);
CREATE INDEX users_last_modified_idx ON users (account_id, last_modified, id);

CREATE TABLE user_emails (
    account_id  UUID NOT NULL,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    value_lower TEXT COLLATE "C" NOT NULL,
    type        TEXT,
    is_primary  BOOLEAN NOT NULL
);
CREATE INDEX user_emails_value_idx ON user_emails (account_id, value_lower);
CREATE INDEX user_emails_user_idx ON user_emails (user_id);

CREATE TABLE groups (
    id                 UUID PRIMARY KEY,
    account_id         UUID NOT NULL REFERENCES accounts (id),
    display_name       TEXT NOT NULL,
    display_name_lower TEXT COLLATE "C" NOT NULL,
    external_id        TEXT,
    doc                JSONB NOT NULL,
    created_at         BIGINT NOT NULL,
    last_modified      BIGINT NOT NULL,
    version            BIGINT NOT NULL
);
CREATE UNIQUE INDEX groups_display_name_key ON groups (account_id, display_name_lower);
CREATE INDEX groups_external_id_idx ON groups (account_id, external_id);
CREATE INDEX groups_created_idx ON groups (account_id, created_at, id);
CREATE INDEX groups_last_modified_idx ON groups (account_id, last_modified, id);

CREATE TABLE group_members (
    account_id  UUID NOT NULL,
    group_id    UUID NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    member_id   UUID NOT NULL,
    member_type TEXT NOT NULL CHECK (member_type IN ('User', 'Group')),
    added_at    BIGINT NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX group_members_member_idx ON group_members (account_id, member_id);

-- Append-only: the application has no UPDATE or DELETE path for this table.
CREATE TABLE audit_log (
    id            BIGSERIAL PRIMARY KEY,
    account_id    UUID NOT NULL,
    occurred_at   BIGINT NOT NULL,
    token_id      UUID,
    request_id    TEXT,
    user_agent    TEXT,
    action        TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT,
    before_state  JSONB,
    after_state   JSONB
);
CREATE INDEX audit_log_account_idx ON audit_log (account_id, id);
CREATE INDEX audit_log_resource_idx ON audit_log (account_id, resource_type, resource_id, id);
CREATE INDEX audit_log_token_idx ON audit_log (account_id, token_id, id);
CREATE INDEX audit_log_time_idx ON audit_log (account_id, occurred_at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
