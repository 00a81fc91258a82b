-- Housekeeping deletes what has expired every minute (README "Housekeeping"). Without these
-- indexes each of its DELETEs read its whole table, and on SQLite a DELETE holds the write
-- lock from its first row read, so the token endpoint's writes waited behind a scan that grew
-- with the table: rotated refresh tokens are kept a day, so at a few hundred refreshes a
-- second that is tens of millions of rows read under the lock, every minute. With them each
-- DELETE reads only the rows it removes.
--
-- Partial where the column is NULL for most of a row's life: a new refresh token has no
-- used_at and a live grant no revoked_at, so inserting them touches no page of these indexes;
-- the UPDATE that sets the column appends at the index's end (the time only grows).
CREATE INDEX refresh_tokens_used ON refresh_tokens(used_at) WHERE used_at IS NOT NULL;
CREATE INDEX grants_expiry ON grants(expires_at);
CREATE INDEX grants_revoked ON grants(revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX rate_limits_expiry ON rate_limits(expires_at);
CREATE INDEX device_enrollments_expiry ON device_enrollments(expires_at);
