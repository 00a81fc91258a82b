-- When the back-channel logout of a session's end was claimed for delivery: set once, by the
-- one caller (request or sweeper, on any replica) whose conditional UPDATE wins, so relying
-- parties hear of each ended session exactly once. Sessions already revoked were notified
-- when they were revoked.
ALTER TABLE sessions ADD COLUMN logout_sent_at BIGINT;
UPDATE sessions SET logout_sent_at = revoked_at WHERE revoked_at IS NOT NULL;
CREATE INDEX sessions_unnotified ON sessions(logout_sent_at);
