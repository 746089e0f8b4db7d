-- Migration 2: the security events the server itself finds in what an
-- installation reports (a rewritten audit log, R65). Events the
-- installation reported are in events.

CREATE TABLE security_events (
    install_id TEXT NOT NULL REFERENCES installations (id) ON DELETE CASCADE,
    occurred   BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    cause      TEXT NOT NULL,
    evidence   TEXT NOT NULL,
    PRIMARY KEY (install_id, occurred, kind)
);
CREATE INDEX security_events_occurred ON security_events (occurred);
