"""
What the raw clients of the black-box tests share (no test here): a TCP
connection to the server, in TLS at once or after STARTTLS/STLS, a receive
buffer, lines cut at CRLF, and the wait for the server to close.
SMTPConn (conftest.py), IMAPConn (test_imap_util.py) and POP3Conn
(test_pop3_util.py) add their protocol's replies on top.

It imports nothing from conftest, which imports it: the caller gives the
timeout (already stretched by T()) and the TLS server name.
"""
import base64
import socket
import ssl


def client_tls_context():
    """TLS 1.2 or later, no certificate check (the test certificate is
    self-signed)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def b64(s):
    """base64 of a str (UTF-8) or bytes, as str."""
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


class LineConn:
    """A connection that speaks in CRLF lines: bytes in, lines out."""

    # A line longer than this fails the test (None: no bound).
    max_line = None
    # A LF without its CR fails the test (else only CRLF ends a line).
    strict_crlf = False

    def __init__(self, port, *, tls, timeout, server_hostname,
                 host="127.0.0.1"):
        self.timeout = timeout
        self.server_hostname = server_hostname
        self.sock = socket.create_connection((host, port),
                                             timeout=self.timeout)
        self.buf = b""
        self.tls = False
        if tls:
            self._wrap()

    def _wrap(self):
        """TLS over the connection (after the STARTTLS reply, or at
        once)."""
        self.sock = client_tls_context().wrap_socket(
            self.sock, server_hostname=self.server_hostname)
        self.tls = True

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("the server closed the connection")
        self.buf += chunk

    def readline(self):
        """One line without its CRLF."""
        while True:
            if self.strict_crlf:
                i = self.buf.find(b"\n")
                if i >= 0:
                    assert i > 0 and self.buf[i - 1:i] == b"\r", \
                        f"bare LF in {self.buf[:i + 1]!r}"
                    i -= 1
            else:
                i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            assert self.max_line is None or len(self.buf) < self.max_line, \
                f"line longer than {self.max_line} bytes"
            self._fill()

    def expect_eof(self, timeout=None):
        """Waits until the server closes; returns what it sent before."""
        self.sock.settimeout(timeout if timeout is not None
                             else self.timeout)
        data, self.buf = self.buf, b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return data
                data += chunk
        except (ConnectionResetError, BrokenPipeError):
            return data
        except socket.timeout:
            raise AssertionError(f"the server did not close; got {data!r}")
        finally:
            self.sock.settimeout(self.timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
