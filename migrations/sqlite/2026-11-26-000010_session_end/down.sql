DROP INDEX sessions_unnotified;
ALTER TABLE sessions DROP COLUMN logout_sent_at;
