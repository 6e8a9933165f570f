-- Invitations (welcome and transfer), the mail outbox, and the history records a profile carries
-- from account to account.

-- One row per invitation link. The token itself is never stored: its SHA-256 is.
CREATE TABLE invitations (
    id               UUID PRIMARY KEY,
    account_id       UUID NOT NULL REFERENCES accounts (id),
    user_id          UUID NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('welcome', 'transfer')),
    token_hash       BYTEA NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'declined', 'expired', 'superseded')),
    -- For a transfer: the user (profile) of the other account that moves here on accept.
    from_account_id  UUID,
    from_user_id     UUID,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    acted_at         BIGINT,
    CONSTRAINT invitations_token_key UNIQUE (token_hash)
);
CREATE INDEX invitations_user_idx ON invitations (account_id, user_id, created_at);
CREATE INDEX invitations_pending_idx ON invitations (status, expires_at);

-- Mails to send, written in the transaction of the change that causes them; a worker delivers
-- them (at least once, with back-off). `message_id` is stable across retries.
CREATE TABLE outbox (
    id               UUID PRIMARY KEY,
    account_id       UUID NOT NULL REFERENCES accounts (id),
    invitation_id    UUID,
    message_id       TEXT NOT NULL,
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    text_body        TEXT NOT NULL,
    html_body        TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    -- A worker that claims the row owns it until then; past it, another worker may retry.
    claimed_until    BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    sent_at          BIGINT
);
CREATE INDEX outbox_due_idx ON outbox (status, next_attempt_at);
CREATE INDEX outbox_account_idx ON outbox (account_id, created_at);

-- What a person's profile owns besides the user row: past and upcoming sessions, recordings.
-- A transfer moves them with the profile.
CREATE TABLE profile_records (
    id           UUID PRIMARY KEY,
    account_id   UUID NOT NULL REFERENCES accounts (id),
    user_id      UUID NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('pastSession', 'upcomingSession', 'recording')),
    title        TEXT NOT NULL,
    occurred_at  BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX profile_records_user_idx ON profile_records (account_id, user_id, occurred_at);

-- Transfers look an e-mail up across accounts; the housekeeping finds holds that ran out.
CREATE INDEX users_user_name_lower_idx ON users (user_name_lower);
CREATE INDEX users_held_until_idx ON users (held_until) WHERE held_until IS NOT NULL;
