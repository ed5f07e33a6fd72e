"""
A raw IMAP client for the black-box tests (no test here): bytes in,
responses out, nothing hidden. imaplib is used by the tests too; this one
lets them send malformed input, pipeline, and read responses exactly.

A response is one logical line as bytes: the text of its lines with every
literal {n} followed by its n bytes in place (the CRLF after "{n}" kept),
the final CRLF removed.
"""
import re

from clients import LineConn, b64
from conftest import ALICE, PASSWORDS, T, HOSTNAME

_LITERAL_END = re.compile(rb"\{(\d+)\+?\}$")


class IMAPError(AssertionError):
    pass


class IMAPConn(LineConn):
    def __init__(self, port, *, tls=False, timeout=None, greeting=True,
                 host="127.0.0.1"):
        super().__init__(port, tls=tls,
                         timeout=timeout if timeout is not None else T(20),
                         server_hostname=HOSTNAME, host=host)
        self.n = 0
        self.greeting = self.response() if greeting else None

    # ---------------------------------------------------------- raw IO
    def readbytes(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self):
        """One logical response line, literals inlined."""
        out = b""
        while True:
            line = self.readline()
            out += line
            m = _LITERAL_END.search(line)
            if not m:
                return out
            out += b"\r\n" + self.readbytes(int(m.group(1)))

    def response_or_eof(self):
        try:
            return self.response()
        except (EOFError, ConnectionResetError):
            return None

    # ---------------------------------------------------------- commands
    def tag(self):
        self.n += 1
        return f"a{self.n}"

    def until_tagged(self, tag):
        """Reads responses up to the tagged one: (untagged list, tagged
        response), both bytes."""
        untagged = []
        tagb = tag.encode() + b" "
        while True:
            r = self.response()
            if r.startswith(tagb):
                return untagged, r
            untagged.append(r)

    def cmd(self, text, *literals):
        """Sends `tag text`; each literal (bytes) goes after a "{n}" the
        text must end with, once the server says "+". Returns (untagged,
        tagged) as bytes."""
        tag = self.tag()
        if isinstance(text, str):
            text = text.encode()
        self.send(tag.encode() + b" " + text + b"\r\n")
        for lit in literals:
            r = self.response()
            if not r.startswith(b"+"):
                untagged, tagged = [], r
                if not r.startswith(tag.encode() + b" "):
                    untagged, tagged = self.until_tagged(tag)
                raise IMAPError(f"no continuation: {tagged!r}")
            self.send(lit)
        return self.until_tagged(tag)

    def ok(self, text, *literals):
        """cmd() that must end with OK; returns the untagged responses."""
        untagged, tagged = self.cmd(text, *literals)
        status = tagged.split(b" ", 2)[1] if b" " in tagged else b""
        if status != b"OK":
            raise IMAPError(f"{text!r}: {tagged!r}")
        return untagged

    def status(self, text, *literals):
        """cmd() returning (status word, tagged line, untagged)."""
        untagged, tagged = self.cmd(text, *literals)
        return tagged.split(b" ", 2)[1].decode(), tagged, untagged

    def login(self, user=ALICE, password=None):
        return self.ok(f'LOGIN "{user}" "{password or PASSWORDS[user]}"')

    def starttls(self):
        self.ok("STARTTLS")
        assert self.buf == b"", f"plaintext after STARTTLS OK: {self.buf!r}"
        self._wrap()


# What an index of a version before 6 had and 6 dropped (the quota row,
# kept by triggers): put back by tests that make an older index out of a
# current one, so that the upgrade finds what it would.
INDEX_QUOTA_BEFORE_V6 = (
    "CREATE TABLE quota (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " storage INTEGER NOT NULL, messages INTEGER NOT NULL);"
    "INSERT INTO quota SELECT 1, coalesce(sum(size), 0), count(*)"
    " FROM mailbox_messages;")


def imap(f, user=ALICE, *, tls=True, login=True, service=None):
    """A logged-in session on facteur `f`: over 993 by default."""
    service = service or ("imaps" if tls else "imap")
    c = IMAPConn(f.ports[service], tls=service == "imaps")
    if login:
        c.login(user)
    return c


def parse_fetch(resp):
    """'* 3 FETCH (UID 7 FLAGS (\\Seen) ...)' -> (3, {'UID': b'7', ...})
    with values as raw bytes (lists kept with their parentheses, literals
    as their bytes)."""
    m = re.match(rb"\* (\d+) FETCH \(", resp)
    assert m, resp
    seq = int(m.group(1))
    s = resp[m.end():]
    items = {}
    pos = 0

    def value(pos):
        if s[pos:pos + 1] == b"(":
            depth, i = 0, pos
            while True:
                c = s[i:i + 1]
                if c == b"\"":
                    i += 1
                    while s[i:i + 1] != b"\"":
                        i += 2 if s[i:i + 1] == b"\\" else 1
                elif c == b"{":
                    j = s.index(b"}", i)
                    n = int(s[i + 1:j].rstrip(b"+"))
                    i = j + 2 + n
                    continue
                elif c == b"(":
                    depth += 1
                elif c == b")":
                    depth -= 1
                    if depth == 0:
                        return s[pos:i + 1], i + 1
                i += 1
        if s[pos:pos + 1] == b"{":
            j = s.index(b"}", pos)
            n = int(s[pos + 1:j])
            return s[j + 3:j + 3 + n], j + 3 + n
        if s[pos:pos + 1] == b"\"":
            i = pos + 1
            out = b""
            while s[i:i + 1] != b"\"":
                if s[i:i + 1] == b"\\":
                    i += 1
                out += s[i:i + 1]
                i += 1
            return out, i + 1
        m2 = re.match(rb"[^ )]+", s[pos:])
        return m2.group(0), pos + m2.end()

    while pos < len(s) and s[pos:pos + 1] != b")":
        m2 = re.match(rb"([A-Z0-9.]+(?:\[[^\]]*\])?(?:<\d+>)?) ", s[pos:])
        assert m2, (resp, s[pos:])
        name = m2.group(1).decode()
        pos += m2.end()
        if name == "MODSEQ" or name.startswith("MODSEQ"):
            pass
        v, pos = value(pos)
        items[name] = v
        if s[pos:pos + 1] == b" ":
            pos += 1
    return seq, items
