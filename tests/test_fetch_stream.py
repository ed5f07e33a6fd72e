"""
Messages served from their file a chunk at a time (store_stream.h): IMAP
FETCH BODY[], BODY[TEXT], RFC822, partials, and POP3 RETR/TOP of messages
larger than the server's chunk (64 KB) and read window (256 KB), byte for
byte; BINARY[part] and BINARY.SIZE decoded from the file as they are sent
(base64, quoted-printable), equal to Python's own decoding; messages stored with bare LF line ends sent with CRLF (literal
lengths, partial offsets and RETR's octet count in the bytes sent); server
memory bounded while clients do not read; a client that vanishes in the
middle of a literal; a message expunged (its file removed) while it is
being sent.
"""
import base64
import contextlib
import email
import os
import random
import re
import socket
import time
from pathlib import Path

from conftest import ALICE, T, sanitized, wait_until
from test_imap_util import imap, parse_fetch
from test_pop3_mail import wait_idle
from test_pop3_util import pop3, stuffed

CHUNK = 64 * 1024
WINDOW = 256 * 1024
PLAIN = {"auth_plaintext_loopback": "yes"}


def crlf(data):
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def big_message(size, *, bare_lf=False, subject="big"):
    """A single-part message of about `size` bytes whose lines start with
    dots now and then; with `bare_lf`, one line in three ends with a bare
    LF, and bare LFs sit on the chunk and window boundaries."""
    head = (f"From: <a@remote.test>\r\nTo: <{ALICE}>\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{subject}@remote.test>"
            f"\r\n\r\n").encode()
    lines = []
    n = len(head)
    i = 0
    while n < size:
        end = b"\n" if bare_lf and i % 3 == 0 else b"\r\n"
        ln = (b"." if i % 17 == 0 else b"") + \
            f"line {i:08d} ".encode() + b"x" * 50 + end
        lines.append(ln)
        n += len(ln)
        i += 1
    msg = bytearray(head + b"".join(lines))
    if bare_lf:
        for b in (CHUNK, 2 * CHUNK, WINDOW, 2 * WINDOW):
            if b + 1 < len(msg):
                msg[b - 1:b + 1] = b"\n\n"
    return bytes(msg)


def append(c, msg, mailbox="INBOX"):
    c.ok(f"APPEND {mailbox} {{{len(msg)}}}", msg + b"\r\n")


def fetch1(c, what, seq=1):
    """The items of `FETCH seq what` (the only FETCH response)."""
    untagged = c.ok(f"FETCH {seq} {what}")
    fetches = [parse_fetch(r)[1] for r in untagged
               if re.match(rb"\* \d+ FETCH", r)]
    assert len(fetches) == 1, untagged
    return fetches[0]


def rss_kb(f):
    with open(f"/proc/{f.proc.pid}/status") as st:
        for ln in st:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def open_fds(f):
    return len(os.listdir(f"/proc/{f.proc.pid}/fd"))


def blobs(f, account=ALICE):
    return sorted(p.name for p in
                  (Path(f.data_dir) / "mail" / account / "blobs").iterdir())


def read_literal_slowly(c, n, piece=65536, pause=0.0):
    """Reads n bytes a piece at a time (the client's pace)."""
    out = bytearray(c.buf[:n])
    c.buf = c.buf[n:] if len(c.buf) >= n else b""
    while len(out) < n:
        chunk = c.sock.recv(min(piece, n - len(out)))
        if not chunk:
            raise EOFError("closed in the middle of the literal")
        out += chunk
        if pause:
            time.sleep(pause)
    return bytes(out)


@contextlib.contextmanager
def stalled_readers(f, command, what, settle=2):
    """10 sessions (plain, INBOX examined) send `command` and read nothing:
    the server's memory grows by their output buffers, not by what they
    asked for (no bound under ASan, whose freed buffers stay in
    quarantine). Yields the sessions for what follows; closes them."""
    sessions = []
    try:
        for _ in range(10):
            c = imap(f, tls=False)
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            c.ok("EXAMINE INBOX")
            sessions.append(c)
        wait_idle(f)
        before = rss_kb(f)
        for c in sessions:
            c.send(command)
        time.sleep(T(settle))
        grown = rss_kb(f) - before
        print(f"server RSS before={before} KB after={before + grown} KB "
              f"grown={grown} KB for 10 sessions on {what}")
        if not sanitized():
            assert grown < 20 * 1024, \
                f"server RSS grew by {grown} KB while 10 clients read nothing"
        yield sessions
    finally:
        for c in sessions:
            c.close()


def start_fetch(c, what="BODY.PEEK[]", seq=1):
    """Sends a FETCH and reads up to the literal's length: returns it."""
    c.send(f"s1 FETCH {seq} {what}\r\n")
    line = c.readline()
    m = re.match(rb"\* \d+ FETCH \(.*\{(\d+)\}$", line)
    assert m, line
    return int(m.group(1))


# ------------------------------------------------------------ round trips

def test_imap_big_message_round_trips(make_facteur):
    """A 5 MB message: BODY[], RFC822, BODY[TEXT], HEADER, [1] and
    partials across chunk and window boundaries, byte for byte."""
    f = make_facteur()
    msg = big_message(5 * 1024 * 1024)
    header, body = msg.split(b"\r\n\r\n", 1)
    header += b"\r\n\r\n"
    with imap(f) as c:
        append(c, msg)
        c.ok("SELECT INBOX")
        it = fetch1(c, "(RFC822.SIZE BODY.PEEK[])")
        assert it["RFC822.SIZE"] == str(len(msg)).encode()
        assert it["BODY[]"] == msg
        assert fetch1(c, "BODY.PEEK[TEXT]")["BODY[TEXT]"] == body
        assert fetch1(c, "BODY.PEEK[HEADER]")["BODY[HEADER]"] == header
        assert fetch1(c, "BODY.PEEK[1]")["BODY[1]"] == body
        for off, n in ((0, 1), (CHUNK - 3, 10), (CHUNK, CHUNK),
                       (WINDOW - 7, 3 * CHUNK + 11), (3 * WINDOW + 1, 5),
                       (len(msg) - 5, 100), (len(msg), 10),
                       (len(msg) + 10, 10), (1, 4294967295)):
            it = fetch1(c, f"BODY.PEEK[]<{off}.{n}>")
            assert it[f"BODY[]<{off}>"] == msg[off:off + n], (off, n)
            it = fetch1(c, f"BODY.PEEK[TEXT]<{off}.{n}>")
            assert it[f"BODY[TEXT]<{off}>"] == body[off:off + n], (off, n)
        # several streamed items in one response, with others between
        it = fetch1(c, f"(BODY.PEEK[TEXT] UID BODY.PEEK[]<{WINDOW}.100> "
                       "BODY.PEEK[HEADER.FIELDS (Subject)] FLAGS)")
        assert it["BODY[TEXT]"] == body
        assert it["UID"] == b"1"
        assert it[f"BODY[]<{WINDOW}>"] == msg[WINDOW:WINDOW + 100]
        assert it["BODY[HEADER.FIELDS (SUBJECT)]"] == \
            b"Subject: big\r\n\r\n"
        assert b"\\Seen" not in it["FLAGS"]
        # RFC822 sets \Seen: FLAGS comes along
        it = fetch1(c, "RFC822")
        assert it["RFC822"] == msg
        assert b"\\Seen" in it["FLAGS"]
        assert fetch1(c, "RFC822.TEXT")["RFC822.TEXT"] == body
        # two messages in one command
        append(c, msg[:3 * CHUNK] + b"\r\n")
        c.ok("NOOP")
        untagged = c.ok("FETCH 1:2 BODY.PEEK[]")
        got = dict(parse_fetch(r) for r in untagged
                   if re.match(rb"\* \d+ FETCH", r))
        assert got[1]["BODY[]"] == msg
        assert got[2]["BODY[]"] == msg[:3 * CHUNK] + b"\r\n"


def test_pop3_big_message_round_trips(make_facteur):
    """RETR and TOP of a 5 MB message (APPENDed to INBOX)."""
    f = make_facteur()
    msg = big_message(5 * 1024 * 1024)
    with imap(f) as c:
        append(c, msg)
    with pop3(f) as c:
        assert c.ok("LIST 1") == f"+OK 1 {len(msg)}".encode()
        assert c.ok("RETR 1") == f"+OK {len(msg)} octets".encode()
        assert c.raw_multi() == stuffed(msg)
        c.ok("TOP 1 3")
        head, body = msg.split(b"\r\n\r\n", 1)
        want = head + b"\r\n\r\n" + b"".join(
            body.split(b"\r\n")[i] + b"\r\n" for i in range(3))
        assert c.raw_multi() == stuffed(want)
        c.ok("QUIT")


def test_bare_lf_message_sent_with_crlf(make_facteur):
    """A message APPENDed with bare LFs is stored as given and sent with
    CRLF: IMAP literal lengths and partial offsets count the bytes sent (an
    offset may fall between an added CR and its LF); POP3 RETR announces
    what it sends."""
    f = make_facteur()
    msg = big_message(WINDOW * 2 + 5000, bare_lf=True)
    wire = crlf(msg)
    assert len(wire) > len(msg)
    head_end = msg.index(b"\r\n\r\n") + 4
    with imap(f) as c:
        append(c, msg)
        stored = f.wait_messages(ALICE, 1)[0][1]
        assert stored == msg  # kept as given
        c.ok("SELECT INBOX")
        assert fetch1(c, "BODY.PEEK[]")["BODY[]"] == wire
        assert fetch1(c, "BODY.PEEK[TEXT]")["BODY[TEXT]"] == \
            crlf(msg[head_end:])
        assert fetch1(c, "BODY.PEEK[1]")["BODY[1]"] == crlf(msg[head_end:])
        assert fetch1(c, "RFC822.HEADER")["RFC822.HEADER"] == \
            msg[:head_end]
        # offsets right after an added CR, near the boundaries
        cut = [i for i in range(1, len(wire))
               if wire[i - 1:i + 1] == b"\r\n" and msg.count(b"\n") and
               (i % CHUNK < 100 or i % WINDOW < 100)][:6]
        for off in cut + [CHUNK - 1, WINDOW - 2, WINDOW, len(wire) - 1]:
            for n in (1, 2, CHUNK + 3):
                it = fetch1(c, f"BODY.PEEK[]<{off}.{n}>")
                assert it[f"BODY[]<{off}>"] == wire[off:off + n], (off, n)
    with pop3(f) as c:
        assert c.ok("RETR 1") == f"+OK {len(wire)} octets".encode()
        raw = c.raw_multi()
        assert raw == stuffed(msg)
        assert b"\n" not in raw.replace(b"\r\n", b"")
        c.ok("QUIT")


def multipart_message(attachment_size, *, bare_lf=False):
    """multipart/mixed: a text part, a big base64 attachment, a
    message/rfc822 part with its own multipart body."""
    nl = b"\n" if bare_lf else b"\r\n"
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJz" \
        b"dHV2d3h5ejAxMjM0"
    att = nl.join([line] * (attachment_size // (len(line) + 2))) + nl
    inner = nl.join([
        b"From: <inner@remote.test>", b"Subject: inner one",
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/alternative; boundary="in"', b"",
        b"--in", b"Content-Type: text/plain", b"", b"inner plain", b".dot",
        b"--in", b"Content-Type: text/html", b"", b"<p>inner</p>",
        b"--in--", b""])
    return nl.join([
        b"From: <a@remote.test>", f"To: <{ALICE}>".encode(),
        b"Subject: parts", b"MIME-Version: 1.0",
        b'Content-Type: multipart/mixed; boundary="b1"', b"",
        b"preamble", b"--b1", b"Content-Type: text/plain", b"",
        b"first part", b".leading dot", b"--b1",
        b"Content-Type: application/octet-stream",
        b"Content-Transfer-Encoding: base64", b"", att.rstrip(nl),
        b"--b1", b"Content-Type: message/rfc822", b"", inner,
        b"--b1--", b"epilogue", b""])


def test_imap_parts_streamed(make_facteur):
    """Sections with a part number come from the MIME tree of the file and
    are streamed: each alone is what it is among all the others in one
    command, for CRLF and bare-LF messages."""
    f = make_facteur()
    sections = ["1", "1.MIME", "2", "2.MIME", "3", "3.MIME", "3.HEADER",
                "3.TEXT", "3.1", "3.1.MIME", "3.2",
                "3.HEADER.FIELDS (Subject)",
                "3.HEADER.FIELDS.NOT (Subject From)", "1.HEADER", "1.TEXT",
                "2.HEADER.FIELDS (X)", "4", "3.3", "2.1"]
    with imap(f) as c:
        append(c, multipart_message(3 * 1024 * 1024))
        append(c, multipart_message(600 * 1024, bare_lf=True))
        c.ok("SELECT INBOX")
        for seq in (1, 2):
            ref = fetch1(c, "(BINARY.SIZE[1] " + " ".join(
                f"BODY.PEEK[{x}]" for x in sections) + ")", seq)
            for x in sections:
                name = f"BODY[{x.upper()}]"
                got = fetch1(c, f"BODY.PEEK[{x}]", seq)
                assert got.get(name) == ref.get(name), (seq, x)
                assert b"\n" not in (got.get(name) or b"").replace(
                    b"\r\n", b""), (seq, x)
            whole = fetch1(c, "BODY.PEEK[]", seq)["BODY[]"]
            att = ref["BODY[2]"]
            assert len(att) > 500 * 1024 and att in whole
            assert ref["BODY[1]"] == b"first part\r\n.leading dot"
            assert ref["BODY[3.1]"] == b"inner plain\r\n.dot"
            assert ref["BODY[3.HEADER.FIELDS (SUBJECT)]"] == \
                b"Subject: inner one\r\n\r\n"
            for off, n in ((0, 10), (CHUNK - 5, 10), (WINDOW + 3, CHUNK),
                           (len(att) - 3, 10), (len(att) + 1, 10)):
                got = fetch1(c, f"BODY.PEEK[2]<{off}.{n}>", seq)
                assert got[f"BODY[2]<{off}>"] == att[off:off + n]
        # NIL for parts that are not there
        it = fetch1(c, "BODY.PEEK[9]")
        assert it["BODY[9]"] == b"NIL"


# ------------------------------------------------------------ BINARY

def wrap76(data, nl=b"\r\n"):
    return nl.join(data[i:i + 76] for i in range(0, len(data), 76))


def qp_text(n, seed=5):
    """About n bytes of quoted-printable: escapes (=3D, =00, 8-bit bytes),
    soft line breaks, blanks before line ends."""
    rnd = random.Random(seed)
    words = [b"caf=C3=A9", b"=3D", b"x=00y", b"plain", b"tab\there",
             b"=E9t=E9", b"soft=\r\nbreak", b"line  \r\n"]
    out = bytearray()
    while len(out) < n:
        out += rnd.choice(words) + b" "
        if rnd.random() < 0.1:
            out += b"=\r\n"
    return bytes(out)


def binary_message(raw, qp, *, bare_lf=False):
    """multipart/mixed: text, base64 of `raw`, quoted-printable `qp`,
    8bit text, an unknown encoding, a nested multipart."""
    nl = b"\n" if bare_lf else b"\r\n"
    b64 = wrap76(base64.b64encode(raw), nl)
    qp = qp.replace(b"\r\n", nl)
    return nl.join([
        b"From: <a@remote.test>", f"To: <{ALICE}>".encode(),
        b"Subject: binary", b"MIME-Version: 1.0",
        b'Content-Type: multipart/mixed; boundary="b1"', b"",
        b"--b1", b"Content-Type: text/plain", b"", b"first part",
        b"--b1", b"Content-Type: application/octet-stream",
        b"Content-Transfer-Encoding: base64", b"", b64,
        b"--b1", b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: Quoted-Printable", b"", qp,
        b"--b1", b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: 8bit", b"", "été".encode(),
        b"--b1", b"Content-Type: application/octet-stream",
        b"Content-Transfer-Encoding: x-uuencode", b"", b"begin 644 x",
        b"--b1", b'Content-Type: multipart/alternative; boundary="b2"', b"",
        b"--b2", b"Content-Type: text/plain", b"", b"alt", b"--b2--",
        b"--b1--", b""])


_LIT = re.compile(rb"~?\{(\d+)\}\r\n")


def unliteral8(resp):
    """A response with its literal8s ("~{n}") written as literals, for
    parse_fetch(); the literals' bytes are skipped, not searched."""
    out = bytearray()
    i = 0
    while True:
        m = _LIT.search(resp, i)
        if not m:
            return bytes(out + resp[i:])
        n = int(m.group(1))
        out += resp[i:m.start()] + b"{%d}\r\n" % n
        out += resp[m.end():m.end() + n]
        i = m.end() + n


def fetch1b(c, what, seq=1):
    """fetch1() for responses that may hold literal8."""
    untagged = c.ok(f"FETCH {seq} {what}")
    fetches = [parse_fetch(unliteral8(r))[1] for r in untagged
               if re.match(rb"\* \d+ FETCH", r)]
    assert len(fetches) == 1, untagged
    return fetches[0]


def python_parts(msg):
    """Each part's content as Python's email package decodes it, from the
    wire form (what BINARY decodes)."""
    m = email.message_from_bytes(crlf(msg))
    return [p.get_payload(decode=True) for p in m.get_payload()[:4]]


def test_binary_decoded_from_file(make_facteur):
    """BINARY[n], its partials and BINARY.SIZE for base64 (3 MB, past
    the read window and many chunks), quoted-printable and 8bit parts, in
    CRLF and bare-LF messages: byte for byte what Python decodes; literal8
    when a NUL is there; NIL and NO [UNKNOWN-CTE] for an unknown encoding
    or a multipart; BINARY[] is the message as it is."""
    f = make_facteur()
    raw = random.Random(1).randbytes(3 * 1024 * 1024 + 7)
    qp = qp_text(600 * 1024)
    msgs = [binary_message(raw, qp), binary_message(raw, qp, bare_lf=True)]
    with imap(f) as c:
        for m in msgs:
            append(c, m)
        c.ok("EXAMINE INBOX")
        for seq, m in enumerate(msgs, 1):
            parts = python_parts(m)
            assert parts[1] == raw
            for n, want in enumerate(parts, 1):
                it = fetch1b(c, f"(BINARY.SIZE[{n}] BINARY.PEEK[{n}])", seq)
                assert it[f"BINARY[{n}]"] == want, (seq, n)
                assert it[f"BINARY.SIZE[{n}]"] == str(len(want)).encode()
            dec = parts[1]
            for off, n in ((0, 1), (CHUNK - 3, 10), (WINDOW - 1, 3 * CHUNK),
                           (len(dec) - 5, 100), (len(dec), 10),
                           (len(dec) + 9, 10), (17, 4294967295)):
                it = fetch1b(c, f"BINARY.PEEK[2]<{off}.{n}>", seq)
                assert it[f"BINARY[2]<{off}>"] == dec[off:off + n], (off, n)
            it = fetch1b(c, "(BINARY.PEEK[] BINARY.SIZE[])", seq)
            assert it["BINARY[]"] == crlf(m)
            assert it["BINARY.SIZE[]"] == str(len(crlf(m))).encode()
        # literal8 only when the bytes sent hold a NUL
        c.send("n1 FETCH 1 (BINARY.PEEK[2]<0.100000>)\r\n")
        line = c.readline()
        assert line.endswith(b"BINARY[2]<0> ~{100000}"), line
        assert read_literal_slowly(c, 100000) == raw[:100000]
        assert c.readline() == b")"
        assert c.readline().startswith(b"n1 OK")
        text = parts[2]
        nul = text.index(b"\x00")
        c.send(f"n2 FETCH 1 BINARY.PEEK[3]<0.{nul}>\r\n")
        assert c.readline().endswith(f"BINARY[3]<0> {{{nul}}}".encode())
        assert read_literal_slowly(c, nul) == text[:nul]
        assert c.readline() == b")"
        assert c.readline().startswith(b"n2 OK")
        # unknown encodings and multiparts: NIL, then NO [UNKNOWN-CTE]
        for n in (5, 6):
            u, tagged = c.cmd(f"FETCH 1 (BINARY.PEEK[{n}] UID)")
            assert u == [f"* 1 FETCH (BINARY[{n}] NIL UID 1)".encode()], u
            assert b"NO [UNKNOWN-CTE]" in tagged, tagged
        u, tagged = c.cmd("FETCH 1 BINARY.PEEK[9]")
        assert u == [b"* 1 FETCH (BINARY[9] NIL)"] and b" OK " in tagged


def test_slow_binary_readers_keep_memory_bounded(make_facteur):
    """A 20 MB base64 attachment fetched with BINARY.PEEK[2] by 10
    sessions that do not read: the server decodes from the file as the
    output drains, so its memory grows by the output buffers, not by the
    message and its decoded form per session; then one reads slowly and
    gets every byte, as Python decodes it."""
    f = make_facteur(config=PLAIN)
    raw = random.Random(2).randbytes(15 * 1024 * 1024)
    msg = binary_message(raw, b"short")
    assert len(msg) > 20 * 1000 * 1000
    with imap(f, tls=False) as c:
        append(c, msg)
        c.ok("EXAMINE INBOX")
        assert fetch1b(c, "BINARY.SIZE[2]")["BINARY.SIZE[2]"] == \
            str(len(raw)).encode()
    # decoded in memory, each session would hold 20 MB of message and
    # 15 MB decoded
    with stalled_readers(f, "s1 FETCH 1 BINARY.PEEK[2]\r\n", "BINARY[2]",
                         settle=3) as sessions:
        c = sessions[0]
        line = c.readline()
        m = re.match(rb"\* 1 FETCH \(BINARY\[2\] ~\{(\d+)\}$", line)
        assert m, line
        n = int(m.group(1))
        assert n == len(raw)
        first = read_literal_slowly(c, 2 * 1024 * 1024, pause=0.002)
        rest = read_literal_slowly(c, n - len(first))
        assert first + rest == raw == python_parts(msg)[1]
        assert c.readline() == b")"
        assert c.readline().startswith(b"s1 OK")


# ------------------------------------------------------------ memory

def test_slow_readers_keep_memory_bounded(make_facteur):
    """10 sessions FETCH a 20 MB message and do not read: the server's
    memory grows by their output buffers, not by 10 x 20 MB; then one
    reads slowly and gets every byte."""
    f = make_facteur(config=PLAIN)
    msg = big_message(20 * 1024 * 1024)
    with imap(f, tls=False) as c:
        append(c, msg)
    # loaded whole, 10 x 20 MB would show
    with stalled_readers(f, "s1 FETCH 1 BODY.PEEK[]\r\n",
                         "BODY[]") as sessions:
        # one slow reader: 64 KB at a time, pausing at first
        c = sessions[0]
        line = c.readline()
        n = int(re.search(rb"\{(\d+)\}$", line).group(1))
        assert n == len(msg)
        first = read_literal_slowly(c, 2 * 1024 * 1024, pause=0.002)
        rest = read_literal_slowly(c, n - len(first))
        assert first + rest == msg
        assert c.readline() == b")"
        assert c.readline().startswith(b"s1 OK")


def test_slow_part_readers_keep_memory_bounded(make_facteur):
    """The same for a part (BODY[2], a 12 MB attachment): the file is
    parsed where it lies, the part streamed."""
    f = make_facteur(config=PLAIN)
    msg = multipart_message(12 * 1024 * 1024)
    with imap(f, tls=False) as c:
        append(c, msg)
        c.ok("EXAMINE INBOX")
        att = fetch1(c, "BODY.PEEK[2]")["BODY[2]"]
    assert len(att) > 12_000_000
    with stalled_readers(f, "s1 FETCH 1 BODY.PEEK[2]\r\n",
                         "BODY[2]") as sessions:
        c = sessions[-1]
        line = c.readline()
        n = int(re.search(rb"\{(\d+)\}$", line).group(1))
        assert read_literal_slowly(c, n) == att


def test_client_vanishes_mid_stream(make_facteur):
    """A client that goes away in the middle of a 20 MB literal: the
    session ends, its file descriptor is closed, the server goes on."""
    f = make_facteur(config=PLAIN)
    msg = big_message(20 * 1024 * 1024)
    with imap(f, tls=False) as c:
        append(c, msg)
    with imap(f, tls=False) as c:
        c.ok("EXAMINE INBOX")
        base = open_fds(f)
    for how in ("close", "reset"):
        c = imap(f, tls=False)
        c.ok("EXAMINE INBOX")
        n = start_fetch(c)
        assert n == len(msg)
        read_literal_slowly(c, 3 * WINDOW)
        if how == "reset":
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                              b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
        wait_until(lambda: open_fds(f) <= base, T(10),
                   "the session's descriptors to close")
    with imap(f, tls=False) as c:
        c.ok("EXAMINE INBOX")
        assert fetch1(c, "BODY.PEEK[]<1000000.100>")["BODY[]<1000000>"] == \
            msg[1000000:1000100]


def test_expunged_while_streaming(make_facteur):
    """Another session expunges the message and its file is removed while
    IMAP FETCH and POP3 RETR are sending it: both finish with every
    byte."""
    f = make_facteur(config=PLAIN)
    msg = big_message(8 * 1024 * 1024)
    with imap(f, tls=False) as c:
        append(c, msg)
        append(c, msg.replace(b"Subject: big", b"Subject: two"))
    files = blobs(f)
    assert len(files) == 2
    reader = imap(f, tls=False)
    reader.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    reader.ok("EXAMINE INBOX")
    popper = pop3(f)
    popper.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    try:
        n = start_fetch(reader)
        assert n == len(msg)
        assert popper.ok("RETR 2") == f"+OK {len(msg)} octets".encode()
        with imap(f, tls=False) as c:
            c.ok("SELECT INBOX")
            c.ok("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
            c.ok("EXPUNGE")
        wait_until(lambda: blobs(f) == [], T(10), "the files removed")
        got = read_literal_slowly(reader, n)
        assert got == msg
        assert reader.readline() == b")"
        assert reader.readline().startswith(b"s1 OK")
        raw = popper.raw_multi()
        assert raw == stuffed(msg.replace(b"Subject: big", b"Subject: two"))
        # the next FETCH finds the message gone
        st, tagged, _ = reader.status("FETCH 1 BODY.PEEK[]")
        assert st in ("NO", "OK"), tagged
    finally:
        reader.close()
        popper.close()


def test_shutdown_waits_for_the_literal(make_facteur):
    """SIGTERM while a FETCH is paused in the middle of its literal: the
    BYE is not written into the literal; the response ends whole, then
    the tagged OK, then BYE."""
    f = make_facteur(config=PLAIN)
    msg = big_message(8 * 1024 * 1024)
    with imap(f, tls=False) as c:
        append(c, msg)
    c = imap(f, tls=False)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    try:
        c.ok("EXAMINE INBOX")
        n = start_fetch(c)
        assert n == len(msg)
        got = read_literal_slowly(c, WINDOW)
        f.proc.send_signal(15)
        wait_until(lambda: "event=shutdown " in f.log(), T(10),
                   "the shutdown to begin")
        time.sleep(0.3)
        got += read_literal_slowly(c, n - WINDOW)
        assert got == msg
        assert c.readline() == b")"
        assert c.readline().startswith(b"s1 OK")
        assert c.readline().startswith(b"* BYE")
    finally:
        c.close()
    f.proc.wait(timeout=T(20))
    f.exits.append((f.proc.returncode, "SIGTERM"))
    assert f.proc.returncode == 0
