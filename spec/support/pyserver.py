#!/usr/bin/env python3
"""Throwaway servers for spec/core_probe_spec.lua.

usage: pyserver.py MODE PORTFILE [--family 4|6] [--parent PID] [--certdir DIR]

Binds 127.0.0.1:0 (or [::1]:0 with --family 6), then writes "PORT PID" to PORTFILE (atomically:
written aside, then renamed) and serves MODE:

  listen, silent  accept connections and hold them open without a byte
  full            listen(0) and never accept; the accept queue is pre-filled, so Linux drops
                  any further SYN and a connect() hangs (a deterministic TCP timeout on loopback)
  http, https     GET/HEAD /status/NNN -> NNN; /redirect/N -> 302 to /redirect/N-1 (N > 0);
                  anything else -> 200. https uses DIR/cert.pem and DIR/key.pem
  free            close the socket again and exit: PORT is (very likely) refused

Exits by itself after 30 s, or as soon as --parent PID is gone.
"""
import argparse
import http.server
import os
import socket
import ssl
import sys
import threading
import time

LIFETIME = 30.0


class Handler(http.server.BaseHTTPRequestHandler):
    def _answer(self, body):
        parts = self.path.strip('/').split('/')
        status, headers = 200, {}
        if len(parts) == 2 and parts[0] == 'status' and parts[1].isdigit():
            status = int(parts[1])
        elif len(parts) == 2 and parts[0] == 'redirect' and parts[1].isdigit():
            n = int(parts[1])
            if n > 0:
                status, headers = 302, {'Location': '/redirect/%d' % (n - 1)}
        payload = b'orch test server\n' * 64
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(payload)))
        self.send_header('Connection', 'close')
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def do_GET(self):  # noqa: N802 (http.server naming)
        self._answer(True)

    def do_HEAD(self):  # noqa: N802
        self._answer(False)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many probes at once: no SYN dropped

    def __init__(self, family, certdir):
        self.address_family = family
        self.certdir = certdir
        super().__init__(('::1' if family == socket.AF_INET6 else '127.0.0.1', 0), Handler)

    def get_request(self):
        conn, addr = self.socket.accept()
        if self.certdir:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(os.path.join(self.certdir, 'cert.pem'),
                                os.path.join(self.certdir, 'key.pem'))
            conn.settimeout(5)
            conn = ctx.wrap_socket(conn, server_side=True)  # a failed handshake: OSError
        return conn, addr

    def handle_error(self, request, client_address):
        pass  # a client that rejected our certificate, or hung up: expected


def bind(family, backlog):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind(('::1' if family == socket.AF_INET6 else '127.0.0.1', 0))
    s.listen(backlog)
    return s


def hold(sock):
    held = []
    while True:
        conn, _ = sock.accept()
        held.append(conn)


def publish(portfile, port):
    with open(portfile + '.tmp', 'w') as f:
        f.write('%d %d\n' % (port, os.getpid()))
    os.rename(portfile + '.tmp', portfile)


def alive(pid):
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('mode', choices=['listen', 'silent', 'full', 'http', 'https', 'free'])
    ap.add_argument('portfile')
    ap.add_argument('--family', choices=['4', '6'], default='4')
    ap.add_argument('--parent', type=int)
    ap.add_argument('--certdir')
    a = ap.parse_args()
    family = socket.AF_INET6 if a.family == '6' else socket.AF_INET
    keep = []
    if a.mode == 'free':
        s = bind(family, 1)
        port = s.getsockname()[1]
        s.close()
        publish(a.portfile, port)
        return
    if a.mode in ('http', 'https'):
        srv = Server(family, a.certdir if a.mode == 'https' else None)
        port = srv.server_address[1]
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    elif a.mode == 'full':
        s = bind(family, 0)
        port = s.getsockname()[1]
        addr = s.getsockname()[:2]
        # backlog 0 holds one established connection: fill it (a second one, queued behind,
        # makes sure), so the kernel drops every later SYN
        for _ in range(2):
            c = socket.socket(family, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect(addr)
            except BlockingIOError:
                pass
            keep.append(c)
        time.sleep(0.1)  # let the handshakes of the fillers complete before announcing
        keep.append(s)
    else:
        s = bind(family, 16)
        port = s.getsockname()[1]
        threading.Thread(target=hold, args=(s,), daemon=True).start()
    publish(a.portfile, port)
    deadline = time.monotonic() + LIFETIME
    while time.monotonic() < deadline and alive(a.parent):
        time.sleep(0.1)
    os._exit(0)


if __name__ == '__main__':
    sys.exit(main())
