"""What the loopback test servers (fake_hub.py, fake_s3.py) share: a quiet HTTP/1.1 handler with
a plain reply and a truncated one (the headers promise the whole body, half of it comes, the
connection drops), and a threaded server that writes its port to a file once it listens."""

import os
import socketserver
from http.server import BaseHTTPRequestHandler, HTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body=b"", headers=None, head_only=None):
        """head_only: no body is sent (default: when the request is a HEAD)."""
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not (self.command == "HEAD" if head_only is None else head_only):
            self.wfile.write(body)

    def reply_truncated(self, status, payload, headers):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 2])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(2)


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True


def serve(handler, port_file):
    """Listens on a free loopback port, publishes it in port_file atomically, serves forever."""
    server = Server(("127.0.0.1", 0), handler)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()
