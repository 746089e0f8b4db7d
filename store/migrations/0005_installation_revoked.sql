-- Migration 5: an installation revoked on its own (ferry installation
-- revoke), for a machine that leaked its credential or is no longer
-- trusted: its reports are refused and what it reported before is not
-- the rollout guard's evidence. Unix nanoseconds, 0 for not revoked.

ALTER TABLE installations ADD COLUMN revoked BIGINT NOT NULL DEFAULT 0;
