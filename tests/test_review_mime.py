"""
Review of the INTERNALDATE zone, BINARY streaming and BINARYMIME
conversion work: edge cases as black-box tests (APPEND date-times at the
extremes of the zones and of time, message files whose metadata line is
long, BINARY of message/rfc822 and nested parts).
"""
import base64
import re
from pathlib import Path

from conftest import ALICE
from test_imap_util import imap, parse_fetch


def utf7(name):
    """IMAP modified UTF-7 (RFC 3501 §5.1.3) of `name`."""
    out, run = [], ""

    def flush():
        if run:
            b = base64.b64encode(run.encode("utf-16-be")).decode()
            out.append("&" + b.rstrip("=").replace("/", ",") + "-")
    for ch in name:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            run = ""
            out.append("&-" if ch == "&" else ch)
        else:
            run += ch
    flush()
    return "".join(out)


def fetch_items(c, what, seq=1):
    untagged = c.ok(f"FETCH {seq} {what}")
    fetches = [parse_fetch(r)[1] for r in untagged
               if re.match(rb"\* \d+ FETCH", r)]
    assert len(fetches) == 1, untagged
    return fetches[0]


MSG = b"From: <a@remote.test>\r\nSubject: x\r\n\r\nhello\r\n"


def test_message_in_mailbox_with_long_encoded_name(make_facteur):
    """A mailbox name of 1000 bytes (the limit) whose every byte is
    percent-encoded in the message file's metadata line: the message is
    stored and read back."""
    f = make_facteur()
    name = "\u00e9" * 500
    with imap(f) as c:
        c.ok(f'CREATE "{utf7(name)}"')
        c.ok(f'APPEND "{utf7(name)}" {{{len(MSG)}}}', MSG + b"\r\n")
        c.ok(f'SELECT "{utf7(name)}"')
        it = fetch_items(c, "BODY.PEEK[]")
        assert it["BODY[]"] == MSG


def append_dated(c, date, mailbox="INBOX"):
    c.ok(f'APPEND {mailbox} "{date}" {{{len(MSG)}}}', MSG + b"\r\n")


def test_internaldate_zones_and_extremes(make_facteur):
    """APPEND date-times at the ends of the zones (+1400, -1200, +0545,
    +9959, -0000) and of time (before 1970, 2038, 2106, a leap day): FETCH
    INTERNALDATE gives each back as written, SEARCH ON finds it by the day
    it is written on, and so do a restart and a COPY."""
    f = make_facteur()
    dates = ["01-Jan-2024 00:30:00 +1400", "31-Dec-2023 23:30:00 -1200",
             "15-Mar-2024 12:00:00 +0545", "29-Feb-2024 23:59:59 +9959",
             "01-Jan-1969 00:00:00 -0100", "19-Jan-2038 03:14:08 +0000",
             "07-Feb-2106 06:28:16 +0000", "01-Jan-2200 00:00:00 -0930",
             "01-Jan-1900 00:00:00 +0000"]
    with imap(f) as c:
        c.ok("CREATE Other")
        for d in dates:
            append_dated(c, d)
        append_dated(c, "01-Jan-2024 12:00:00 -0000")
        c.ok("SELECT INBOX")
        for seq, d in enumerate(dates, 1):
            it = fetch_items(c, "INTERNALDATE", seq)
            assert it["INTERNALDATE"] == d.encode(), (seq, d)
            day = d.split()[0]
            u = c.ok(f"SEARCH ON {day}")
            assert f" {seq}".encode() in u[0] + b" ", (d, u)
        # "-0000" is a zone of 0 minutes: shown as +0000
        it = fetch_items(c, "INTERNALDATE", len(dates) + 1)
        assert it["INTERNALDATE"] == b'01-Jan-2024 12:00:00 +0000'
        c.ok(f"COPY 1:{len(dates)} Other")
    f.stop()
    f.start()
    with imap(f) as c:
        c.ok("SELECT Other")
        for seq, d in enumerate(dates, 1):
            it = fetch_items(c, "INTERNALDATE", seq)
            assert it["INTERNALDATE"] == d.encode(), (seq, d)


def test_internaldate_epoch(make_facteur):
    """APPEND with the date-time of the instant 0 (1970-01-01 00:00:00
    UTC, written in any zone) keeps that date, not the time of the
    APPEND."""
    f = make_facteur()
    with imap(f) as c:
        append_dated(c, "01-Jan-1970 00:00:00 +0000")
        append_dated(c, "01-Jan-1970 01:00:00 +0100")
        c.ok("SELECT INBOX")
        it = fetch_items(c, "INTERNALDATE", 1)
        assert it["INTERNALDATE"] == b'01-Jan-1970 00:00:00 +0000'
        it = fetch_items(c, "INTERNALDATE", 2)
        assert it["INTERNALDATE"] == b'01-Jan-1970 01:00:00 +0100'


def nested_message(blob):
    """A multipart whose part 2 is a message/rfc822 holding a multipart
    (a base64 part with a NUL), part 3 a multipart/alternative (a base64
    part, a quoted-printable one)."""
    b64 = base64.encodebytes(blob).replace(b"\n", b"\r\n")
    inner = (b"From: <b@remote.test>\r\nSubject: inner\r\nMIME-Version: 1.0"
             b"\r\nContent-Type: multipart/mixed; boundary=in\r\n\r\n"
             b"--in\r\nContent-Type: text/plain\r\n\r\ninner text\r\n"
             b"--in\r\nContent-Type: application/octet-stream\r\n"
             b"Content-Transfer-Encoding: BASE64\r\n\r\n" + b64 +
             b"--in--\r\n")
    qp = (b"caf=C3=A9 =\r\nsoft=\r\n\r\nend=3D=\r\n")
    return (b"From: <a@remote.test>\r\nSubject: nested\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=out\r\n\r\n"
            b"--out\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
            b"--out\r\nContent-Type: message/rfc822\r\n\r\n" + inner +
            b"\r\n--out\r\nContent-Type: multipart/alternative; "
            b"boundary=alt\r\n\r\n"
            b"--alt\r\nContent-Type: application/x-a\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 +
            b"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: Quoted-Printable\r\n\r\n" + qp +
            b"--alt--\r\n\r\n--out--\r\n"), inner


def unliteral8(resp):
    return re.sub(rb"~\{(\d+)\}\r\n", rb"{\1}\r\n", resp)


def fetch_b(c, what, seq=1):
    untagged = c.ok(f"FETCH {seq} {what}")
    fetches = [parse_fetch(unliteral8(r))[1] for r in untagged
               if re.match(rb"\* \d+ FETCH", r)]
    assert len(fetches) == 1, untagged
    return fetches[0], untagged


def test_binary_nested_parts(make_facteur):
    """BINARY of a message/rfc822 part is the enclosed message as it is;
    BINARY of the parts within it and of a multipart/alternative's parts
    is their decoded content (encodings named in any case), BINARY.SIZE
    its exact length; literal8 exactly when the bytes sent hold a NUL;
    partials through the decoded bytes."""
    f = make_facteur()
    blob = bytes(range(256)) * 40 + b"\x00tail"
    msg, inner = nested_message(blob)
    with imap(f) as c:
        c.ok(f"APPEND INBOX {{{len(msg)}}}", msg + b"\r\n")
        c.ok("EXAMINE INBOX")
        it, _ = fetch_b(c, "(BINARY.PEEK[2] BINARY.SIZE[2])")
        assert it["BINARY[2]"] == inner
        assert it["BINARY.SIZE[2]"] == str(len(inner)).encode()
        for sec in ("2.2", "3.1"):
            it, raw = fetch_b(c, f"(BINARY.SIZE[{sec}] BINARY.PEEK[{sec}])")
            assert it[f"BINARY[{sec}]"] == blob, sec
            assert it[f"BINARY.SIZE[{sec}]"] == str(len(blob)).encode()
            assert f"BINARY[{sec}] ~{{{len(blob)}}}".encode() in raw[0]
        it, _ = fetch_b(c, "BINARY.PEEK[2.1]")
        assert it["BINARY[2.1]"] == b"inner text"
        it, _ = fetch_b(c, "(BINARY.PEEK[3.2] BINARY.SIZE[3.2])")
        assert it["BINARY[3.2]"] == "café soft\r\nend=".encode()
        assert it["BINARY.SIZE[3.2]"] == str(
            len("café soft\r\nend=".encode())).encode()
        # a partial without the NUL: an ordinary literal
        it, raw = fetch_b(c, "BINARY.PEEK[3.1]<1.255>")
        assert it["BINARY[3.1]<1>"] == blob[1:256]
        assert b"BINARY[3.1]<1> {255}" in raw[0], raw
        # a partial that ends on the NUL, one past the end
        n = len(blob) - 5
        it, raw = fetch_b(c, f"BINARY.PEEK[3.1]<{n - 2}.3>")
        assert it[f"BINARY[3.1]<{n - 2}>"] == blob[n - 2:n + 1]
        assert f"~{{3}}".encode() in raw[0], raw
        it, raw = fetch_b(c, f"BINARY.PEEK[3.1]<{len(blob) + 1}.3>")
        assert it[f"BINARY[3.1]<{len(blob) + 1}>"] == b""
        # a section that is no part
        it, _ = fetch_b(c, "BINARY.PEEK[2.3]")
        assert it["BINARY[2.3]"] == b"NIL"
        st, tagged, _ = c.status("FETCH 1 BINARY.PEEK[1.MIME]")
        assert st == "BAD", tagged
