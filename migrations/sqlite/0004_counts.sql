-- Counts kept as rows come and go, so that an unfiltered list's total and a group's member
-- counts are a lookup instead of a scan of the account or the group. Triggers keep them: no code
-- path can forget one. A count is the sum of its rows' `n` over `slot`s; SQLite has one writer,
-- so one slot (0) is enough here (PostgreSQL spreads concurrent writers over slots).

CREATE TABLE resource_counts (
    account_id    BLOB NOT NULL,
    resource_type TEXT NOT NULL CHECK (resource_type IN ('User', 'Group')),
    slot          INTEGER NOT NULL,
    n             INTEGER NOT NULL,
    PRIMARY KEY (account_id, resource_type, slot)
);
INSERT INTO resource_counts (account_id, resource_type, slot, n)
    SELECT account_id, 'User', 0, COUNT(*) FROM users GROUP BY account_id;
INSERT INTO resource_counts (account_id, resource_type, slot, n)
    SELECT account_id, 'Group', 0, COUNT(*) FROM groups GROUP BY account_id;

CREATE TRIGGER users_counted_in AFTER INSERT ON users BEGIN
    INSERT INTO resource_counts (account_id, resource_type, slot, n) VALUES (NEW.account_id, 'User', 0, 1)
        ON CONFLICT (account_id, resource_type, slot) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER users_counted_out AFTER DELETE ON users BEGIN
    INSERT INTO resource_counts (account_id, resource_type, slot, n) VALUES (OLD.account_id, 'User', 0, -1)
        ON CONFLICT (account_id, resource_type, slot) DO UPDATE SET n = n - 1;
END;
CREATE TRIGGER groups_counted_in AFTER INSERT ON groups BEGIN
    INSERT INTO resource_counts (account_id, resource_type, slot, n) VALUES (NEW.account_id, 'Group', 0, 1)
        ON CONFLICT (account_id, resource_type, slot) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER groups_counted_out AFTER DELETE ON groups BEGIN
    INSERT INTO resource_counts (account_id, resource_type, slot, n) VALUES (OLD.account_id, 'Group', 0, -1)
        ON CONFLICT (account_id, resource_type, slot) DO UPDATE SET n = n - 1;
    DELETE FROM group_member_counts WHERE group_id = OLD.id;
END;

-- Direct members of each group, users and groups apart (a group without group members has as
-- many effective members as user members).
CREATE TABLE group_member_counts (
    group_id BLOB NOT NULL,
    slot     INTEGER NOT NULL,
    users    INTEGER NOT NULL,
    groups   INTEGER NOT NULL,
    PRIMARY KEY (group_id, slot)
);
INSERT INTO group_member_counts (group_id, slot, users, groups)
    SELECT group_id, 0, SUM(member_type = 'User'), SUM(member_type = 'Group') FROM group_members GROUP BY group_id;

CREATE TRIGGER group_members_counted_in AFTER INSERT ON group_members BEGIN
    INSERT INTO group_member_counts (group_id, slot, users, groups)
        VALUES (NEW.group_id, 0, NEW.member_type = 'User', NEW.member_type = 'Group')
        ON CONFLICT (group_id, slot) DO UPDATE SET users = users + excluded.users, groups = groups + excluded.groups;
END;
CREATE TRIGGER group_members_counted_out AFTER DELETE ON group_members BEGIN
    INSERT INTO group_member_counts (group_id, slot, users, groups)
        VALUES (OLD.group_id, 0, -(OLD.member_type = 'User'), -(OLD.member_type = 'Group'))
        ON CONFLICT (group_id, slot) DO UPDATE SET users = users + excluded.users, groups = groups + excluded.groups;
END;
