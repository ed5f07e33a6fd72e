"""
A raw POP3 client for the black-box tests (no test here): bytes in,
replies out, nothing hidden. poplib is used by the tests too; this one lets
them pipeline, send malformed input and read the exact bytes of a
multi-line response.
"""
import re
import sqlite3
from pathlib import Path

from clients import LineConn, b64
from conftest import (ALICE, HOSTNAME, PASSWORDS, T, expect_queued,
                      send_message)


class POP3Conn(LineConn):
    max_line = 1 << 22
    strict_crlf = True

    def __init__(self, port, *, tls=False, timeout=None, greeting=True,
                 host="127.0.0.1"):
        super().__init__(port, tls=tls,
                         timeout=timeout if timeout is not None else T(20),
                         server_hostname=HOSTNAME, host=host)
        self.greeting = self.line() if greeting else None
        if greeting:
            assert self.greeting.startswith(b"+OK"), self.greeting

    def line(self):
        """One line without its CRLF; every line must end with CRLF."""
        return self.readline()

    def raw_multi(self):
        """The raw bytes of a multi-line body up to and including the
        terminating ".\\r\\n" (still byte-stuffed)."""
        start = 0
        while True:
            if self.buf.startswith(b".\r\n"):
                out, self.buf = self.buf[:3], self.buf[3:]
                return out
            i = self.buf.find(b"\r\n.\r\n", start)
            if i >= 0:
                out, self.buf = self.buf[:i + 5], self.buf[i + 5:]
                return out
            start = max(0, len(self.buf) - 4)
            self._fill()

    def multi(self):
        """The lines of a multi-line body, un-stuffed, without the
        terminator."""
        lines = []
        while True:
            ln = self.line()
            if ln == b".":
                return lines
            if ln.startswith(b"."):
                ln = ln[1:]
            lines.append(ln)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.line()

    def ok(self, line):
        r = self.cmd(line)
        assert r.startswith(b"+OK"), f"{line!r}: expected +OK, got {r!r}"
        return r

    def err(self, line, code=None):
        r = self.cmd(line)
        assert r.startswith(b"-ERR"), f"{line!r}: expected -ERR, got {r!r}"
        if code is not None:
            assert r.startswith(f"-ERR [{code}]".encode()), \
                f"{line!r}: expected -ERR [{code}], got {r!r}"
        return r

    def capa(self):
        self.ok("CAPA")
        return [ln.decode() for ln in self.multi()]

    def stls(self):
        r = self.cmd("STLS")
        assert r.startswith(b"+OK"), r
        assert self.buf == b"", f"bytes after the +OK of STLS: {self.buf!r}"
        self._wrap()

    def login(self, user=ALICE, password=None):
        self.ok(f"USER {user}")
        return self.ok(f"PASS {password or PASSWORDS[user]}")



def pop3(f, user=ALICE, *, tls=True, login=True):
    """A session on pop3s (tls) or on the plain port (then the server must
    allow plaintext on loopback), logged in as `user`."""
    c = POP3Conn(f.ports["pop3s" if tls else "pop3"], tls=tls)
    if login:
        c.login(user)
    return c


def deliver(f, messages, rcpt=ALICE):
    """Sends each message (bytes) to `rcpt` over port 25, in one session;
    returns the stored copies as the store has them."""
    with f.smtp() as c:
        c.ehlo()
        for m in messages:
            expect_queued(send_message(c, "sender@remote.test", rcpt, m))
    return f.wait_messages(rcpt, len(messages))


def stuffed(data):
    """What a POP3 server sends for a stored message: CRLF line ends,
    byte-stuffing, the terminator."""
    data = re.sub(rb"(?<!\r)\n", b"\r\n", data)
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return re.sub(rb"(?m)^\.", b"..", data) + b".\r\n"


def index_rows(f, account=ALICE, name="INBOX"):
    """(uidvalidity, [(uid, flags)]) of a mailbox, from index.db."""
    path = Path(f.data_dir) / "mail" / account / "index.db"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        mb_id, uidvalidity = db.execute(
            "SELECT id, uidvalidity FROM mailboxes WHERE name = ?",
            (name,)).fetchone()
        rows = db.execute(
            "SELECT uid, flags FROM mailbox_messages WHERE mailbox_id = ?"
            " ORDER BY uid", (mb_id,)).fetchall()
    finally:
        db.close()
    return uidvalidity, rows


SEEN = 0x01  # STORE_FLAG_SEEN
