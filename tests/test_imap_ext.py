"""
IMAP extensions: CONDSTORE and QRESYNC (RFC 7162: ENABLE, HIGHESTMODSEQ,
FETCH MODSEQ and CHANGEDSINCE, STORE UNCHANGEDSINCE and [MODIFIED],
SEARCH MODSEQ, VANISHED, SELECT QRESYNC), QUOTA (RFC 9208) with the limit
enforced on APPEND and COPY.
"""
import re
import sqlite3

from conftest import ALICE, make_message
from test_imap_util import INDEX_QUOTA_BEFORE_V6, imap, parse_fetch


def append(c, mbox="INBOX", subject="x", size=0):
    m = make_message(subject=subject, body="z" * size + "\r\n")
    return c.cmd(f"APPEND {mbox} {{{len(m)}}}", m + b"\r\n")


def modseq_of(resp):
    m = re.search(rb"MODSEQ \((\d+)\)", resp)
    return int(m.group(1))


def test_condstore(facteur):
    c = imap(facteur)
    for i in range(3):
        append(c, subject=f"c{i}")
    assert c.ok("ENABLE CONDSTORE") == [b"* ENABLED CONDSTORE"]
    u = c.ok("SELECT INBOX")
    m = re.search(rb"\* OK \[HIGHESTMODSEQ (\d+)\]", b"\n".join(u))
    assert m, u
    highest = int(m.group(1))
    u = c.ok("FETCH 1:3 (MODSEQ)")
    mods = [modseq_of(r) for r in u]
    assert max(mods) <= highest
    u = c.ok("STORE 2 +FLAGS (\\Seen)")
    assert re.match(rb"\* 2 FETCH \(FLAGS \(\\Seen( \\Recent)?\) MODSEQ "
                    rb"\(\d+\)\)", u[0]), u
    new = modseq_of(u[0])
    assert new > highest
    u = c.ok(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})")
    assert len(u) == 1 and u[0].startswith(b"* 2 FETCH"), u
    assert b"MODSEQ" in u[0]
    # conditional store: message 1 unchanged since `highest`, 2 not
    untagged, tagged = c.cmd(f"STORE 1:2 (UNCHANGEDSINCE {highest}) "
                             "+FLAGS (\\Flagged)")
    assert re.search(rb"OK \[MODIFIED 2\]", tagged), tagged
    assert any(r.startswith(b"* 1 FETCH") for r in untagged), untagged
    untagged, tagged = c.cmd("UID STORE 1:2 (UNCHANGEDSINCE 1) FLAGS ()")
    assert b"[MODIFIED 1:2]" in tagged, tagged
    u = c.ok(f"SEARCH MODSEQ {new}")
    assert re.match(rb"\* SEARCH 1 2 \(MODSEQ \d+\)", u[0]), u
    u = c.ok("STATUS INBOX (HIGHESTMODSEQ)")
    assert re.match(rb"\* STATUS INBOX \(HIGHESTMODSEQ \d+\)", u[0])
    c.close()


def test_condstore_unsolicited_modseq(facteur):
    a = imap(facteur)
    b = imap(facteur)
    append(a)
    a.ok("SELECT INBOX (CONDSTORE)")
    b.ok("SELECT INBOX")
    b.ok("STORE 1 +FLAGS (\\Answered)")
    u = a.ok("NOOP")
    # A selected first: the message appended before is \Recent to A
    assert re.match(rb"\* 1 FETCH \(FLAGS \(\\Answered \\Recent\) MODSEQ "
                    rb"\(\d+\)\)", u[0]), u
    a.close()
    b.close()


def test_qresync(facteur):
    c = imap(facteur)
    for i in range(5):
        append(c, subject=f"q{i}")
    u = c.ok("SELECT INBOX")
    uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", b" ".join(u))
                      .group(1))
    st = c.ok("STATUS INBOX (HIGHESTMODSEQ)")
    since = int(re.search(rb"HIGHESTMODSEQ (\d+)", st[0]).group(1))
    c.ok("STORE 2 +FLAGS (\\Seen)")
    c.ok("STORE 4,5 +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    c.close()

    d = imap(facteur)
    assert d.status("SELECT INBOX (QRESYNC (1 1))")[0] == "BAD"
    assert d.ok("ENABLE QRESYNC") == [b"* ENABLED QRESYNC"]
    u = d.ok(f"SELECT INBOX (QRESYNC ({uidvalidity} {since}))")
    assert b"* VANISHED (EARLIER) 4:5" in u, u
    f = [r for r in u if b"FETCH" in r]
    assert len(f) == 1 and f[0].startswith(b"* 2 FETCH (UID 2 FLAGS (\\Seen")
    assert b"MODSEQ" in f[0]
    # known UIDs limit what is said
    u = d.ok(f"SELECT INBOX (QRESYNC ({uidvalidity} {since} 1:4))")
    assert b"* OK [CLOSED] Previous mailbox closed" in u
    assert b"* VANISHED (EARLIER) 4" in u, u
    # another UIDVALIDITY: nothing more
    u = d.ok(f"SELECT INBOX (QRESYNC ({uidvalidity + 1} {since}))")
    assert not any(b"VANISHED" in r or b"FETCH" in r for r in u), u
    # UID FETCH ... (CHANGEDSINCE m VANISHED)
    u = d.ok(f"UID FETCH 1:* FLAGS (CHANGEDSINCE {since} VANISHED)")
    assert u[0] == b"* VANISHED (EARLIER) 4:5", u
    assert u[1].startswith(b"* 2 FETCH (UID 2 FLAGS"), u
    assert d.status("FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)")[0] == "BAD"
    # with QRESYNC, expunges are told as VANISHED
    d.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert d.ok("EXPUNGE") == [b"* VANISHED 1"]
    d.close()


def test_quota(make_facteur):
    f = make_facteur(config={"quota_storage": "20K"})
    c = imap(f)
    caps = c.ok("CAPABILITY")[0]
    assert b"QUOTA" in caps and b"QUOTA=RES-STORAGE" in caps
    append(c, size=4000)
    u = c.ok("GETQUOTAROOT INBOX")
    assert u[0] == b'* QUOTAROOT INBOX ""', u
    m = re.match(rb'\* QUOTA "" \(STORAGE (\d+) 20\)', u[1])
    assert m and 4 <= int(m.group(1)) <= 5, u
    u = c.ok('GETQUOTA ""')
    assert re.match(rb'\* QUOTA "" \(STORAGE \d+ 20\)', u[0])
    assert c.status('GETQUOTA "other"')[0] == "NO"
    st, tagged, _ = c.status('SETQUOTA "" (STORAGE 100)')
    assert st == "NO"
    # over the limit: APPEND and COPY refused with [OVERQUOTA]
    for i in range(3):
        append(c, size=4000)
    untagged, tagged = append(c, size=8000)
    assert b"NO [OVERQUOTA]" in tagged, tagged
    c.ok("SELECT INBOX")
    st, tagged, _ = c.status("COPY 1:* INBOX")
    assert st == "NO" and b"[OVERQUOTA]" in tagged, tagged
    c.close()


def test_quota_after_upgrade_to_version_6(make_facteur):
    """An index of version 5 kept the quota in a row; version 6 sums the
    mailboxes instead: the upgrade drops the row, and GETQUOTA gives the
    same usage before and after, then follows APPEND and EXPUNGE."""
    f = make_facteur(config={"quota_storage": "1M"})
    c = imap(f)
    for size in (3000, 5000, 9000):
        append(c, size=size)
    c.ok("CREATE Other")
    append(c, mbox="Other", size=7000)
    before = c.ok('GETQUOTA ""')
    c.close()
    f.stop()
    db_path = f.data_dir / "mail" / ALICE / "index.db"
    db = sqlite3.connect(str(db_path))
    db.executescript(INDEX_QUOTA_BEFORE_V6 + "PRAGMA user_version = 5;")
    db.close()
    f.start()
    c = imap(f)
    assert c.ok('GETQUOTA ""') == before
    used = int(re.search(rb"STORAGE (\d+)", before[0]).group(1))
    append(c, size=20000)
    c.ok("SELECT Other")
    c.ok("STORE 1 +FLAGS (\\Deleted)")
    c.ok("EXPUNGE")
    after = int(re.search(rb"STORAGE (\d+)",
                          c.ok('GETQUOTA ""')[0]).group(1))
    assert after - used in (12, 13, 14), (used, after)
    c.close()
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 7
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE "
                          "name = 'quota'").fetchone()[0] == 0
    finally:
        db.close()


def test_no_quota(facteur):
    c = imap(facteur)
    assert c.ok("GETQUOTAROOT INBOX") == [b"* QUOTAROOT INBOX"]
    assert c.status('GETQUOTA ""')[0] == "NO"
    c.close()


def test_imap4rev2(facteur):
    c = imap(facteur)
    caps = c.ok("CAPABILITY")[0]
    assert b" IMAP4rev1 IMAP4rev2 " in caps
    append(c, subject="r2")
    assert c.ok("ENABLE IMAP4rev2") == [b"* ENABLED IMAP4rev2"]
    u = c.ok("SELECT INBOX")
    assert not any(b"RECENT" in r or b"UNSEEN" in r for r in u), u
    assert b'* LIST (\\HasNoChildren) "/" INBOX' in u, u
    seq, it = parse_fetch(c.ok("FETCH 1 FLAGS")[0])
    assert b"\\Recent" not in it["FLAGS"]
    u = c.ok("SEARCH ALL")
    assert re.match(rb'\* ESEARCH \(TAG "a\d+"\) ALL 1$', u[0]), u
    u = c.ok("UID SEARCH SUBJECT nothing-here")
    assert re.match(rb'\* ESEARCH \(TAG "a\d+"\) UID$', u[0]), u
    # mailbox names are UTF-8 in IMAP4rev2
    c.ok('CREATE "Entwürfe"'.encode())
    u = c.ok('LIST "" "Entw*"')
    assert u == ['* LIST (\\HasNoChildren) "/" "Entwürfe"'.encode()], u
    u = c.ok("SELECT INBOX")
    assert u[0] == b"* OK [CLOSED] Previous mailbox closed", u
    c.close()
