"""
IMAP APPEND beyond tests/test_imap_msg.py: what an OK promises (the
message is stored and intact after a kill -9 that follows it, even in the
middle of a stream of APPENDs), pipelined APPENDs with LITERAL+ (answered
in order, UIDs in order, a refusal in the middle leaves the others alone,
committed together, another command in the middle waiting for those
before it),
a LITERAL+ literal over APPENDLIMIT (the synchronising one is in
test_imap_msg.py), and the store left clean: message
files made ahead of need (store_spare.c) are gone after a stop, and the
full-text index is filled once the commit thread is idle.

The internal date keeps its zone (index version 5): APPEND's date-time
comes back in FETCH INTERNALDATE as given, SEARCH BEFORE/ON/SINCE compare
its own calendar day, COPY and MOVE carry it, a rebuild from the files
recovers it, an SMTP delivery takes the server's zone, and an index of
version 4 is upgraded with +0000 for what it held.
"""
import calendar
import datetime
import imaplib
import os
import re
import sqlite3
import time
from pathlib import Path

import pytest

from conftest import (ALICE, PASSWORDS, T, expect_queued, make_message,
                      send_message, store_problems, wait_until)
from clients import client_tls_context
from test_imap_util import INDEX_QUOTA_BEFORE_V6, imap, parse_fetch

APPENDUID = re.compile(rb"^(\S+) OK \[APPENDUID (\d+) (\d+)\]")


def literal_plus(tag, mailbox, msg, flags=""):
    flags = f" ({flags})" if flags else ""
    return (f"{tag} APPEND {mailbox}{flags} {{{len(msg)}+}}\r\n".encode() +
            msg + b"\r\n")


def fetch_bodies(c, mailbox="INBOX"):
    """{uid: body} of every message of `mailbox`."""
    c.ok(f"SELECT {mailbox}")
    out = {}
    for r in c.ok("UID FETCH 1:* (UID BODY.PEEK[])"):
        if b" FETCH " not in r:
            continue
        _, it = parse_fetch(r)
        out[int(it["UID"])] = it["BODY[]"]
    return out


def test_appended_messages_survive_kill9(make_facteur):
    """Every APPEND answered OK is there, byte for byte, after a kill -9;
    the last one, killed in flight, is either whole or absent."""
    f = make_facteur()
    acked = {}
    with imap(f) as c:
        for i in range(40):
            msg = make_message(subject=f"durable {i}",
                               body=f"line {i} of a body\r\n" * (20 + 50 * i))
            c.send(literal_plus(f"d{i}", "INBOX", msg))
            r = c.response()
            m = APPENDUID.match(r)
            assert m and m.group(1) == f"d{i}".encode(), r
            acked[int(m.group(3))] = msg
        # one more, and the kill before its answer
        c.send(literal_plus("last", "INBOX",
                            make_message(subject="in flight")))
        f.kill9()
    f.restart()
    assert store_problems(f.data_dir, orphans_ok=True, tmp_ok=True) == []
    with imap(f) as c:
        stored = fetch_bodies(c)
    for uid, msg in acked.items():
        assert stored.get(uid) == msg, f"UID {uid} lost or damaged"
    extra = set(stored) - set(acked)
    assert len(extra) <= 1, extra
    for uid in extra:
        assert b"in flight" in stored[uid]


def test_pipelined_appends_answered_in_order(facteur):
    """Twenty APPENDs with LITERAL+ in one write: twenty OKs in the order
    sent, consecutive UIDs, the messages in that order; one to a missing
    mailbox in the middle is refused alone."""
    msgs = [make_message(subject=f"pipelined {i}") for i in range(20)]
    data = b"".join(literal_plus(f"p{i}", "INBOX" if i != 7 else "Nowhere",
                                 m, "\\Seen" if i % 2 else "")
                    for i, m in enumerate(msgs))
    with imap(facteur) as c:
        c.send(data + b"p99 NOOP\r\n")
        tags, uids = [], []
        while True:
            r = c.response()
            if r.startswith(b"*"):
                continue
            tags.append(r.split(b" ", 1)[0])
            if r.startswith(b"p7 "):
                assert b" NO [TRYCREATE]" in r, r
            elif not r.startswith(b"p99 "):
                m = APPENDUID.match(r)
                assert m, r
                uids.append(int(m.group(3)))
            if r.startswith(b"p99 "):
                assert b" OK" in r, r
                break
        assert tags == [f"p{i}".encode() for i in range(20)] + [b"p99"]
        assert uids == list(range(uids[0], uids[0] + 19)), uids
        stored = fetch_bodies(c)
        kept = [m for i, m in enumerate(msgs) if i != 7]
        assert [stored[u] for u in uids] == kept
        seq, it = parse_fetch(c.ok(f"UID FETCH {uids[1]} FLAGS")[-1])
        assert b"\\Seen" in it["FLAGS"]


def test_pipelined_appends_committed_together(make_facteur):
    """APPENDs sent at once are read while the first is being committed
    and go to the store together: fewer flushes than messages (the store
    logs each batch). A command other than APPEND in the middle waits for
    the APPENDs before it, and sees exactly them; those after it come
    after its answer. More than the 32 that may be in flight at once are
    all answered, in order."""
    f = make_facteur(config={"log_level": "debug"})
    msgs = [make_message(subject=f"together {i}") for i in range(45)]
    with imap(f) as c:
        c.ok("CREATE Box")
        data = b"".join(literal_plus(f"a{i}", "Box", m)
                        for i, m in enumerate(msgs[:40]))
        data += b"s1 STATUS Box (MESSAGES)\r\n"
        data += b"".join(literal_plus(f"b{i}", "Box", m)
                         for i, m in enumerate(msgs[40:]))
        c.send(data + b"n1 NOOP\r\n")
        tags, status = [], None
        while True:
            r = c.response()
            if r.startswith(b"* STATUS"):
                status = r
            if r.startswith(b"*"):
                continue
            assert b" OK" in r, r
            tags.append(r.split(b" ", 1)[0])
            if r.startswith(b"n1 "):
                break
        assert tags == ([f"a{i}".encode() for i in range(40)] + [b"s1"] +
                        [f"b{i}".encode() for i in range(5)] + [b"n1"])
        assert status is not None and b"(MESSAGES 40)" in status, status
        assert list(fetch_bodies(c, "Box").values()) == msgs
    sizes = [int(n) for n in re.findall(
        r"store event=batch deliveries=(\d+)", f.log())]
    assert sum(sizes) >= 45 and max(sizes) > 1, sizes


def test_literal_plus_over_appendlimit(make_facteur):
    """A LITERAL+ message over APPENDLIMIT cannot be refused before it is
    sent: the server says why and closes the connection (RFC 7888 allows
    it), never taking the literal's bytes for commands, and stores
    nothing; the next connection is served."""
    f = make_facteur(config={"imap_max_message_size": "2K"})
    with imap(f) as c:
        big = b"x1 CREATE Injected\r\n" * 200  # 4,000 bytes of commands
        c.send(b"t1 APPEND INBOX {%d+}\r\n" % len(big) + big + b"\r\n")
        said = []
        while True:
            r = c.response_or_eof()
            if r is None:
                break
            said.append(r)
        assert said and said[-1].startswith(b"* BYE"), said
        assert not any(r.startswith(b"x1 ") for r in said), said
    with imap(f) as c:
        assert c.ok("LIST \"\" Injected") == []
        assert c.ok("STATUS INBOX (MESSAGES)") == [
            b"* STATUS INBOX (MESSAGES 0)"]
        small = make_message(subject="fits")
        c.send(literal_plus("t2", "INBOX", small))
        assert APPENDUID.match(c.response())
        assert list(fetch_bodies(c).values()) == [small]


def test_store_clean_after_stop_and_text_indexed(facteur):
    """After a run of APPENDs: once the commit thread is idle the text is
    in the full-text index (not only scanned), SEARCH finds it either way,
    and a clean stop leaves no spare file in tmp/."""
    f = facteur
    with imap(f) as c:
        for i in range(12):
            msg = make_message(subject=f"idx {i}",
                               body=f"quokka{i:02d} lives here\r\n")
            c.send(literal_plus(f"i{i}", "INBOX", msg))
            assert APPENDUID.match(c.response())
        c.ok("SELECT INBOX")
        assert c.ok("SEARCH BODY quokka07") == [b"* SEARCH 8"]
        db = f.data_dir / "mail" / ALICE / "index.db"

        def indexed():
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                left = con.execute("SELECT count(*) FROM fts_text "
                                   "WHERE indexed = 0").fetchone()[0]
                done = con.execute("SELECT count(*) FROM fts_text "
                                   "WHERE indexed = 1").fetchone()[0]
            finally:
                con.close()
            return left == 0 and done >= 12

        wait_until(indexed, T(10), "the text of 12 messages indexed")
        assert c.ok("SEARCH BODY quokka07") == [b"* SEARCH 8"]
        assert c.ok("SEARCH BODY quokka") == [
            b"* SEARCH " + b" ".join(b"%d" % i for i in range(1, 13))]
    f.stop()
    assert store_problems(f.data_dir) == []


# ------------------------------------------------------------ zones

# date-times near midnight in zones away from UTC, as APPEND gives them
ZONED = [
    "26-Nov-2026 00:30:00 +0100",   # 25-Nov 23:30 UTC
    "26-Nov-2026 23:30:00 -0800",   # 27-Nov 07:30 UTC
    "25-Nov-2026 23:30:00 +0000",
    "27-Nov-2026 01:30:00 +0100",   # 27-Nov 00:30 UTC
    " 1-Dec-2026 00:05:09 +0530",   # 30-Nov 18:35:09 UTC
]


def imaplib_login(f):
    m = imaplib.IMAP4_SSL("127.0.0.1", f.ports["imaps"],
                          ssl_context=client_tls_context(), timeout=T(20))
    m.login(ALICE, PASSWORDS[ALICE])
    return m


def as_written(dt):
    """'26-Nov-2026 00:30:00 +0100' as FETCH writes it (2-digit day)."""
    d = dt.strip()
    return ("0" + d) if d[1] == "-" else d


def instant(dt):
    """UTC seconds and zone minutes of an IMAP date-time, by Python."""
    t = datetime.datetime.strptime(dt.strip(), "%d-%b-%Y %H:%M:%S %z")
    off = t.utcoffset()
    return calendar.timegm(t.utctimetuple()), int(off.total_seconds()) // 60


def own_day(dt):
    return datetime.datetime.strptime(dt.split()[0], "%d-%b-%Y").date()


def internal_dates(m, mailbox):
    """{seq: INTERNALDATE} of a mailbox, through imaplib."""
    typ, data = m.select(mailbox)
    assert typ == "OK", data
    typ, data = m.fetch("1:*", "(INTERNALDATE)")
    assert typ == "OK", data
    out = {}
    for line in data:
        r = re.match(rb'(\d+) \(INTERNALDATE "([^"]+)"\)$', line)
        assert r, line
        out[int(r.group(1))] = r.group(2).decode()
    return out


def imaplib_search(m, keys):
    typ, data = m.search(None, keys)
    assert typ == "OK", data
    return [int(x) for x in data[0].split()]


def check_zoned(m, mailbox):
    """FETCH INTERNALDATE gives each date-time back as written, and
    BEFORE/ON/SINCE select by the date as written, whatever its zone."""
    dates = internal_dates(m, mailbox)
    assert dates == {i + 1: as_written(d) for i, d in enumerate(ZONED)}
    # what Python says the answers are: the calendar date as written
    for day in ("25-Nov-2026", "26-Nov-2026", "27-Nov-2026",
                "30-Nov-2026", "1-Dec-2026"):
        d = datetime.datetime.strptime(day, "%d-%b-%Y").date()
        want = {
            "ON": [i + 1 for i, x in enumerate(ZONED) if own_day(x) == d],
            "BEFORE": [i + 1 for i, x in enumerate(ZONED)
                       if own_day(x) < d],
            "SINCE": [i + 1 for i, x in enumerate(ZONED)
                      if own_day(x) >= d],
        }
        for key, expect in want.items():
            assert imaplib_search(m, f"{key} {day}") == expect, (key, day)
    # spelled out, for the reader
    assert imaplib_search(m, "ON 26-Nov-2026") == [1, 2]
    assert imaplib_search(m, "BEFORE 26-Nov-2026") == [3]
    assert imaplib_search(m, "SINCE 27-Nov-2026") == [4, 5]
    assert imaplib_search(m, "ON 30-Nov-2026") == []
    assert imaplib_search(m, "ON 1-Dec-2026") == [5]


def index_zones(f, mailbox):
    """[(internal_date, internal_zone)] of a mailbox, from index.db."""
    db = sqlite3.connect(f"file:{index_path(f)}?mode=ro", uri=True,
                         timeout=10)
    try:
        return db.execute(
            "SELECT mm.internal_date, mm.internal_zone"
            " FROM mailbox_messages mm JOIN mailboxes b"
            " ON b.id = mm.mailbox_id WHERE b.name = ? ORDER BY mm.uid",
            (mailbox,)).fetchall()
    finally:
        db.close()


def index_path(f):
    return Path(f.data_dir) / "mail" / ALICE / "index.db"


def append_zoned(m, mailbox):
    assert m.create(mailbox)[0] == "OK"
    for i, dt in enumerate(ZONED):
        msg = make_message(subject=f"zoned {i}")
        typ, data = m.append(mailbox, None, f'"{dt}"', msg)
        assert typ == "OK", data


def test_append_date_time_zone_kept(facteur):
    """APPEND with +0100 and -0800 near midnight: FETCH INTERNALDATE is the
    exact string, SEARCH ON/BEFORE/SINCE use the date as written; COPY
    and MOVE carry the zone; all of it survives a restart."""
    f = facteur
    m = imaplib_login(f)
    append_zoned(m, "Z")
    check_zoned(m, "Z")
    # the store keeps the instant and the zone
    assert index_zones(f, "Z") == [instant(d) for d in ZONED]
    assert m.create("Z2")[0] == "OK"
    assert m.create("Z3")[0] == "OK"
    m.select("Z")
    assert m.copy("1:*", "Z2")[0] == "OK"
    check_zoned(m, "Z2")
    m.select("Z2")
    typ, data = m._simple_command("MOVE", "1:*", "Z3")
    assert typ == "OK", data
    check_zoned(m, "Z3")
    assert m.select("Z2") == ("OK", [b"0"])
    m.logout()
    f.stop()
    f.start()
    m = imaplib_login(f)
    check_zoned(m, "Z")
    check_zoned(m, "Z3")
    # the raw protocol too: UID FETCH, and the quoted string exactly
    with imap(f) as c:
        c.ok("EXAMINE Z")
        u = c.ok("UID FETCH 2 INTERNALDATE")
        assert u == [b'* 2 FETCH (UID 2 INTERNALDATE '
                     b'"26-Nov-2026 23:30:00 -0800")'], u
    m.logout()


@pytest.mark.parametrize("tz,zone", [("XXT-5:30", "+0530"),
                                     ("XXT8", "-0800"),
                                     ("UTC0", "+0000")])
def test_delivery_in_server_zone(make_facteur, monkeypatch, tz, zone):
    """A message delivered over SMTP, or appended without a date-time,
    gets the server's zone at that moment (TZ of the process), as
    Dovecot shows it; the instant is the time of delivery."""
    monkeypatch.setenv("TZ", tz)
    f = make_facteur()
    before = int(time.time())
    with f.smtp() as s:
        s.ehlo()
        expect_queued(send_message(s, "sender@remote.test", ALICE,
                                   make_message(subject="smtp zone")))
    f.wait_messages(ALICE, 1)
    m = imaplib_login(f)
    typ, data = m.append("INBOX", None, None,
                         make_message(subject="no date"))
    assert typ == "OK", data
    after = int(time.time()) + 1
    dates = internal_dates(m, "INBOX")
    assert len(dates) == 2
    for dt in dates.values():
        assert dt.endswith(" " + zone), dt
        t, z = instant(dt)
        assert before - 1 <= t <= after, (dt, before, after)
        # the date shown is the local date of the server's zone
        local = datetime.datetime.fromtimestamp(
            t, datetime.timezone(datetime.timedelta(minutes=z)))
        assert local.strftime("%d-%b-%Y %H:%M:%S") == dt[:20]
        day = local.strftime("%d-%b-%Y")
        assert imaplib_search(m, f"ON {day}") == [1, 2]
    m.logout()


def test_zone_recovered_by_rebuild(facteur):
    """A rebuild from the message files gives each message its zone back
    (the metadata line has it); a file written before the zone was kept
    (no zone= word) reads as +0000."""
    f = facteur
    m = imaplib_login(f)
    append_zoned(m, "R")
    m.logout()
    f.stop()
    acct = Path(f.data_dir) / "mail" / ALICE
    lines = [p.read_bytes().split(b"\n", 1)[0]
             for p in (acct / "blobs").iterdir()]
    assert sum(b" zone=-0800 " in ln for ln in lines) == 1, lines
    # an old-style file: no zone word
    data = make_message(subject="old file")
    ms = int(time.time() * 1000) & 0xffffffffffff
    blob = f"{ms:012x}{os.getpid() & 0xffff:04x}{os.urandom(8).hex()}"
    (acct / "blobs" / blob).write_bytes(
        (f"facteur-blob 1 id={blob} account={ALICE} mailbox=Old "
         f"internaldate=1795651200 size={len(data)}\n").encode() + data)
    for name in ("index.db", "index.db-wal", "index.db-shm"):
        if (acct / name).exists():
            (acct / name).unlink()
    f.start()
    m = imaplib_login(f)
    check_zoned(m, "R")
    assert internal_dates(m, "Old") == {1: "26-Nov-2026 00:00:00 +0000"}
    m.logout()
    assert "event=index-rebuilt" in f.log()


def test_index_upgraded_from_version_4(facteur):
    """An index.db of version 4 (no internal_zone) is upgraded when
    opened: what it holds shows in +0000 with its instant unchanged (as
    version 4 showed it); new messages keep their zone."""
    f = facteur
    m = imaplib_login(f)
    append_zoned(m, "U")
    m.logout()
    f.stop()
    db = sqlite3.connect(str(index_path(f)))
    db.executescript(
        "ALTER TABLE mailbox_messages DROP COLUMN internal_zone;" +
        INDEX_QUOTA_BEFORE_V6 +
        "PRAGMA user_version = 4;")
    db.close()
    f.start()
    m = imaplib_login(f)
    dates = internal_dates(m, "U")
    for i, dt in enumerate(ZONED):
        t, _ = instant(dt)
        utc = time.strftime("%d-%b-%Y %H:%M:%S +0000", time.gmtime(t))
        assert dates[i + 1] == utc, (dt, dates[i + 1])
    # the UTC day, as before the upgrade
    assert imaplib_search(m, "ON 26-Nov-2026") == []
    assert imaplib_search(m, "ON 25-Nov-2026") == [1, 3]
    typ, data = m.append("U", None, f'"{ZONED[1]}"',
                         make_message(subject="after"))
    assert typ == "OK", data
    assert internal_dates(m, "U")[6] == ZONED[1]
    m.logout()
    db = sqlite3.connect(f"file:{index_path(f)}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 7
    finally:
        db.close()
    assert "event=index-upgraded" in f.log()
