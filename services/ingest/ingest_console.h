/*
 * The web console's static files, embedded into the ingest binary at build
 * time by tools/embed_console.sh from services/ingest/console/, and the
 * routes that serve them (ingest_console.c).
 */
#ifndef INGEST_CONSOLE_H
#define INGEST_CONSOLE_H

#include "ingest.h"

#include <stddef.h>

typedef struct {
    const char *name;          /* file name under /console/, e.g. "app.js" */
    const char *content_type;  /* Content-Type to serve it with */
    const unsigned char *data; /* its bytes (NUL-terminated, NUL not counted) */
    size_t len;                /* bytes in data */
    const char *etag;          /* strong ETag, quoted: part of its SHA-256 */
} ingest_console_file_t;

extern const ingest_console_file_t ingest_console_files[];
extern const size_t ingest_console_count;

/* GET / and GET /console/{file} (HEAD too): the console's static files,
 * public, with a strict Content-Security-Policy (ingest_console.c). */
void ingest_console_index(ingest_call_t *c);
void ingest_console_file(ingest_call_t *c);

#endif
