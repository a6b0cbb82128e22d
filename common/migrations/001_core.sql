-- Core schema: tenants, deployments with their outbound configuration, calls,
-- attempts and the append-only event history (which doubles as the outbox for
-- outbound.call-events: published_at is set once the broker acknowledged).

CREATE TABLE accounts (
    account_id  uuid PRIMARY KEY,
    email       text NOT NULL UNIQUE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- API keys are random; only their SHA-256 is stored, the key is shown once.
CREATE TABLE api_keys (
    key_id      uuid PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts,
    key_hash    text NOT NULL UNIQUE,       -- lower-case hex SHA-256 of the key
    key_prefix  text NOT NULL,              -- first characters, for display
    label       text NOT NULL DEFAULT '',
    is_admin    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE applications (
    application_id uuid PRIMARY KEY,
    account_id     uuid NOT NULL REFERENCES accounts,
    name           text NOT NULL,
    start_url      text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz
);

CREATE TABLE deployments (
    deployment_id    uuid PRIMARY KEY,
    application_id   uuid NOT NULL REFERENCES applications,
    account_id       uuid NOT NULL REFERENCES accounts,
    name             text NOT NULL,
    active           boolean NOT NULL DEFAULT true,
    capacity         int  NOT NULL DEFAULT 1 CHECK (capacity BETWEEN 1 AND 100000),
    default_region   text NOT NULL DEFAULT 'US',
    max_attempts     int  NOT NULL DEFAULT 1 CHECK (max_attempts BETWEEN 1 AND 10),
    retry_interval_s int  NOT NULL DEFAULT 600 CHECK (retry_interval_s BETWEEN 60 AND 172800),
    start_url        text,
    result_url       text,
    caller_id        text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz
);
CREATE INDEX deployments_account ON deployments (account_id);

-- state: queued -> dialing -> connected -> completed; status is set with the
-- final state. active_attempt is the attempt released to a dialer and not yet
-- ended: the calls holding one are the deployment's calls in flight.
CREATE TABLE calls (
    call_id           uuid PRIMARY KEY,
    deployment_id     uuid NOT NULL REFERENCES deployments,
    account_id        uuid NOT NULL REFERENCES accounts,
    request_partition int  NOT NULL,            -- call-requests partition: its owner releases it
    phone_number      text NOT NULL,            -- E.164
    caller_id         text,
    post_dial         text,
    message_reference text,
    call_parameters   jsonb NOT NULL DEFAULT '{}',
    result_url        text,
    priority          int  NOT NULL DEFAULT 0,
    max_attempts      int  NOT NULL,
    retry_interval_s  int  NOT NULL,
    not_before        timestamptz NOT NULL,
    expires_at        timestamptz,
    state             text NOT NULL DEFAULT 'queued'
                      CHECK (state IN ('queued', 'dialing', 'connected', 'completed')),
    status            text CHECK (status IN ('completed', 'failed', 'uncalled')),
    result            text,
    reason            text,
    attempts_made     int  NOT NULL DEFAULT 0,
    active_attempt    int,
    next_attempt_at   timestamptz NOT NULL,
    accepted_at       timestamptz NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz
);
CREATE INDEX calls_pending ON calls (deployment_id, priority DESC, next_attempt_at, call_id)
    WHERE state = 'queued' AND active_attempt IS NULL;
CREATE INDEX calls_in_flight ON calls (deployment_id) WHERE active_attempt IS NOT NULL;
CREATE INDEX calls_partition_pending ON calls (request_partition, deployment_id)
    WHERE state = 'queued' AND active_attempt IS NULL;
CREATE INDEX calls_deployment_recent ON calls (deployment_id, call_id DESC);

-- One row per released attempt. job_id names the dial job that may start it,
-- so a stale or duplicated job can never start a second dial. The row is
-- also the dial job's outbox: job_published_at is set once the broker
-- acknowledged the job, and released rows without it are sent again.
CREATE TABLE attempts (
    call_id         uuid NOT NULL REFERENCES calls,
    attempt         int  NOT NULL,
    deployment_id   uuid NOT NULL,
    job_id          uuid NOT NULL UNIQUE,
    state           text NOT NULL DEFAULT 'released'
                    CHECK (state IN ('released', 'dialing', 'connected', 'ended')),
    worker          text,
    result          text,
    reason          text,
    released_at     timestamptz NOT NULL DEFAULT now(),
    job_published_at timestamptz,
    lease_until     timestamptz NOT NULL,
    dialing_at      timestamptz,
    connected_at    timestamptz,
    ended_at        timestamptz,
    ring_ms         int,
    talk_ms         int,
    PRIMARY KEY (call_id, attempt)
);
CREATE INDEX attempts_unpublished_jobs ON attempts (released_at)
    WHERE state = 'released' AND job_published_at IS NULL;

CREATE TABLE call_events (
    event_id      uuid PRIMARY KEY,
    call_id       uuid NOT NULL REFERENCES calls,
    deployment_id uuid NOT NULL,
    type          text NOT NULL,              -- outbound.call.queued, .dialing, ...
    source        text NOT NULL,              -- service instance that wrote it
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    data          jsonb NOT NULL,             -- the CloudEvent's data member
    published_at  timestamptz                 -- set after the broker acknowledged
);
CREATE INDEX call_events_call ON call_events (call_id, occurred_at);
CREATE INDEX call_events_unpublished ON call_events (occurred_at) WHERE published_at IS NULL;

-- Everything a dial job carries, for the scheduler that publishes it.
CREATE VIEW dial_jobs AS
SELECT a.job_id, a.call_id, a.deployment_id, c.account_id, a.attempt, c.phone_number,
       c.caller_id, c.post_dial, c.message_reference, c.call_parameters::text AS call_parameters,
       c.max_attempts, c.retry_interval_s,
       (extract(epoch FROM a.lease_until) * 1000)::bigint AS lease_until_ms,
       coalesce(d.start_url, ap.start_url) AS start_url,
       c.request_partition, a.state, a.released_at, a.job_published_at
FROM attempts a
JOIN calls c USING (call_id)
JOIN deployments d ON d.deployment_id = a.deployment_id
JOIN applications ap ON ap.application_id = d.application_id;
