-- The phone-system domain: licences and seats, custom roles, extensions, phone numbers,
-- emergency locations, settings and e-mail templates, devices, voicemail boxes, and soft-deleted
-- users. Uniqueness is the database's job: every "must be free" rule has a unique index here.

-- Account policy: the extension range (dial plan), the quarantine that holds a deactivated
-- user's extension and number, and whether deactivation keeps licences.
ALTER TABLE accounts ADD COLUMN extension_first INTEGER NOT NULL DEFAULT 1000;
ALTER TABLE accounts ADD COLUMN extension_last INTEGER NOT NULL DEFAULT 9999;
ALTER TABLE accounts ADD COLUMN quarantine_days INTEGER NOT NULL DEFAULT 30;
ALTER TABLE accounts ADD COLUMN retain_licences INTEGER NOT NULL DEFAULT 0;

-- 'superAdmin', 'admin', 'member' or 'custom:<role id>'.
ALTER TABLE users ADD COLUMN account_role TEXT NOT NULL DEFAULT 'member';
ALTER TABLE users ADD COLUMN extension INTEGER;
-- Set while the user is inactive: until then extension and number stay reserved for them.
ALTER TABLE users ADD COLUMN held_until INTEGER;
CREATE UNIQUE INDEX users_extension_key ON users (account_id, extension);
CREATE INDEX users_role_idx ON users (account_id, account_role);

CREATE TABLE products (
    id          BLOB PRIMARY KEY,
    account_id  BLOB NOT NULL REFERENCES accounts (id),
    code        TEXT NOT NULL,
    display     TEXT,
    seats       INTEGER NOT NULL CHECK (seats >= 0),
    -- Maintained with the assignments, in the same transaction, by a guarded UPDATE
    -- (seats_used < seats): the row lock is what keeps seats from being oversold.
    seats_used  INTEGER NOT NULL DEFAULT 0 CHECK (seats_used >= 0),
    features    TEXT NOT NULL DEFAULT '[]',
    created_at  INTEGER NOT NULL,
    CONSTRAINT products_code_key UNIQUE (account_id, code)
);

CREATE TABLE licence_bundles (
    id            BLOB PRIMARY KEY,
    account_id    BLOB NOT NULL REFERENCES accounts (id),
    name          TEXT NOT NULL,
    entitlements  TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    CONSTRAINT licence_bundles_name_key UNIQUE (account_id, name)
);

-- One row per user and effective product. A seat is held while state = 'assigned'. No foreign
-- key to users: the rows are written with the user, before its row, and released explicitly.
CREATE TABLE user_licences (
    account_id  BLOB NOT NULL,
    user_id     BLOB NOT NULL,
    product_id  BLOB NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    state       TEXT NOT NULL CHECK (state IN ('assigned', 'pendingSeat')),
    sources     TEXT NOT NULL,
    features    TEXT NOT NULL DEFAULT '[]',
    since       INTEGER NOT NULL,
    PRIMARY KEY (user_id, product_id)
) WITHOUT ROWID;
CREATE INDEX user_licences_pending_idx ON user_licences (product_id, state, since);

CREATE TABLE custom_roles (
    id           BLOB PRIMARY KEY,
    account_id   BLOB NOT NULL REFERENCES accounts (id),
    name         TEXT NOT NULL,
    description  TEXT,
    permissions  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    CONSTRAINT custom_roles_name_key UNIQUE (account_id, name)
);

CREATE TABLE emergency_locations (
    id          BLOB PRIMARY KEY,
    account_id  BLOB NOT NULL REFERENCES accounts (id),
    name        TEXT NOT NULL,
    address     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    CONSTRAINT emergency_locations_name_key UNIQUE (account_id, name)
);

-- E.164 numbers are unique on the platform: a number belongs to one account's inventory.
CREATE TABLE phone_numbers (
    number        TEXT PRIMARY KEY,
    account_id    BLOB NOT NULL REFERENCES accounts (id),
    sms_capable   INTEGER NOT NULL,
    user_id       BLOB,
    -- A released number is not assignable before this time (the 72-hour quarantine).
    available_at  INTEGER,
    added_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX phone_numbers_user_key ON phone_numbers (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX phone_numbers_account_idx ON phone_numbers (account_id, number);

CREATE TABLE settings_templates (
    id          BLOB PRIMARY KEY,
    account_id  BLOB NOT NULL REFERENCES accounts (id),
    name        TEXT NOT NULL,
    settings    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    CONSTRAINT settings_templates_name_key UNIQUE (account_id, name)
);

CREATE TABLE email_templates (
    id          BLOB PRIMARY KEY,
    account_id  BLOB NOT NULL REFERENCES accounts (id),
    name        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    html        TEXT NOT NULL,
    text        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    CONSTRAINT email_templates_name_key UNIQUE (account_id, name)
);

-- A MAC address is unique on the platform.
CREATE TABLE devices (
    id          BLOB PRIMARY KEY,
    account_id  BLOB NOT NULL REFERENCES accounts (id),
    mac         TEXT NOT NULL,
    model       TEXT,
    display     TEXT,
    user_id     BLOB,
    created_at  INTEGER NOT NULL,
    CONSTRAINT devices_mac_key UNIQUE (mac)
);
CREATE INDEX devices_user_idx ON devices (account_id, user_id);

-- Kept across deactivation and soft deletion, so a restored user finds their messages.
CREATE TABLE voicemail_boxes (
    user_id     BLOB PRIMARY KEY,
    account_id  BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Soft-deleted users leave `users` at once (so SCIM cannot see them and their userName is free)
-- and wait here, restorable, until purge_after.
CREATE TABLE deleted_users (
    id            BLOB PRIMARY KEY,
    account_id    BLOB NOT NULL REFERENCES accounts (id),
    user_name     TEXT NOT NULL,
    external_id   TEXT,
    display_name  TEXT,
    active        INTEGER NOT NULL,
    doc           TEXT NOT NULL,
    account_role  TEXT NOT NULL,
    extension     INTEGER,
    created_at    INTEGER NOT NULL,
    deleted_at    INTEGER NOT NULL,
    purge_after   INTEGER NOT NULL
);
CREATE INDEX deleted_users_account_idx ON deleted_users (account_id, deleted_at);
