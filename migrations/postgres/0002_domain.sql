-- The phone-system domain: licences and seats, custom roles, extensions, phone numbers,
-- emergency locations, settings and e-mail templates, devices, voicemail boxes, and soft-deleted
-- users. Uniqueness is the database's job: every "must be free" rule has a unique index here.

-- Account policy: the extension range (dial plan), the quarantine that holds a deactivated
-- user's extension and number, and whether deactivation keeps licences.
ALTER TABLE accounts ADD COLUMN extension_first BIGINT NOT NULL DEFAULT 1000;
ALTER TABLE accounts ADD COLUMN extension_last BIGINT NOT NULL DEFAULT 9999;
ALTER TABLE accounts ADD COLUMN quarantine_days BIGINT NOT NULL DEFAULT 30;
ALTER TABLE accounts ADD COLUMN retain_licences BOOLEAN NOT NULL DEFAULT false;

-- 'superAdmin', 'admin', 'member' or 'custom:<role id>'.
ALTER TABLE users ADD COLUMN account_role TEXT NOT NULL DEFAULT 'member';
ALTER TABLE users ADD COLUMN extension BIGINT;
-- Set while the user is inactive: until then extension and number stay reserved for them.
ALTER TABLE users ADD COLUMN held_until BIGINT;
CREATE UNIQUE INDEX users_extension_key ON users (account_id, extension);
CREATE INDEX users_role_idx ON users (account_id, account_role);

CREATE TABLE products (
    id          UUID PRIMARY KEY,
    account_id  UUID NOT NULL REFERENCES accounts (id),
    code        TEXT NOT NULL,
    display     TEXT,
    seats       BIGINT NOT NULL CHECK (seats >= 0),
    -- Maintained with the assignments, in the same transaction, by a guarded UPDATE
    -- (seats_used < seats): the row lock is what keeps seats from being oversold.
    seats_used  BIGINT NOT NULL DEFAULT 0 CHECK (seats_used >= 0),
    features    JSONB NOT NULL DEFAULT '[]'::jsonb,
    created_at  BIGINT NOT NULL,
    CONSTRAINT products_code_key UNIQUE (account_id, code)
);

CREATE TABLE licence_bundles (
    id            UUID PRIMARY KEY,
    account_id    UUID NOT NULL REFERENCES accounts (id),
    name          TEXT NOT NULL,
    entitlements  JSONB NOT NULL,
    created_at    BIGINT NOT NULL,
    CONSTRAINT licence_bundles_name_key UNIQUE (account_id, name)
);

-- One row per user and effective product. A seat is held while state = 'assigned'. No foreign
-- key to users: the rows are written with the user, before its row, and released explicitly.
CREATE TABLE user_licences (
    account_id  UUID NOT NULL,
    user_id     UUID NOT NULL,
    product_id  UUID NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    state       TEXT NOT NULL CHECK (state IN ('assigned', 'pendingSeat')),
    sources     JSONB NOT NULL,
    features    JSONB NOT NULL DEFAULT '[]'::jsonb,
    since       BIGINT NOT NULL,
    PRIMARY KEY (user_id, product_id)
);
CREATE INDEX user_licences_pending_idx ON user_licences (product_id, state, since);

CREATE TABLE custom_roles (
    id           UUID PRIMARY KEY,
    account_id   UUID NOT NULL REFERENCES accounts (id),
    name         TEXT NOT NULL,
    description  TEXT,
    permissions  JSONB NOT NULL,
    created_at   BIGINT NOT NULL,
    CONSTRAINT custom_roles_name_key UNIQUE (account_id, name)
);

CREATE TABLE emergency_locations (
    id          UUID PRIMARY KEY,
    account_id  UUID NOT NULL REFERENCES accounts (id),
    name        TEXT NOT NULL,
    address     JSONB NOT NULL,
    created_at  BIGINT NOT NULL,
    CONSTRAINT emergency_locations_name_key UNIQUE (account_id, name)
);

-- E.164 numbers are unique on the platform: a number belongs to one account's inventory.
CREATE TABLE phone_numbers (
    number        TEXT PRIMARY KEY,
    account_id    UUID NOT NULL REFERENCES accounts (id),
    sms_capable   BOOLEAN NOT NULL,
    user_id       UUID,
    -- A released number is not assignable before this time (the 72-hour quarantine).
    available_at  BIGINT,
    added_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX phone_numbers_user_key ON phone_numbers (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX phone_numbers_account_idx ON phone_numbers (account_id, number);

CREATE TABLE settings_templates (
    id          UUID PRIMARY KEY,
    account_id  UUID NOT NULL REFERENCES accounts (id),
    name        TEXT NOT NULL,
    settings    JSONB NOT NULL,
    created_at  BIGINT NOT NULL,
    CONSTRAINT settings_templates_name_key UNIQUE (account_id, name)
);

CREATE TABLE email_templates (
    id          UUID PRIMARY KEY,
    account_id  UUID NOT NULL REFERENCES accounts (id),
    name        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    html        TEXT NOT NULL,
    text        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    CONSTRAINT email_templates_name_key UNIQUE (account_id, name)
);

-- A MAC address is unique on the platform.
CREATE TABLE devices (
    id          UUID PRIMARY KEY,
    account_id  UUID NOT NULL REFERENCES accounts (id),
    mac         TEXT NOT NULL,
    model       TEXT,
    display     TEXT,
    user_id     UUID,
    created_at  BIGINT NOT NULL,
    CONSTRAINT devices_mac_key UNIQUE (mac)
);
CREATE INDEX devices_user_idx ON devices (account_id, user_id);

-- Kept across deactivation and soft deletion, so a restored user finds their messages.
CREATE TABLE voicemail_boxes (
    user_id     UUID PRIMARY KEY,
    account_id  UUID NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Soft-deleted users leave `users` at once (so SCIM cannot see them and their userName is free)
-- and wait here, restorable, until purge_after.
CREATE TABLE deleted_users (
    id            UUID PRIMARY KEY,
    account_id    UUID NOT NULL REFERENCES accounts (id),
    user_name     TEXT NOT NULL,
    external_id   TEXT,
    display_name  TEXT,
    active        BOOLEAN NOT NULL,
    doc           JSONB NOT NULL,
    account_role  TEXT NOT NULL,
    extension     BIGINT,
    created_at    BIGINT NOT NULL,
    deleted_at    BIGINT NOT NULL,
    purge_after   BIGINT NOT NULL
);
CREATE INDEX deleted_users_account_idx ON deleted_users (account_id, deleted_at);
