"""
IMAP message commands: APPEND (flags, date, APPENDUID, TRYCREATE,
LITERAL+, APPENDLIMIT), STORE (+/-FLAGS, .SILENT, keywords), EXPUNGE and
UID EXPUNGE, CLOSE, UNSELECT, CHECK, COPY and MOVE with COPYUID, and the
read-only refusals after EXAMINE.
"""
import re

import pytest

from conftest import ALICE, BOB, make_message
from test_imap_util import IMAPConn, imap, parse_fetch


def append(c, mailbox, msg, flags="", date=""):
    parts = [mailbox]
    if flags:
        parts.append(f"({flags})")
    if date:
        parts.append(f'"{date}"')
    return c.cmd(f"APPEND {' '.join(parts)} {{{len(msg)}}}", msg + b"\r\n")


def test_append_then_fetch(facteur):
    msg = make_message(subject="appended")
    with imap(facteur) as c:
        untagged, tagged = append(c, "INBOX", msg, "\\Seen $Label1",
                                  "05-Jan-2024 10:11:12 +0100")
        m = re.match(rb"a\d+ OK \[APPENDUID (\d+) 1\] APPEND completed",
                     tagged)
        assert m, tagged
        uidvalidity = m.group(1)
        u = c.ok("SELECT INBOX")
        assert b"* 1 EXISTS" in u
        assert re.search(rb"UIDVALIDITY " + uidvalidity, b" ".join(u))
        seq, it = parse_fetch(c.ok("FETCH 1 (FLAGS INTERNALDATE BODY.PEEK[])"
                                   )[0])
        assert it["BODY[]"] == msg
        assert b"\\Seen" in it["FLAGS"] and b"$Label1" in it["FLAGS"]
        assert it["INTERNALDATE"] == b"05-Jan-2024 10:11:12 +0100"
    assert facteur.mailbox(ALICE)[-1][1] == msg


def test_append_errors(shared_facteur):
    msg = make_message(subject="x")
    with imap(shared_facteur, BOB) as c:
        untagged, tagged = append(c, "NoSuchBox", msg)
        assert b"NO [TRYCREATE]" in tagged
        untagged, tagged = c.cmd("APPEND INBOX (\\Bogus) {3}", b"abc\r\n")
        assert b" BAD " in tagged
        untagged, tagged = c.cmd('APPEND INBOX "31-Feb-2024 00:00:00 +0000"'
                                 ' {3}', b"abc\r\n")
        assert b" BAD " in tagged
        assert c.status("APPEND INBOX")[0] == "BAD"
        untagged, tagged = c.cmd("APPEND INBOX {0}", b"\r\n")
        assert b" NO " in tagged


def test_append_literal_plus_and_limit(make_facteur):
    f = make_facteur(config={"imap_max_message_size": "2K"})
    with imap(f) as c:
        caps = c.ok("CAPABILITY")[0]
        assert b"APPENDLIMIT=2048" in caps and b"LITERAL+" in caps
        msg = make_message(subject="plus")
        c.send(b"p1 APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        r = c.response()
        assert r.startswith(b"p1 OK [APPENDUID "), r
        c.send(b"p2 APPEND INBOX {4096}\r\n")
        r = c.response()
        assert r.startswith(b"p2 NO [TOOBIG]"), r
        c.ok("NOOP")


def test_store_flags(facteur):
    with imap(facteur) as c:
        for i in range(3):
            append(c, "INBOX", make_message(subject=f"s{i}"))
        c.ok("SELECT INBOX")
        u = c.ok("STORE 1:2 +FLAGS (\\Flagged $Work)")
        assert u == [b"* 1 FETCH (FLAGS (\\Flagged \\Recent $Work))",
                     b"* 2 FETCH (FLAGS (\\Flagged \\Recent $Work))"] or \
            u[-2:] == [b"* 1 FETCH (FLAGS (\\Flagged $Work))",
                       b"* 2 FETCH (FLAGS (\\Flagged $Work))"] or \
            any(b"FLAGS (" in x for x in u), u
        u = c.ok("STORE 1 -FLAGS.SILENT (\\Flagged)")
        assert not any(b"FETCH" in x for x in u)
        seq, it = parse_fetch(c.ok("FETCH 1 FLAGS")[0])
        assert b"\\Flagged" not in it["FLAGS"] and b"$Work" in it["FLAGS"]
        u = c.ok("UID STORE 3 FLAGS \\Seen")
        assert re.match(rb"\* 3 FETCH \(UID 3 FLAGS \(\\Seen", u[-1]), u
        assert c.status("STORE 1 +FLAGS (\\Bogus)")[0] == "BAD"
        assert c.status("STORE 1 +FLAGS (\\Recent)")[0] == "BAD"
        assert c.status("STORE 1 FOO (\\Seen)")[0] == "BAD"
        assert c.status("STORE 9 +FLAGS (\\Seen)")[0] == "BAD"
        c.ok("EXAMINE INBOX")
        st, tagged, _ = c.status("STORE 1 +FLAGS (\\Seen)")
        assert st == "NO"


def test_expunge_close_unselect(facteur):
    with imap(facteur) as c:
        for i in range(5):
            append(c, "INBOX", make_message(subject=f"e{i}"))
        c.ok("SELECT INBOX")
        c.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
        u = c.ok("EXPUNGE")
        assert u == [b"* 4 EXPUNGE", b"* 2 EXPUNGE"]
        assert c.ok("FETCH 1:* UID") == [b"* 1 FETCH (UID 1)",
                                         b"* 2 FETCH (UID 3)",
                                         b"* 3 FETCH (UID 5)"]
        c.ok("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
        assert c.ok("UID EXPUNGE 3") == [b"* 2 EXPUNGE"]
        c.ok("UNSELECT")
        assert c.status("FETCH 1 UID")[0] == "BAD"
        u = c.ok("SELECT INBOX")
        assert b"* 2 EXISTS" in u
        c.ok("CLOSE")
        u = c.ok("STATUS INBOX (MESSAGES)")
        assert u == [b"* STATUS INBOX (MESSAGES 0)"]
        assert c.status("CLOSE")[0] == "BAD"
        c.ok("SELECT INBOX")
        c.ok("CHECK")


def test_copy_move_copyuid(facteur):
    with imap(facteur) as c:
        for i in range(4):
            append(c, "INBOX", make_message(subject=f"c{i}"), "\\Flagged")
        c.ok("CREATE Dest")
        c.ok("SELECT INBOX")
        untagged, tagged = c.cmd("COPY 1:2 Dest")
        m = re.match(rb"a\d+ OK \[COPYUID (\d+) 1:2 1:2\] COPY completed",
                     tagged)
        assert m, tagged
        untagged, tagged = c.cmd("UID MOVE 3:4 Dest")
        assert re.match(rb"\* OK \[COPYUID \d+ 3:4 3:4\]", untagged[0]), \
            untagged
        assert untagged[1:] == [b"* 4 EXPUNGE", b"* 3 EXPUNGE"]
        assert tagged.endswith(b"OK MOVE completed")
        st, tagged, _ = c.status("COPY 1 Nowhere")
        assert st == "NO" and b"[TRYCREATE]" in tagged
        u = c.ok("STATUS Dest (MESSAGES)")
        assert u == [b"* STATUS Dest (MESSAGES 4)"]
        c.ok("SELECT Dest")
        seq, it = parse_fetch(c.ok("FETCH 4 (FLAGS BODY.PEEK[HEADER.FIELDS "
                                   "(Subject)])")[0])
        assert b"\\Flagged" in it["FLAGS"]
        assert it["BODY[HEADER.FIELDS (SUBJECT)]"] == b"Subject: c3\r\n\r\n"
        c.ok("EXAMINE Dest")
        assert c.status("MOVE 1 INBOX")[0] == "NO"
        c.ok("COPY 1 INBOX")  # COPY from a read-only mailbox is fine


def test_imaplib_roundtrip(facteur):
    import imaplib
    from conftest import PASSWORDS, client_tls_context
    m = imaplib.IMAP4_SSL("127.0.0.1", facteur.ports["imaps"],
                          ssl_context=client_tls_context())
    m.login(ALICE, PASSWORDS[ALICE])
    msg = make_message(subject="via imaplib")
    typ, data = m.append("INBOX", "(\\Draft)", None, msg)
    assert typ == "OK", data
    m.select("INBOX")
    typ, data = m.search(None, "ALL")
    assert typ == "OK"
    typ, data = m.store("1", "+FLAGS", "(\\Deleted)")
    assert typ == "OK"
    typ, data = m.expunge()
    assert typ == "OK" and data == [b"1"]
    m.close()
    m.logout()
