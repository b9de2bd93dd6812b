/* probe_http_opts.h: the options of core.http_get() and what a URL needs (probe_http_opts.c). */
#ifndef ORCH_PROBE_HTTP_OPTS_H
#define ORCH_PROBE_HTTP_OPTS_H

#include <lua.h>

/* Redirects followed unless the options say otherwise. */
#define HTTP_DEFAULT_MAX_REDIRECTS 5

typedef struct http_opts {
  lua_Integer timeout, max_redirects;
  int insecure, head;
} http_opts;

/* Read and check the options table at `idx`; raises on misuse.   [-0, +0, v] */
void orch_http_check_opts(lua_State *L, int idx, http_opts *o);
/* Whether the URL's host needs no name lookup (an IP literal, or "localhost"). */
int orch_http_host_is_literal(const char *url);

#endif
