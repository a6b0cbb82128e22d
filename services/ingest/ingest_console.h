/*
 * The web console's static files, embedded into the ingest binary at build
 * time by tools/embed_console.sh from services/ingest/console/.
 */
#ifndef INGEST_CONSOLE_H
#define INGEST_CONSOLE_H

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

#endif
