/* spec/c/test_http_opts.c: which probe URLs skip libcurl's DNS cache (probe_http_opts.c). */
#include "check.h"
#include "probe_http_opts.h"

static void ip_literals(void)
{
  CHECK(orch_http_host_is_literal("http://127.0.0.1:8080/health"));
  CHECK(orch_http_host_is_literal("http://10.0.0.2/"));
  CHECK(orch_http_host_is_literal("https://[::1]:8443/x"));
  CHECK(orch_http_host_is_literal("http://127.0.0.1"));
  CHECK(orch_http_host_is_literal("http://user:pw@127.0.0.1:80/"));
}

static void localhost_any_case(void)
{
  CHECK(orch_http_host_is_literal("http://localhost:3000/"));
  CHECK(orch_http_host_is_literal("http://LocalHost/"));
}

static void names_are_looked_up(void)
{
  CHECK(!orch_http_host_is_literal("http://db:5432/"));
  CHECK(!orch_http_host_is_literal("http://localhost.example/"));
  CHECK(!orch_http_host_is_literal("http://127.0.0.1.nip.io/"));
  CHECK(!orch_http_host_is_literal("http://example.com/?ip=127.0.0.1"));
  CHECK(!orch_http_host_is_literal("http://user@db/127.0.0.1"));
  CHECK(!orch_http_host_is_literal("127.0.0.1:80"));
  CHECK(!orch_http_host_is_literal("http:///"));
}

int main(void)
{
  static const check_case cases[] = {
    { "ip_literals", ip_literals },
    { "localhost_any_case", localhost_any_case },
    { "names_are_looked_up", names_are_looked_up },
  };
  return check_run(cases, sizeof cases / sizeof cases[0]);
}
