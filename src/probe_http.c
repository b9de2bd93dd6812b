/* probe_http.c: core.http_get(), an HTTP(S) probe through one libcurl multi handle per ctx,
 * driven by the libuv loop (CURLMOPT_SOCKETFUNCTION: one uv_poll_t per socket;
 * CURLMOPT_TIMERFUNCTION: one uv_timer_t).
 *
 * Lua code runs only from check_done(), after curl_multi_socket_action() has returned, never
 * from inside a curl callback, so a Lua callback may start or close probes freely.
 *
 * libcurl is dlopen'ed on the first http_get, not linked: its dependency chain (TLS, Kerberos,
 * LDAP, SSH...) costs ~5 MB of RSS in every orch that never makes an HTTP check. curl.h still
 * gives the types and constants. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "orch.h"
#include "probe_http_opts.h"

#ifndef ORCH_LIBCURL_SONAME
#define ORCH_LIBCURL_SONAME "libcurl.so.4"
#endif

/* Every libcurl function used here, called as curl.<name> (the symbol is curl_<name>). */
#define CURL_FUNCTIONS(X)                                                                          \
  X(global_init)                                                                                   \
  X(easy_init)                                                                                     \
  X(easy_cleanup)                                                                                  \
  X(easy_setopt)                                                                                   \
  X(easy_getinfo)                                                                                  \
  X(easy_strerror)                                                                                 \
  X(multi_init)                                                                                    \
  X(multi_cleanup)                                                                                 \
  X(multi_setopt)                                                                                  \
  X(multi_assign)                                                                                  \
  X(multi_add_handle)                                                                              \
  X(multi_remove_handle)                                                                           \
  X(multi_socket_action)                                                                           \
  X(multi_info_read)                                                                               \
  X(multi_strerror)

static struct {
#define CURL_POINTER(name) __typeof__(curl_##name) *(name);
  CURL_FUNCTIONS(CURL_POINTER)
#undef CURL_POINTER
} curl;

static int curl_loaded; /* every pointer in `curl` is set and curl_global_init succeeded */

struct http_multi;

/* A socket curl asked us to watch; curl_multi_assign() links it to curl's socket entry. */
typedef struct http_sock {
  uv_poll_t poll;                /* first: the block is freed in the close callback */
  struct http_multi *m;          /* borrowed; NULL once the multi is gone */
  curl_socket_t fd;              /* owned by curl */
  struct http_sock *prev, *next; /* in m->socks while the poll is open */
} http_sock;

/* ctx->http. */
typedef struct http_multi {
  CURLM *multi;      /* curl_multi_cleanup in orch_http_close */
  uv_timer_t *timer; /* curl's timeout; freed in its close callback */
  orch_ctx *ctx;     /* borrowed */
  http_sock *socks;  /* open polls, closed by orch_http_close if curl left any */
  int transfers;     /* probes in flight: the timer keeps the loop alive only while > 0 */
} http_multi;

typedef struct http_probe {
  orch_probe head;
  CURL *easy;                   /* in the multi while in flight; curl_easy_cleanup when done */
  uint64_t start;               /* uv_hrtime() at creation */
  curl_off_t bytes;             /* body bytes received and discarded */
  char errbuf[CURL_ERROR_SIZE]; /* CURLOPT_ERRORBUFFER; userdata memory does not move */
} http_probe;

static void on_close_free(uv_handle_t *h)
{
  free(h); /* the handle is the first member of its malloc'd block */
}

static void sock_close(http_sock *s)
{
  if (s->m != NULL) {
    if (s->prev != NULL)
      s->prev->next = s->next;
    else
      s->m->socks = s->next;
    if (s->next != NULL)
      s->next->prev = s->prev;
  }
  s->m = NULL;
  s->poll.data = NULL;
  uv_close((uv_handle_t *)&s->poll, on_close_free);
}

/* Take `p` out of the multi and free its easy handle. */
static void http_detach(http_probe *p)
{
  http_multi *m = p->head.base.ctx->http;
  if (p->easy == NULL)
    return;
  if (m != NULL) {
    curl.multi_remove_handle(m->multi, p->easy);
    if (--m->transfers == 0)
      uv_unref((uv_handle_t *)m->timer);
  }
  curl.easy_cleanup(p->easy);
  p->easy = NULL;
}

static void http_cancel(orch_probe *p)
{
  http_detach((http_probe *)p);
}

/* A short code for a curl failure: what tcp_connect would say where there is one. */
static const char *http_code(CURL *easy, CURLcode rc)
{
  long os_errno = 0;
  switch (rc) {
  case CURLE_OPERATION_TIMEDOUT:
    return "ETIMEDOUT";
  case CURLE_COULDNT_RESOLVE_HOST:
    return "EAI_NONAME";
  case CURLE_COULDNT_CONNECT:
    curl.easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
    return os_errno > 0 ? uv_err_name(uv_translate_sys_error((int)os_errno)) : "ECONNREFUSED";
  default:
    return "ECURL";
  }
}

/* The transfer of `p` is over: cb(status, elapsed) or cb(nil, elapsed, message, CODE). */
static void http_done(http_probe *p, CURLcode rc)
{
  orch_ctx *ctx = p->head.base.ctx;
  lua_State *L = ctx->L;
  lua_Integer elapsed = (lua_Integer)((uv_hrtime() - p->start) / 1000000);
  long status = 0;
  const char *code = NULL;
  curl.easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
  if (rc != CURLE_OK) {
    code = http_code(p->easy, rc);
    if (p->errbuf[0] == '\0')
      strncpy(p->errbuf, curl.easy_strerror(rc), sizeof p->errbuf - 1);
  }
  http_detach(p);
  int base = orch_probe_push_done(&p->head);
  if (base < 0)
    return;
  if (code == NULL) {
    lua_pushinteger(L, (lua_Integer)status);
    lua_pushinteger(L, elapsed);
    orch_call(ctx, 2);
  } else {
    lua_pushnil(L);
    lua_pushinteger(L, elapsed);
    lua_pushstring(L, p->errbuf);
    lua_pushstring(L, code);
    orch_call(ctx, 4);
  }
  lua_settop(L, base);
}

/* Report finished transfers, one at a time: a callback may close another probe, and
 * curl_multi_remove_handle() drops that probe's pending message. */
static void check_done(http_multi *m)
{
  CURLMsg *msg;
  int pending;
  while ((msg = curl.multi_info_read(m->multi, &pending)) != NULL) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    char *priv = NULL;
    CURLcode rc = msg->data.result;
    curl.easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
    if (priv != NULL)
      http_done((http_probe *)(void *)priv, rc);
  }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
  http_sock *s = h->data;
  int flags = 0, running;
  if (s == NULL || s->m == NULL)
    return;
  http_multi *m = s->m;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  curl.multi_socket_action(m->multi, s->fd, flags, &running); /* may close s */
  check_done(m);
}

static void on_multi_timer(uv_timer_t *t)
{
  http_multi *m = t->data;
  int running;
  if (m == NULL)
    return;
  curl.multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(m);
}

/* CURLMOPT_SOCKETFUNCTION: watch `fd` for `what`, or stop watching it. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
  http_multi *m = userp;
  http_sock *s = socketp;
  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    /* curl says so before it closes fd: stopping now (uv_close stops at once) frees the fd
     * number for a new uv_poll_t should curl open another socket with it */
    if (s != NULL) {
      curl.multi_assign(m->multi, fd, NULL);
      sock_close(s);
    }
    return 0;
  }
  if (s == NULL) {
    s = malloc(sizeof *s);
    if (s == NULL)
      return -1;
    if (uv_poll_init_socket(&m->ctx->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->poll.data = s;
    s->m = m;
    s->fd = fd;
    s->prev = NULL;
    s->next = m->socks;
    if (m->socks != NULL)
      m->socks->prev = s;
    m->socks = s;
    curl.multi_assign(m->multi, fd, s);
  }
  int events = 0;
  if (what & CURL_POLL_IN)
    events |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, on_poll);
  return 0;
}

/* CURLMOPT_TIMERFUNCTION: call curl back after timeout_ms (never from inside this callback). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
  http_multi *m = userp;
  (void)multi;
  if (timeout_ms < 0)
    uv_timer_stop(m->timer);
  else
    uv_timer_start(m->timer, on_multi_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

/* Resolve every CURL_FUNCTIONS symbol of `lib` into `curl`; 0, or -1 with dlerror() set. */
static int curl_resolve(void *lib)
{
  void *sym;
  /* memcpy: ISO C has no conversion from an object pointer to a function pointer */
#define CURL_RESOLVE(name)                                                                         \
  if ((sym = dlsym(lib, "curl_" #name)) == NULL)                                                   \
    return -1;                                                                                     \
  memcpy(&curl.name, &sym, sizeof sym);
  CURL_FUNCTIONS(CURL_RESOLVE)
#undef CURL_RESOLVE
  return 0;
}

/* Open libcurl, resolve `curl` and call curl_global_init, once per process (never undone: TLS
 * libraries are not meant to be unloaded). NULL when ready, else why not, in a static buffer.
 * A failure is retried on the next call: libcurl may have been installed meanwhile. */
static const char *curl_load(void)
{
  static char why[512];
  if (curl_loaded)
    return NULL;
  const char *err;
  void *lib = dlopen(ORCH_LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL || curl_resolve(lib) != 0) {
    err = dlerror();
  } else if (curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    err = "curl_global_init failed";
    lib = NULL; /* it may have started its TLS library: stays loaded */
  } else {
    curl_loaded = 1;
    return NULL;
  }
  if (err == NULL)
    err = "cannot load";
  /* dlerror() names the library already; say which one where it does not */
  int named = strstr(err, ORCH_LIBCURL_SONAME) != NULL;
  snprintf(why, sizeof why, "HTTP checks need libcurl: %s%s%s", named ? "" : ORCH_LIBCURL_SONAME,
           named ? "" : ": ", err);
  if (lib != NULL)
    dlclose(lib); /* after snprintf: dlclose may reuse dlerror()'s buffer */
  return why;
}

/* The ctx's multi, created on first use (after curl_load); NULL when out of memory. */
static http_multi *http_multi_get(orch_ctx *ctx)
{
  if (ctx->http != NULL)
    return ctx->http;
  http_multi *m = calloc(1, sizeof *m);
  uv_timer_t *timer = malloc(sizeof *timer);
  CURLM *multi = curl.multi_init();
  if (m == NULL || timer == NULL || multi == NULL) {
    free(m);
    free(timer);
    if (multi != NULL)
      curl.multi_cleanup(multi);
    return NULL;
  }
  uv_timer_init(&ctx->loop, timer);
  timer->data = m;
  uv_unref((uv_handle_t *)timer);
  m->multi = multi;
  m->timer = timer;
  m->ctx = ctx;
  curl.multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl.multi_setopt(multi, CURLMOPT_SOCKETDATA, m);
  curl.multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl.multi_setopt(multi, CURLMOPT_TIMERDATA, m);
  ctx->http = m;
  return m;
}

void orch_http_close(orch_ctx *ctx)
{
  http_multi *m = ctx->http;
  if (m == NULL)
    return;
  curl.multi_cleanup(m->multi); /* may still call on_curl_socket: m stays valid until after */
  while (m->socks != NULL)
    sock_close(m->socks);
  m->timer->data = NULL;
  uv_close((uv_handle_t *)m->timer, on_close_free);
  free(m);
  ctx->http = NULL;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
  http_probe *p = userp;
  (void)data;
  p->bytes += (curl_off_t)(size * nmemb);
  return size * nmemb;
}

/* Configure `easy` for one probe; CURLE_OK or the first failure. */
static CURLcode http_setup(CURL *easy, http_probe *p, const char *url, const http_opts *o)
{
  CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
  if (rc == CURLE_OK)                                                                              \
  rc = curl.easy_setopt(easy, opt, val)
  SET(CURLOPT_URL, url);
  SET(CURLOPT_PRIVATE, (void *)p);
  SET(CURLOPT_ERRORBUFFER, p->errbuf);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, (void *)p);
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_TIMEOUT_MS, (long)o->timeout);
  SET(CURLOPT_FOLLOWLOCATION, o->max_redirects > 0 ? 1L : 0L);
  SET(CURLOPT_MAXREDIRS, (long)o->max_redirects);
  SET(CURLOPT_NOBODY, o->head ? 1L : 0L);
  SET(CURLOPT_SSL_VERIFYPEER, o->insecure ? 0L : 1L);
  SET(CURLOPT_SSL_VERIFYHOST, o->insecure ? 0L : 2L);
  /* A health probe wants a new connection each time (a kept-alive one would hide a service that
   * no longer accepts) and goes straight to the service, not through an http_proxy. */
  SET(CURLOPT_FORBID_REUSE, 1L);
  SET(CURLOPT_FRESH_CONNECT, 1L);
  SET(CURLOPT_PROXY, "");
  SET(CURLOPT_DNS_CACHE_TIMEOUT, orch_http_host_is_literal(url) ? 0L : 60L);
  SET(CURLOPT_USERAGENT, "orch/" ORCH_VERSION);
#if LIBCURL_VERSION_NUM >= 0x075500
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  SET(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
#undef SET
  return rc;
}

/* nil, "http_get <url>: <curl message>", "ECURL"   [-0, +3, m] */
static int http_pushfail(lua_State *L, const char *url, const char *msg)
{
  luaL_pushfail(L);
  lua_pushfstring(L, "http_get %s: %s", url, msg);
  lua_pushliteral(L, "ECURL");
  return 3;
}

/* core.http_get(url, opts, cb) -> probe | fail
 * opts: timeout (ms, required), insecure (false), max_redirects (5; 0: do not follow), method
 * ('GET' or 'HEAD'). cb(status, elapsed_ms) on any HTTP response, or
 * cb(nil, elapsed_ms, message, CODE) with CODE 'ETIMEDOUT', 'ECONNREFUSED', 'EAI_NONAME' or
 * 'ECURL'.   [-0, +(1|3), v] */
static int core_http_get(lua_State *L)
{
  size_t len;
  const char *url = luaL_checklstring(L, 1, &len);
  http_opts o;
  luaL_argcheck(L, strlen(url) == len, 1, "URL contains a NUL byte");
  orch_http_check_opts(L, 2, &o);
  luaL_argcheck(L, o.timeout > 0, 2, "timeout (ms) expected");
  luaL_checktype(L, 3, LUA_TFUNCTION);
  orch_ctx *ctx = orch_ctx_get(L);
  const char *why = curl_load();
  if (why != NULL)
    return http_pushfail(L, url, why);
  http_multi *m = http_multi_get(ctx);
  if (m == NULL)
    return http_pushfail(L, url, "cannot start libcurl");
  CURL *easy = curl.easy_init();
  if (easy == NULL)
    return http_pushfail(L, url, "cannot create a curl handle");
  http_probe *p = (http_probe *)orch_probe_new(L, sizeof *p, 3, http_cancel);
  p->start = uv_hrtime();
  CURLcode rc = http_setup(easy, p, url, &o);
  CURLMcode mrc = rc == CURLE_OK ? curl.multi_add_handle(m->multi, easy) : CURLM_OK;
  if (rc != CURLE_OK || mrc != CURLM_OK) {
    curl.easy_cleanup(easy);
    p->head.cancel = NULL;
    orch_probe_close(L, &p->head);
    return http_pushfail(L, url,
                         rc != CURLE_OK ? curl.easy_strerror(rc) : curl.multi_strerror(mrc));
  }
  p->easy = easy;
  if (m->transfers++ == 0)
    uv_ref((uv_handle_t *)m->timer);
  return 1;
}

static const luaL_Reg funcs[] = {
  { "http_get", core_http_get },
  { NULL, NULL },
};

void orch_probe_http_open(lua_State *L)
{
  luaL_setfuncs(L, funcs, 0);
}
