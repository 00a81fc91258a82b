DROP INDEX device_enrollments_expiry;
DROP INDEX rate_limits_expiry;
DROP INDEX audit_log_at;
DROP INDEX grants_revoked;
DROP INDEX grants_expiry;
DROP INDEX refresh_tokens_used;
