-- Who made each change: `token` (its id in token_id), `invitation:<id>` (someone holding an
-- invitation link), `operator` (the CLI) or `housekeeping` (the server's periodic jobs). Events
-- written before this column existed are NULL (their token_id is the nil id when no token acted).
ALTER TABLE audit_log ADD COLUMN actor TEXT;
