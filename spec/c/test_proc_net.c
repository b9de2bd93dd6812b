/* spec/c/test_proc_net.c: the /proc/net table parser, on inline fixtures and on files. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp; uv.h needs pthread_rwlock_t */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "check.h"
#include "proc_net.h"

#define TCP_HEADER                                                                                 \
  "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "    \
  "inode\n"
#define TCP6_HEADER                                                                                \
  "  sl  local_address                         remote_address                        st "          \
  "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
#define UDP_HEADER                                                                                 \
  "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "   \
  "inode ref pointer drops\n"

/* 127.0.0.1:8080 LISTEN; 10.0.0.2:5432 ESTABLISHED to 10.0.0.3:40000; 127.0.0.1:9000 TIME_WAIT */
static const char TCP[] = TCP_HEADER
    "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 "
    "12345 1 0000000000000000 100 0 0 10 0\n"
    "   1: 0200000A:1538 0300000A:9C40 01 00000000:00000000 00:00000000 00000000   999        0 "
    "23456 1 0000000000000000 20 4 30 10 -1\n"
    "   2: 0100007F:2328 0100007F:A000 06 00000000:00000000 03:00000F9E 00000000     0        0 0 "
    "3 0000000000000000\n";

/* [::]:8080 LISTEN, [::1]:9090 LISTEN, [::1]:7070 ESTABLISHED */
static const char TCP6[] =
    TCP6_HEADER "   0: 00000000000000000000000000000000:1F90 "
                "00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  "
                "1000        0 3456 1 0000000000000000 100 0 0 10 0\n"
                "   1: 00000000000000000000000001000000:2382 "
                "00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  "
                "1000        0 3457 1 0000000000000000 100 0 0 10 0\n"
                "   2: 00000000000000000000000001000000:1B9E "
                "00000000000000000000000001000000:D431 01 00000000:00000000 00:00000000 00000000  "
                "1000        0 3458 1 0000000000000000 20 4 30 10 -1\n";

/* 0.0.0.0:53 unconnected (07), 127.0.0.1:5353 connected (01) */
static const char UDP[] = UDP_HEADER
    "  511: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 "
    "1111 2 0000000000000000 0\n"
    " 1234: 0100007F:14E9 0100007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 "
    "2222 2 0000000000000000 0\n";

static int scan(const char *text, unsigned port, int is_tcp)
{
  return orch_proc_net_scan(text, strlen(text), port, is_tcp);
}

static void tcp_listen_is_found(void)
{
  CHECK_EQ(scan(TCP, 8080, 1), 1);
}

static void tcp_other_states_are_not_listening(void)
{
  CHECK_EQ(scan(TCP, 5432, 1), 0);   /* ESTABLISHED */
  CHECK_EQ(scan(TCP, 9000, 1), 0);   /* TIME_WAIT */
  CHECK_EQ(scan(TCP, 0x9C40, 1), 0); /* a remote port is not a local one */
  /* the same port twice: only the LISTEN row counts, wherever it is */
  CHECK_EQ(scan(TCP_HEADER "0: 0100007F:1F90 0100007F:9C40 01 x\n"
                           "1: 0100007F:1F90 0100007F:9C41 06 x\n",
                8080, 1),
           0);
  CHECK_EQ(scan(TCP_HEADER "0: 0100007F:1F90 0100007F:9C40 01 x\n"
                           "1: 00000000:1F90 00000000:0000 0A x\n",
                8080, 1),
           1);
}

static void udp_any_state_counts(void)
{
  CHECK_EQ(scan(UDP, 53, 0), 1);
  CHECK_EQ(scan(UDP, 5353, 0), 1);
  CHECK_EQ(scan(UDP, 54, 0), 0);
  /* read as UDP, an ESTABLISHED TCP row counts too */
  CHECK_EQ(scan(TCP, 5432, 0), 1);
}

static void ipv6_rows(void)
{
  CHECK_EQ(scan(TCP6, 8080, 1), 1); /* [::] */
  CHECK_EQ(scan(TCP6, 9090, 1), 1); /* [::1] */
  CHECK_EQ(scan(TCP6, 7070, 1), 0); /* ESTABLISHED */
  CHECK_EQ(scan(TCP6, 7070, 0), 1);
  CHECK_EQ(scan(TCP6, 80, 1), 0);
}

static void absent_port(void)
{
  CHECK_EQ(scan(TCP, 80, 1), 0);
  CHECK_EQ(scan(TCP, 65535, 1), 0);
  CHECK_EQ(scan(TCP, 0x1F90 + 0x10000, 1), 0); /* out of range never matches */
}

static void header_only_and_empty(void)
{
  CHECK_EQ(scan(TCP_HEADER, 8080, 1), 0);
  CHECK_EQ(scan("  sl  local_address rem_address   st", 8080, 1), 0); /* no newline */
  CHECK_EQ(scan("", 8080, 1), 0);
  CHECK_EQ(orch_proc_net_scan(NULL, 0, 8080, 1), 0);
  CHECK_EQ(scan(TCP_HEADER "\n   \n", 8080, 1), 0); /* blank lines are not rows */
}

static void garbage_is_malformed(void)
{
  CHECK_EQ(scan(TCP_HEADER "hello world\n", 8080, 1), -1);
  CHECK_EQ(scan(TCP_HEADER "   0: 0100007F:1F90\n", 8080, 1), -1);               /* truncated */
  CHECK_EQ(scan(TCP_HEADER "   0: 0100007F:1F90 00000000:0000\n", 8080, 1), -1); /* no state */
  CHECK_EQ(scan(TCP_HEADER "   0: 0100007G:1F90 00000000:0000 0A\n", 8080, 1), -1);
  CHECK_EQ(scan(TCP_HEADER "   0: 0100007F1F90 00000000:0000 0A\n", 8080, 1), -1);
  CHECK_EQ(scan(TCP_HEADER "   0: 0100007F:11F90 00000000:0000 0A\n", 8080, 1), -1);
  CHECK_EQ(scan(TCP_HEADER "   0: 0100007F: 00000000:0000 0A\n", 8080, 1), -1);
  CHECK_EQ(scan(TCP_HEADER "   0: 100007F:1F90 00000000:0000 0A\n", 8080, 1), -1);
  CHECK_EQ(scan(TCP_HEADER "   x: 0100007F:1F90 00000000:0000 0A\n", 8080, 1), -1);
  CHECK_EQ(scan(TCP_HEADER "   0: 0100007F:1F90 00000000:0000 A0A\n", 8080, 1), -1);
  /* a garbage row among good ones is skipped */
  CHECK_EQ(scan(TCP_HEADER "garbage\n"
                           "   0: 0100007F:1F90 00000000:0000 0A\n",
                8080, 1),
           1);
  CHECK_EQ(scan(TCP_HEADER "garbage\n"
                           "   0: 0100007F:1F91 00000000:0000 0A\n",
                8080, 1),
           0);
}

static void no_trailing_newline(void)
{
  CHECK_EQ(scan(TCP_HEADER "   0: 0100007F:1F90 00000000:0000 0A", 8080, 1), 1);
  CHECK_EQ(scan(TCP_HEADER "   0: 0100007F:1F90 00000000:0000 0", 8080, 1), 0);
  CHECK_EQ(scan(TCP_HEADER "   0: 0100007F:1F90 00000000:0000 0A\r\n", 8080, 1), 1);
}

/* The length bounds the scan: a hit beyond `len`, or a NUL inside, changes nothing. */
static void stops_at_len(void)
{
  size_t cut = strlen(TCP_HEADER) + 20; /* inside the first row's local address */
  CHECK_EQ(orch_proc_net_scan(TCP, cut, 8080, 1), -1);
  /* an exact copy in a heap block of exactly len bytes: valgrind catches any overread */
  for (size_t len = 0; len <= sizeof TCP - 1; len++) {
    char *copy = malloc(len ? len : 1);
    memcpy(copy, TCP, len);
    int r = orch_proc_net_scan(copy, len, 8080, 1);
    CHECK(r >= -1 && r <= 1);
    free(copy);
  }
  static const char with_nul[] = TCP_HEADER "   0: 0100007F:1F90\0000000000:0000 0A\n";
  CHECK_EQ(orch_proc_net_scan(with_nul, sizeof with_nul - 1, 8080, 1), -1);
}

/* Write `text` to dir/name. */
static void put(const char *dir, const char *name, const char *text)
{
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  if (f == NULL)
    return;
  fputs(text, f);
  fclose(f);
}

static void files_in_a_directory(void)
{
  char dir[] = "/tmp/orch-proc-net-XXXXXX";
  int found = -1;
  CHECK(mkdtemp(dir) != NULL);
  CHECK_EQ(orch_proc_net_port_listening(dir, 8080, &found), UV_ENOENT); /* tcp is required */
  put(dir, "tcp", TCP);
  CHECK_EQ(orch_proc_net_port_listening(dir, 8080, &found), 0); /* tcp6, udp, udp6 optional */
  CHECK_EQ(found, 1);
  CHECK_EQ(orch_proc_net_port_listening(dir, 9090, &found), 0);
  CHECK_EQ(found, 0);
  put(dir, "tcp6", TCP6);
  put(dir, "udp", UDP);
  CHECK_EQ(orch_proc_net_port_listening(dir, 9090, &found), 0);
  CHECK_EQ(found, 1);
  CHECK_EQ(orch_proc_net_port_listening(dir, 53, &found), 0);
  CHECK_EQ(found, 1);
  CHECK_EQ(orch_proc_net_port_listening(dir, 5432, &found), 0); /* ESTABLISHED TCP: no */
  CHECK_EQ(found, 0);
  put(dir, "udp6", UDP_HEADER "nonsense\n");
  CHECK_EQ(orch_proc_net_port_listening(dir, 8080, &found), 0); /* short-circuits on tcp */
  CHECK_EQ(found, 1);
  CHECK_EQ(orch_proc_net_port_listening(dir, 1, &found), UV_EINVAL);
  const char *names[] = { "tcp", "tcp6", "udp", "udp6" };
  for (int i = 0; i < 4; i++) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    unlink(path);
  }
  rmdir(dir);
}

/* A table far over 1 MiB with the hit in its last row. */
static void large_file(void)
{
  char dir[] = "/tmp/orch-proc-net-XXXXXX";
  char path[512];
  int found = 0;
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/tcp", dir);
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  if (f == NULL)
    return;
  fputs(TCP_HEADER, f);
  for (int i = 0; i < 30000; i++)
    fprintf(f,
            "%6d: 0200000A:%04X 0300000A:9C40 01 00000000:00000000 00:00000000 00000000  "
            "999        0 %d 1 0000000000000000 20 4 30 10 -1\n",
            i, 1000 + i % 5000, 100000 + i);
  fputs("30000: 00000000:FFFF 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1\n", f);
  long size = ftell(f);
  fclose(f);
  CHECK(size > 2 * 1024 * 1024);
  CHECK_EQ(orch_proc_net_port_listening(dir, 65535, &found), 0);
  CHECK_EQ(found, 1);
  CHECK_EQ(orch_proc_net_port_listening(dir, 1000, &found), 0);
  CHECK_EQ(found, 0);
  unlink(path);
  rmdir(dir);
}

/* The live tables parse (whatever is listening). */
static void live_proc_net(void)
{
  int found = -1;
  CHECK_EQ(orch_proc_net_port_listening("/proc/net", 1, &found), 0);
  CHECK(found == 0 || found == 1);
}

int main(void)
{
  static const check_case cases[] = {
    { "tcp_listen_is_found", tcp_listen_is_found },
    { "tcp_other_states_are_not_listening", tcp_other_states_are_not_listening },
    { "udp_any_state_counts", udp_any_state_counts },
    { "ipv6_rows", ipv6_rows },
    { "absent_port", absent_port },
    { "header_only_and_empty", header_only_and_empty },
    { "garbage_is_malformed", garbage_is_malformed },
    { "no_trailing_newline", no_trailing_newline },
    { "stops_at_len", stops_at_len },
    { "files_in_a_directory", files_in_a_directory },
    { "large_file", large_file },
    { "live_proc_net", live_proc_net },
  };
  return check_run(cases, sizeof cases / sizeof cases[0]);
}
