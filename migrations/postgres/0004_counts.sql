-- Counts kept as rows come and go, so that an unfiltered list's total and a group's member
-- counts are a lookup instead of a scan of the account or the group. Triggers keep them: no code
-- path can forget one. A count is the sum of its rows' `n` over `slot`s. Each writer adds to the
-- slot of its own connection (backend pid mod 1024), so that concurrent creates in one account
-- do not queue for one counter row until commit — the very serialisation the counts must not
-- bring back.

CREATE TABLE resource_counts (
    account_id    UUID NOT NULL,
    resource_type TEXT NOT NULL CHECK (resource_type IN ('User', 'Group')),
    slot          INTEGER NOT NULL,
    n             BIGINT NOT NULL,
    PRIMARY KEY (account_id, resource_type, slot)
);
INSERT INTO resource_counts (account_id, resource_type, slot, n)
    SELECT account_id, 'User', 0, COUNT(*) FROM users GROUP BY account_id;
INSERT INTO resource_counts (account_id, resource_type, slot, n)
    SELECT account_id, 'Group', 0, COUNT(*) FROM groups GROUP BY account_id;

CREATE FUNCTION count_resource() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    account UUID;
    delta   BIGINT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        account := NEW.account_id;
        delta := 1;
    ELSE
        account := OLD.account_id;
        delta := -1;
    END IF;
    INSERT INTO resource_counts (account_id, resource_type, slot, n)
        VALUES (account, TG_ARGV[0], pg_backend_pid() % 1024, delta)
        ON CONFLICT (account_id, resource_type, slot) DO UPDATE SET n = resource_counts.n + excluded.n;
    IF TG_OP = 'DELETE' AND TG_ARGV[0] = 'Group' THEN
        DELETE FROM group_member_counts WHERE group_id = OLD.id;
    END IF;
    RETURN NULL;
END
$$;

-- Direct members of each group, users and groups apart (a group without group members has as
-- many effective members as user members).
CREATE TABLE group_member_counts (
    group_id UUID NOT NULL,
    slot     INTEGER NOT NULL,
    users    BIGINT NOT NULL,
    groups   BIGINT NOT NULL,
    PRIMARY KEY (group_id, slot)
);
INSERT INTO group_member_counts (group_id, slot, users, groups)
    SELECT group_id, 0, COUNT(*) FILTER (WHERE member_type = 'User'), COUNT(*) FILTER (WHERE member_type = 'Group')
    FROM group_members GROUP BY group_id;

-- Statement-level: a PATCH adding a hundred members updates each count row once, not a
-- hundred times.
CREATE FUNCTION count_group_members_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO group_member_counts (group_id, slot, users, groups)
        SELECT group_id, pg_backend_pid() % 1024,
               COUNT(*) FILTER (WHERE member_type = 'User'), COUNT(*) FILTER (WHERE member_type = 'Group')
        FROM added GROUP BY group_id
        ON CONFLICT (group_id, slot) DO UPDATE SET users = group_member_counts.users + excluded.users,
                                                   groups = group_member_counts.groups + excluded.groups;
    RETURN NULL;
END
$$;

CREATE FUNCTION count_group_members_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO group_member_counts (group_id, slot, users, groups)
        SELECT group_id, pg_backend_pid() % 1024,
               -COUNT(*) FILTER (WHERE member_type = 'User'), -COUNT(*) FILTER (WHERE member_type = 'Group')
        FROM removed GROUP BY group_id
        ON CONFLICT (group_id, slot) DO UPDATE SET users = group_member_counts.users + excluded.users,
                                                   groups = group_member_counts.groups + excluded.groups;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_counted AFTER INSERT OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION count_resource('User');
CREATE TRIGGER groups_counted AFTER INSERT OR DELETE ON groups
    FOR EACH ROW EXECUTE FUNCTION count_resource('Group');
CREATE TRIGGER group_members_counted_in AFTER INSERT ON group_members
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION count_group_members_added();
CREATE TRIGGER group_members_counted_out AFTER DELETE ON group_members
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION count_group_members_removed();
