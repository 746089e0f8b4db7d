-- Migration 3: the plans of guarded rollouts (stages, wait, healthy-report
-- minimum, failure budget, check interval) and where each stands: its
-- stage, since when, and the guard's last finding as a JSON object of
-- guard.Status ("{}" before the first). One row per release; a release
-- without a row has no plan. Durations are BIGINT nanoseconds, stages a
-- comma-separated list of basis points ("" for a watched rollout).

CREATE TABLE rollout_plans (
    app            TEXT NOT NULL,
    version        TEXT NOT NULL,
    stages         TEXT NOT NULL,
    stage_wait     BIGINT NOT NULL,
    min_healthy    INTEGER NOT NULL,
    budget         INTEGER NOT NULL,
    check_interval BIGINT NOT NULL,
    stage          INTEGER NOT NULL,
    stage_since    BIGINT NOT NULL,
    created        BIGINT NOT NULL,
    status         TEXT NOT NULL,
    PRIMARY KEY (app, version)
);
