-- Migration 1: installations, events, releases, rollouts, tokens.
-- One text for SQLite and PostgreSQL: only TEXT, INTEGER and BIGINT
-- columns, times as BIGINT Unix nanoseconds (0 for none), evidence as a
-- JSON object in TEXT.

CREATE TABLE tokens (
    id       TEXT PRIMARY KEY,
    kind     TEXT NOT NULL,
    scope    TEXT NOT NULL,
    hash     TEXT NOT NULL UNIQUE,
    created  BIGINT NOT NULL,
    expires  BIGINT NOT NULL,
    revoked  BIGINT NOT NULL,
    uses     BIGINT NOT NULL,
    max_uses BIGINT NOT NULL
);

CREATE TABLE installations (
    id              TEXT PRIMARY KEY,
    credential_hash TEXT NOT NULL,
    token_id        TEXT NOT NULL REFERENCES tokens (id),
    enrolled        BIGINT NOT NULL,
    last_seen       BIGINT NOT NULL
);
CREATE INDEX installations_last_seen ON installations (last_seen);

CREATE TABLE installation_apps (
    install_id TEXT NOT NULL REFERENCES installations (id) ON DELETE CASCADE,
    app        TEXT NOT NULL,
    version    TEXT NOT NULL,
    channel    TEXT NOT NULL,
    updated    BIGINT NOT NULL,
    PRIMARY KEY (install_id, app)
);
CREATE INDEX installation_apps_fleet ON installation_apps (app, version, channel);

CREATE TABLE events (
    install_id TEXT NOT NULL REFERENCES installations (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    prev       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    occurred   BIGINT NOT NULL,
    received   BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    app        TEXT NOT NULL,
    version    TEXT NOT NULL,
    cause      TEXT NOT NULL,
    evidence   TEXT NOT NULL,
    PRIMARY KEY (install_id, seq)
);
CREATE INDEX events_release ON events (app, version, kind);
CREATE INDEX events_kind ON events (kind, occurred);
CREATE INDEX events_occurred ON events (occurred);

CREATE TABLE releases (
    app     TEXT NOT NULL,
    version TEXT NOT NULL,
    channel TEXT NOT NULL,
    created BIGINT NOT NULL,
    PRIMARY KEY (app, version)
);

CREATE TABLE rollouts (
    app          TEXT NOT NULL,
    version      TEXT NOT NULL,
    basis_points INTEGER NOT NULL,
    state        TEXT NOT NULL,
    salt         TEXT NOT NULL,
    reason       TEXT NOT NULL,
    updated      BIGINT NOT NULL,
    PRIMARY KEY (app, version),
    FOREIGN KEY (app, version) REFERENCES releases (app, version) ON DELETE CASCADE
);
