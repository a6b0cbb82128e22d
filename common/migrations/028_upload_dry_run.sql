-- A dry run (POST .../uploads?dry_run=true) validates every row and stores
-- its report like an upload, so that report.csv lists every rejected row,
-- but queues nothing: its rows_queued stays 0 and no call names it.
ALTER TABLE uploads ADD COLUMN dry_run boolean NOT NULL DEFAULT false;
