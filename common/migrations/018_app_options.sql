-- Application options of a deployment (services/dialer/dialer_app.c).
--
-- start_url_format: how the start_url requests carry the call's context:
-- 'json' (application/json, the default) or 'form'
-- (application/x-www-form-urlencoded, the same field names), for
-- applications written for Plum's form-encoded requests.
--
-- verify_urls: the deployment's start_url and result_url (those set) must
-- answer 200 to a GET before its calls are dialed; a dialer checks them at
-- most once a minute per deployment, and an attempt whose check failed ends
-- as noattempt with reason url_check_failed (conclude_attempt, 017).
ALTER TABLE deployments
    ADD COLUMN start_url_format text NOT NULL DEFAULT 'json'
        CHECK (start_url_format IN ('json', 'form')),
    ADD COLUMN verify_urls boolean NOT NULL DEFAULT false;
