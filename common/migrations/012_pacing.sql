-- Optional pacing: at most calls_per_second new attempts released per second
-- for a deployment (NULL: as fast as capacity allows). The scheduler counts
-- the attempts released within the last max(1, 1/rate) seconds.
ALTER TABLE deployments ADD COLUMN calls_per_second numeric
    CHECK (calls_per_second > 0 AND calls_per_second <= 10000);
CREATE INDEX attempts_deployment_released ON attempts (deployment_id, released_at);
