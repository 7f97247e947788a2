-- The spend log's key and team indexes hold only the rows that have a key or a team: a call
-- made with the master key, or by a key in no team, adds no entry to them (an insert then
-- writes two or three trees, not four). Every query that uses them names the key or the
-- team (`key_id = $1`, `team_id = $1`), which implies the condition, so both databases
-- still use them.
DROP INDEX IF EXISTS spend_logs_key_time;
DROP INDEX IF EXISTS spend_logs_team_time;
CREATE INDEX IF NOT EXISTS spend_logs_key_time ON spend_logs (key_id, created_at) WHERE key_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS spend_logs_team_time ON spend_logs (team_id, created_at) WHERE team_id IS NOT NULL;
