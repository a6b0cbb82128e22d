/*
 * Serves the web console: GET / is its page, GET /console/{file} its script
 * and style sheet, all without authentication (the page itself asks for an
 * API key and calls the JSON API with it). Every answer carries a strict
 * Content-Security-Policy: only this origin's scripts, styles and API.
 */
#include "ingest_console.h"

#include <string.h>

/* No inline script or style (everything user-supplied is inserted as text,
 * and the policy stops any injected markup from running), no framing.
 * Media may come from blob: URLs: the Application editor's Preview plays
 * the WAV the API renders from one (app_doc.js). */
static const char CSP[] = "default-src 'self'; script-src 'self'; style-src 'self';"
                          " img-src 'self' data:; media-src 'self' blob:; connect-src 'self';"
                          " font-src 'self';"
                          " object-src 'none'; base-uri 'none'; form-action 'self';"
                          " frame-ancestors 'none'";

static void security_headers(ob_http_req_t *req)
{
    ob_http_add_header(req, "Content-Security-Policy", CSP);
    ob_http_add_header(req, "X-Content-Type-Options", "nosniff");
    ob_http_add_header(req, "X-Frame-Options", "DENY");
    ob_http_add_header(req, "Referrer-Policy", "no-referrer");
}

static void serve(ingest_call_t *c, const char *name)
{
    ob_http_req_t *req = c->req;
    const ingest_console_file_t *f = NULL;
    for (size_t i = 0; i < ingest_console_count && !f; i++)
        if (strcmp(ingest_console_files[i].name, name) == 0)
            f = &ingest_console_files[i];
    security_headers(req);
    if (!f) {
        ob_http_problem(req, 404, "not_found", NULL, "no console file %.64s", name);
        return;
    }
    /* Revalidated on every load (a new build must show at once), answered
     * 304 while the file is the same. */
    ob_http_add_header(req, "Cache-Control", "no-cache");
    ob_http_add_header(req, "ETag", f->etag);
    const char *inm = ob_http_header(req, "If-None-Match");
    if (inm && strstr(inm, f->etag)) {
        ob_http_reply(req, 304, f->content_type, "", 0);
        return;
    }
    ob_http_reply(req, 200, f->content_type, (const char *)f->data, f->len);
}

void ingest_console_index(ingest_call_t *c)
{
    serve(c, "index.html");
}

void ingest_console_file(ingest_call_t *c)
{
    serve(c, c->param[0]);
}
