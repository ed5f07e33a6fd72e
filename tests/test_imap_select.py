"""
SELECT and EXAMINE on the mailbox's counters (the message array is loaded
by the first command that needs sequence numbers), and \\Recent kept in the
store: messages that no session has seen are \\Recent to the first one,
also after a restart, and never to two sessions (RFC 3501 §2.3.2, §6.3.1).
"""
import re
import sqlite3
import time

from conftest import ALICE
from test_imap_util import INDEX_QUOTA_BEFORE_V6, imap


def append(c, mbox="INBOX", subject="x", flags=""):
    m = (f"From: a@example.test\r\nSubject: {subject}\r\n\r\n"
         f"body {subject}\r\n").encode()
    f = f"({flags}) " if flags else ""
    return c.ok(f"APPEND {mbox} {f}{{{len(m)}}}", m + b"\r\n")


def select(c, what="SELECT INBOX"):
    """The untagged responses of SELECT as a dict of what it says."""
    u = c.ok(what)
    out = {"raw": u}
    for r in u:
        m = re.match(rb"\* (\d+) (EXISTS|RECENT)$", r)
        if m:
            out[m.group(2).decode()] = int(m.group(1))
        m = re.match(rb"\* OK \[(UNSEEN|UIDNEXT|UIDVALIDITY|HIGHESTMODSEQ) "
                     rb"(\d+)\]", r)
        if m:
            out[m.group(1).decode()] = int(m.group(2))
        if r.startswith(b"* FLAGS "):
            out["FLAGS"] = r[8:]
    return out


def flags_of(c, seqs="1:*"):
    """{uid: flags} from a FETCH."""
    out = {}
    for r in c.ok(f"FETCH {seqs} (UID FLAGS)"):
        m = re.match(rb"\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\)\)", r)
        assert m, r
        out[int(m.group(1))] = set(m.group(2).split())
    return out


def index_db(f):
    return f.data_dir / "mail" / ALICE / "index.db"


def test_select_answers_from_counters(facteur):
    """EXISTS, UNSEEN (counted from either side of the first unseen
    message), FLAGS with the keywords in use, UIDNEXT, HIGHESTMODSEQ; the
    array comes when a command needs it."""
    c = imap(facteur)
    for i in range(8):
        append(c, subject=f"s{i}",
               flags="\\Seen" if i not in (2, 6, 7) else "")
    c.ok("SELECT INBOX")
    c.ok("STORE 4 +FLAGS ($Work)")
    c.ok("STORE 5 +FLAGS ($Work Later)")
    c.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")  # UID 2 goes: UID 3 is now message 2
    c.ok("UNSELECT")
    with imap(facteur) as d:
        s = select(d, "SELECT INBOX (CONDSTORE)")
        assert s["EXISTS"] == 7 and s["UNSEEN"] == 2, s["raw"]
        assert s["UIDNEXT"] == 9 and "HIGHESTMODSEQ" in s, s["raw"]
        assert b"$Work" in s["FLAGS"] and b"Later" in s["FLAGS"], s["raw"]
        got = flags_of(d)
        assert sorted(got) == [1, 3, 4, 5, 6, 7, 8]
        assert got[5] == {b"\\Seen", b"$Work", b"Later"}, got
    # the first unseen message near the end: counted from the end
    c.ok("SELECT INBOX")
    c.ok("STORE 2 +FLAGS.SILENT (\\Seen)")
    c.ok("UNSELECT")
    with imap(facteur) as d:
        s = select(d)
        assert s["EXISTS"] == 7 and s["UNSEEN"] == 6, s["raw"]
        assert d.ok("FETCH 6 UID") == [b"* 6 FETCH (UID 7)"]
    # nothing unseen: no UNSEEN
    c.ok("SELECT INBOX")
    c.ok("STORE 1:* +FLAGS.SILENT (\\Seen)")
    c.ok("UNSELECT")
    with imap(facteur) as d:
        s = select(d, "EXAMINE INBOX")
        assert s["EXISTS"] == 7 and "UNSEEN" not in s, s["raw"]
    # an empty mailbox
    c.ok("CREATE Empty")
    with imap(facteur) as d:
        s = select(d, "SELECT Empty")
        assert s["EXISTS"] == 0 and s["RECENT"] == 0, s["raw"]
        assert "UNSEEN" not in s and s["UIDNEXT"] == 1, s["raw"]
        assert d.status("FETCH 1 UID")[0] == "BAD"
    c.close()


def test_news_before_the_array_is_loaded(facteur):
    """A session that selected and has run no command with sequence
    numbers yet hears of new messages, flag changes and expunges with the
    right numbers."""
    a = imap(facteur)
    b = imap(facteur)
    for i in range(3):
        append(b, subject=f"n{i}")
    assert select(a)["RECENT"] == 3
    b.ok("SELECT INBOX")
    u = append(b, subject="new")
    assert u == [b"* 4 EXISTS", b"* 1 RECENT"], u  # B saw it first
    assert a.ok("NOOP") == [b"* 4 EXISTS", b"* 3 RECENT"]
    u = append(b, subject="later")
    assert u == [b"* 5 EXISTS", b"* 2 RECENT"], u
    b.ok("STORE 2 +FLAGS (\\Flagged)")
    u = a.ok("NOOP")
    assert u == [b"* 5 EXISTS", b"* 3 RECENT",
                 b"* 2 FETCH (FLAGS (\\Flagged \\Recent))"], u
    a.ok("UNSELECT")
    assert select(a)["RECENT"] == 0  # none is new to A any more
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    u = a.ok("NOOP")
    assert u == [b"* 1 EXPUNGE"], u
    assert a.ok("FETCH 1:* UID") == [b"* 1 FETCH (UID 2)",
                                     b"* 2 FETCH (UID 3)",
                                     b"* 3 FETCH (UID 4)",
                                     b"* 4 FETCH (UID 5)"]
    # IDLE right after SELECT: a delivery is told at once
    a.ok("SELECT INBOX")
    a.send("i IDLE\r\n")
    assert a.response() == b"+ idling"
    append(b, subject="idle")
    assert a.response() == b"* 5 EXISTS"
    assert a.response() in (b"* 0 RECENT", b"* 1 RECENT")
    a.send("DONE\r\n")
    assert a.response() == b"i OK IDLE terminated"
    assert a.ok("FETCH 5 UID") == [b"* 5 FETCH (UID 6)"]
    a.close()
    b.close()


def test_recent_once_and_across_restart(facteur):
    """Messages stored while no session watched are \\Recent to the first
    session that selects, also after a restart; never to a second one; and
    EXAMINE or an IMAP4rev2 session claims nothing."""
    c = imap(facteur)
    append(c, subject="r1")
    append(c, subject="r2")
    c.close()
    facteur.stop()
    facteur.restart()
    with imap(facteur) as e:  # EXAMINE looks without taking
        assert select(e, "EXAMINE INBOX")["RECENT"] == 0
    with imap(facteur) as r2:  # nor does IMAP4rev2
        r2.ok("ENABLE IMAP4rev2")
        assert "RECENT" not in select(r2)
    a = imap(facteur)
    s = select(a)
    assert s["EXISTS"] == 2 and s["RECENT"] == 2, s["raw"]
    assert flags_of(a) == {1: {b"\\Recent"}, 2: {b"\\Recent"}}
    with imap(facteur) as b:
        assert select(b)["RECENT"] == 0
        assert b.ok("SEARCH RECENT") == [b"* SEARCH"]
    a.close()
    # claimed before the restart: recent to nobody after it
    facteur.stop()
    facteur.restart()
    with imap(facteur) as b:
        append(b, subject="r3")
        s = select(b)
        assert s["EXISTS"] == 3 and s["RECENT"] == 1, s["raw"]
        assert b.ok("SEARCH RECENT") == [b"* SEARCH 3"]
    # a kill -9 right after a claim does not give it again: the claim is
    # in the WAL file when its transaction ends (flushed to the disk with
    # the next delivery's commit)
    with imap(facteur) as b:
        append(b, subject="r4")
        assert select(b)["RECENT"] == 1
        append(b, subject="r5")  # B sees it first: a claim, then a flush
    facteur.kill9()
    facteur.restart()
    with imap(facteur) as b:
        assert select(b)["RECENT"] == 0
        assert b.ok("SEARCH RECENT") == [b"* SEARCH"]


def test_recent_of_a_mailbox_made_again(facteur):
    """A mailbox deleted and created again starts with nothing claimed."""
    c = imap(facteur)
    c.ok("CREATE Again")
    append(c, mbox="Again", subject="a1")
    assert select(c, "SELECT Again")["RECENT"] == 1
    c.ok("UNSELECT")
    c.ok("DELETE Again")
    c.ok("CREATE Again")
    append(c, mbox="Again", subject="a2")
    s = select(c, "SELECT Again")
    assert s["EXISTS"] == 1 and s["RECENT"] == 1, s["raw"]
    c.close()


def test_index_upgraded_from_version_3(facteur):
    """An index.db of schema version 3 (no recent_uid, no partial indexes)
    is upgraded when opened: what it holds is recent to nobody, and SELECT
    answers as before."""
    c = imap(facteur)
    for i in range(4):
        append(c, subject=f"u{i}", flags="\\Seen" if i < 2 else "")
    c.close()
    facteur.stop()
    db = sqlite3.connect(str(index_db(facteur)))
    db.executescript(
        "DROP INDEX mailbox_messages_unseen;"
        "DROP INDEX mailbox_messages_keywords;"
        "ALTER TABLE mailboxes DROP COLUMN recent_uid;"
        "ALTER TABLE mailbox_messages DROP COLUMN internal_zone;" +
        INDEX_QUOTA_BEFORE_V6 +
        "PRAGMA user_version = 3;")
    db.close()
    facteur.restart()
    with imap(facteur) as d:
        s = select(d)
        assert s["EXISTS"] == 4 and s["UNSEEN"] == 3, s["raw"]
        assert s["RECENT"] == 0, s["raw"]
        # appended into the selected mailbox: told, and \Recent to it
        assert append(d, subject="after") == [b"* 5 EXISTS", b"* 1 RECENT"]
        assert d.ok("SEARCH RECENT") == [b"* SEARCH 5"]
    db = sqlite3.connect(str(index_db(facteur)))
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 7
        names = {r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"mailbox_messages_unseen",
                "mailbox_messages_keywords"} <= names, names
        assert db.execute("SELECT recent_uid FROM mailboxes WHERE "
                          "name = 'INBOX'").fetchone()[0] == 5
    finally:
        db.close()
    assert "event=index-upgraded" in facteur.log()


def test_news_taken_in_while_the_array_is_given_back(facteur):
    """A message that arrives after a command and before the session gives
    its array back (10 s without a command) is told at the next NOOP."""
    a = imap(facteur)
    b = imap(facteur)
    append(b, subject="old")
    a.ok("SELECT INBOX")
    assert a.ok("FETCH 1 UID") == [b"* 1 FETCH (UID 1)"]  # array loaded
    append(b, subject="new")
    time.sleep(11)  # A's array is given back, with the news in it
    u = a.ok("NOOP")
    assert u[:1] == [b"* 2 EXISTS"], u
    assert a.ok("FETCH 2 UID") == [b"* 2 FETCH (UID 2)"]
    a.close()
    b.close()
