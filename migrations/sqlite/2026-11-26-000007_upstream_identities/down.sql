DROP TABLE upstream_pending_links;
DROP TABLE upstream_logins;
DROP TABLE upstream_identities;
