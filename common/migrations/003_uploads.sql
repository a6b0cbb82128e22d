-- CSV uploads: one row per upload with its counts, and the rows it rejected
-- (row number, line, column, code, message). Accepted rows are calls that
-- name their upload, so the calls list filters by upload.
CREATE TABLE uploads (
    upload_id      uuid PRIMARY KEY,
    account_id     uuid NOT NULL REFERENCES accounts,
    deployment_id  uuid NOT NULL REFERENCES deployments,
    file_name      text,
    status         text NOT NULL DEFAULT 'processing'
                   CHECK (status IN ('processing', 'completed', 'failed')),
    detail         text,
    rows_total     int NOT NULL DEFAULT 0,
    rows_queued    int NOT NULL DEFAULT 0,
    rows_rejected  int NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
CREATE INDEX uploads_deployment ON uploads (deployment_id, upload_id DESC);

CREATE TABLE upload_errors (
    upload_id  uuid NOT NULL REFERENCES uploads ON DELETE CASCADE,
    row_number int  NOT NULL,
    line       int  NOT NULL,
    field      text,
    code       text NOT NULL,
    message    text NOT NULL,
    PRIMARY KEY (upload_id, row_number, code, line)
);

ALTER TABLE calls ADD COLUMN upload_id uuid;
CREATE INDEX calls_upload ON calls (upload_id, call_id) WHERE upload_id IS NOT NULL;
