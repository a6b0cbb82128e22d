-- The Plum-compatible routes (services/ingest/ingest_plum.c, docs/plum.md).
--
-- calls.queued_via: the API that accepted the call ('plum' for
-- /api/apps/{app}/{dep}/queue and bulk_queue, written by the scheduler from
-- the call-request message). The result_url of a Plum-queued call receives
-- Plum's call_details, as Plum documents, not the native call view.
ALTER TABLE calls ADD COLUMN queued_via text NOT NULL DEFAULT 'v1';
-- NOT VALID: every existing row holds the default; new rows are checked.
ALTER TABLE calls ADD CONSTRAINT calls_queued_via CHECK (queued_via IN ('v1', 'plum')) NOT VALID;

-- Deployment settings for Plum clients:
-- plum_result_format: how a Plum-queued call's result_url body is encoded:
--   'form' (application/x-www-form-urlencoded, the call_details members as
--   POST parameters, nested ones with PHP's brackets: events[0][event]), as
--   Plum's result_url documentation describes; or 'json' (the call_details
--   object as application/json).
-- plum_pci_allowed: Plum's is_pci=1 asks to run the call in Plum's HIPAA /
--   PCI environment. There is one environment here, so is_pci=1 is refused
--   unless the deployment's operator declares (true) that where this
--   deployment runs meets those rules; is_pci=0 is always accepted.
ALTER TABLE deployments
    ADD COLUMN plum_result_format text NOT NULL DEFAULT 'form'
        CHECK (plum_result_format IN ('form', 'json')),
    ADD COLUMN plum_pci_allowed boolean NOT NULL DEFAULT false;

-- How the sender encodes a delivery's body (which is stored as JSON):
-- as it is, or form-encoded from it (dialer_webhook_form_body).
ALTER TABLE webhook_deliveries ADD COLUMN content_type text NOT NULL DEFAULT 'application/json'
    CHECK (content_type IN ('application/json', 'application/x-www-form-urlencoded'));

-- Plum's view of a call (plum_status, plum_event, plum_call_details) is in
-- common/sql/plum.sql.
