-- Migration 4: the index the rollout guard's evidence query (Outcomes)
-- reads, every evaluation tick, for each guarded release: only the events
-- that are outcomes of an install, so that the far more numerous check and
-- download events cost it nothing to store. Its WHERE is the query's text
-- exactly (store/plans.go, outcomeKinds), which both databases need to
-- use a partial index.

CREATE INDEX events_outcomes ON events (app, version, install_id, kind, received)
    WHERE kind IN ('install.started', 'health.passed', 'install.done', 'health.failed', 'install.failed', 'install.rolled_back', 'install.rollback_failed');
