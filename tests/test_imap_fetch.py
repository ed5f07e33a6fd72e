"""
IMAP FETCH: a message sent over SMTP read back byte for byte, the
macros, ENVELOPE, BODY/BODYSTRUCTURE, body sections (HEADER,
HEADER.FIELDS(.NOT), TEXT, MIME, part numbers, partial), RFC822.*,
\\Seen set by a non-PEEK fetch, UID FETCH, sequence set errors, BINARY,
and a big FETCH streamed to a slow reader.
"""
import imaplib
import re
import socket
import time

import pytest

from conftest import (ALICE, PASSWORDS, T, client_tls_context, expect_queued,
                      make_message, send_message)
from test_imap_util import IMAPConn, imap, parse_fetch

MULTI = (b"From: Ann <ann@remote.test>\r\n"
         b"To: alice@example.test\r\n"
         b"Subject: parts\r\n"
         b"Message-ID: <multi@remote.test>\r\n"
         b"MIME-Version: 1.0\r\n"
         b"Content-Type: multipart/mixed; boundary=XX\r\n"
         b"\r\n"
         b"--XX\r\n"
         b"Content-Type: text/plain; charset=utf-8\r\n"
         b"\r\n"
         b"caf\xc3\xa9\r\n"
         b"--XX\r\n"
         b"Content-Type: application/octet-stream\r\n"
         b"Content-Transfer-Encoding: base64\r\n"
         b"\r\n"
         b"AAECAwQ=\r\n"
         b"--XX--\r\n")


def deliver_raw(f, msg, to=ALICE):
    with f.smtp() as c:
        c.ehlo()
        expect_queued(send_message(c, "sender@remote.test", to, msg))


def stored(f, uid=None):
    msgs = f.mailbox(ALICE)
    if uid is None:
        return msgs[-1][1]
    return dict(msgs)[uid]


def test_smtp_message_read_back_byte_for_byte(facteur):
    body = "Line one\r\n.leading dot\r\n\r\nUnicode: żółć\r\n" + "x" * 5000
    msg = make_message(subject="byte for byte", body=body)
    deliver_raw(facteur, msg)
    data = stored(facteur)
    assert data.endswith(msg)
    with imap(facteur) as c:
        c.ok("SELECT INBOX")
        u = c.ok("FETCH 1 (BODY.PEEK[] RFC822.SIZE)")
        seq, items = parse_fetch(u[0])
        assert items["BODY[]"] == data
        assert int(items["RFC822.SIZE"]) == len(data)
        u = c.ok("UID FETCH 1 RFC822")
        seq, items = parse_fetch(u[0])
        assert items["RFC822"] == data and items["UID"] == b"1"


def test_macros_envelope_structure(facteur):
    deliver_raw(facteur, MULTI)
    with imap(facteur) as c:
        c.ok("SELECT INBOX")
        seq, it = parse_fetch(c.ok("FETCH 1 ALL")[0])
        assert set(it) == {"FLAGS", "INTERNALDATE", "RFC822.SIZE",
                           "ENVELOPE"}
        assert re.match(rb'"\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d '
                        rb'[+-]\d{4}"$', b'"' + it["INTERNALDATE"] + b'"')
        assert it["ENVELOPE"].startswith(b'(NIL "parts" (("Ann" NIL "ann" '
                                         b'"remote.test"))')
        seq, it = parse_fetch(c.ok("FETCH 1 FAST")[0])
        assert set(it) == {"FLAGS", "INTERNALDATE", "RFC822.SIZE"}
        seq, it = parse_fetch(c.ok("FETCH 1 FULL")[0])
        assert "BODY" in it and "ENVELOPE" in it
        seq, it = parse_fetch(c.ok("FETCH 1 BODYSTRUCTURE")[0])
        bs = it["BODYSTRUCTURE"]
        assert bs.startswith(b'(("text" "plain" ("charset" "utf-8") NIL '
                             b'NIL "7bit" 5 0 NIL NIL NIL NIL)'), bs
        assert b'"mixed" ("boundary" "XX") NIL NIL NIL)' in bs


def test_sections(facteur):
    deliver_raw(facteur, MULTI)
    data = stored(facteur)
    hdr_end = data.index(b"\r\n\r\n") + 4
    with imap(facteur) as c:
        c.ok("SELECT INBOX")
        u = c.ok("FETCH 1 (BODY.PEEK[HEADER] BODY.PEEK[TEXT] "
                 "BODY.PEEK[1] BODY.PEEK[2] BODY.PEEK[2.MIME] "
                 "BODY.PEEK[3] BODY.PEEK[HEADER.FIELDS (Subject To)] "
                 "BODY.PEEK[HEADER.FIELDS.NOT (Received Return-Path "
                 "Subject To From Message-ID MIME-Version "
                 "Content-Type)] BODY.PEEK[]<0.10> BODY.PEEK[1]<2.100>)")
        seq, it = parse_fetch(u[0])
        assert it["BODY[HEADER]"] == data[:hdr_end]
        assert it["BODY[TEXT]"] == data[hdr_end:]
        assert it["BODY[1]"] == "café".encode()
        assert it["BODY[2]"] == b"AAECAwQ="
        assert it["BODY[2.MIME]"] == (b"Content-Type: application/octet-"
                                      b"stream\r\nContent-Transfer-"
                                      b"Encoding: base64\r\n\r\n")
        assert it["BODY[3]"] == b"NIL"
        assert it["BODY[HEADER.FIELDS (SUBJECT TO)]"] == \
            b"To: alice@example.test\r\nSubject: parts\r\n\r\n"
        assert it["BODY[HEADER.FIELDS.NOT (RECEIVED RETURN-PATH SUBJECT "
                  "TO FROM MESSAGE-ID MIME-VERSION CONTENT-TYPE)]"] == \
            b"\r\n"
        assert it["BODY[]<0>"] == data[:10]
        assert it["BODY[1]<2>"] == "café".encode()[2:]
        seq, it = parse_fetch(c.ok("FETCH 1 (RFC822.HEADER RFC822.TEXT)")[0])
        assert it["RFC822.HEADER"] == data[:hdr_end]
        assert it["RFC822.TEXT"] == data[hdr_end:]


def test_binary(facteur):
    deliver_raw(facteur, MULTI)
    with imap(facteur) as c:
        c.ok("SELECT INBOX")
        c.send(b"b1 FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2])\r\n")
        resp = c.response()
        assert resp.startswith(b"* 1 FETCH (BINARY[2] ~{5}\r\n"
                               b"\x00\x01\x02\x03\x04 BINARY.SIZE[2] 5)"), \
            resp
        assert c.response().startswith(b"b1 OK")


def test_nul_in_a_message(facteur):
    """A message holding a NUL (APPEND's literal; BDAT takes them too) is
    stored as it came, BINARY gives it back as it is (literal8), and a
    FETCH of the body, whose literal may not hold a NUL (RFC 3501 §4.3),
    gives 0x80 in its place, the length unchanged."""
    msg = b"Subject: nul\r\n\r\nbefore\x00after\r\nline two\r\n"
    with imap(facteur) as c:
        c.send(b"a1 APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        assert c.response().startswith(b"a1 OK")
        c.ok("SELECT INBOX")
        c.send(b"f1 FETCH 1 (RFC822.SIZE BODY.PEEK[] BODY.PEEK[TEXT])\r\n")
        resp = c.response()
        assert c.response().startswith(b"f1 OK")
        want = msg.replace(b"\x00", b"\x80")
        assert b"RFC822.SIZE %d" % len(msg) in resp, resp
        assert b"BODY[] {%d}\r\n" % len(msg) + want in resp, resp
        text = want[want.index(b"\r\n\r\n") + 4:]
        assert b"BODY[TEXT] {%d}\r\n" % len(text) + text in resp, resp
        assert b"\x00" not in resp
        c.send(b"f2 FETCH 1 BINARY.PEEK[]\r\n")
        resp = c.response()
        assert c.response().startswith(b"f2 OK")
        assert b"BINARY[] ~{%d}\r\n" % len(msg) + msg in resp, resp


def test_seen_set_by_non_peek(facteur):
    deliver_raw(facteur, make_message(subject="s1"))
    deliver_raw(facteur, make_message(subject="s2"))
    with imap(facteur) as c:
        c.ok("SELECT INBOX")
        seq, it = parse_fetch(c.ok("FETCH 1 BODY.PEEK[TEXT]")[0])
        assert set(it) == {"BODY[TEXT]"}
        seq, it = parse_fetch(c.ok("FETCH 1 FLAGS")[0])
        assert b"\\Seen" not in it["FLAGS"]
        seq, it = parse_fetch(c.ok("FETCH 1 BODY[TEXT]")[0])
        assert b"\\Seen" in it["FLAGS"]
        seq, it = parse_fetch(c.ok("FETCH 1 BODY[TEXT]")[0])
        assert "FLAGS" not in it  # already seen: no change to report
        seq, it = parse_fetch(c.ok("FETCH 2 RFC822.HEADER")[0])
        assert "FLAGS" not in it
        c.ok("EXAMINE INBOX")
        seq, it = parse_fetch(c.ok("FETCH 2 BODY[]")[0])
        assert "FLAGS" not in it
        c.ok("SELECT INBOX")
        seq, it = parse_fetch(c.ok("FETCH 2 FLAGS")[0])
        assert b"\\Seen" not in it["FLAGS"]


def test_sequence_sets_and_uid_fetch(facteur):
    for i in range(5):
        deliver_raw(facteur, make_message(subject=f"m{i}"))
    with imap(facteur) as c:
        c.ok("SELECT INBOX")
        u = c.ok("FETCH 2:4,1 UID")
        assert u == [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 2)",
                     b"* 3 FETCH (UID 3)", b"* 4 FETCH (UID 4)"]
        assert c.ok("FETCH * UID") == [b"* 5 FETCH (UID 5)"]
        assert c.ok("FETCH 4:* UID") == [b"* 4 FETCH (UID 4)",
                                         b"* 5 FETCH (UID 5)"]
        st, tagged, _ = c.status("FETCH 6 UID")
        assert st == "BAD"
        assert c.status("FETCH 0 UID")[0] == "BAD"
        assert c.status("FETCH x UID")[0] == "BAD"
        assert c.status("FETCH 1 (UID")[0] == "BAD"
        assert c.status("FETCH 1 BOGUS")[0] == "BAD"
        # delivered before the first SELECT: \Recent to this session
        assert c.ok("UID FETCH 3:4 FLAGS") == [
            b"* 3 FETCH (UID 3 FLAGS (\\Recent))",
            b"* 4 FETCH (UID 4 FLAGS (\\Recent))"]
        assert c.ok("UID FETCH 100:* FLAGS") == [
            b"* 5 FETCH (UID 5 FLAGS (\\Recent))"]  # *:100 has the last
        assert c.ok("UID FETCH 100:200 FLAGS") == []
        assert c.ok("UID FETCH 6:7 FLAGS") == []


def test_imaplib_fetch(facteur):
    msg = make_message(subject="imaplib")
    deliver_raw(facteur, msg)
    m = imaplib.IMAP4_SSL("127.0.0.1", facteur.ports["imaps"],
                          ssl_context=client_tls_context())
    m.login(ALICE, PASSWORDS[ALICE])
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    typ, data = m.fetch("1", "(RFC822)")
    assert typ == "OK" and data[0][1].endswith(msg)
    typ, data = m.uid("FETCH", "1", "(FLAGS)")
    assert typ == "OK" and b"\\Seen" in data[0]
    m.logout()


def test_big_fetch_streamed_to_slow_reader(make_facteur):
    f = make_facteur(config={"smtp_max_message_size": "30M"})
    big = make_message(subject="big", body="y" * (3 * 1024 * 1024))
    for _ in range(4):
        deliver_raw(f, big)
    with imap(f) as c:
        c.ok("SELECT INBOX")
        c.send(b"z FETCH 1:* BODY.PEEK[]\r\n")
        time.sleep(0.5)  # the server must pause, not buffer 12 MB
        got = 0
        while True:
            r = c.response()
            if r.startswith(b"z "):
                assert r.startswith(b"z OK"), r
                break
            got += 1
            assert len(r) > 3 * 1024 * 1024
        assert got == 4
        # other clients are served meanwhile and after
        with imap(f) as d:
            d.ok("NOOP")
