"""
"Lose nothing": `facteur user check/repair` compares an account's index.db
with its message files and repairs it while the server runs (a row whose
file is gone is expunged, a file no row names is adopted, a damaged file is
moved aside), and a missing or corrupt index.db is rebuilt from the files
at the account's next login (or by `user repair --rebuild`), the old file
kept as index.db.broken-<time>.
"""
import imaplib
import os
import poplib
import re
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from conftest import (ALICE, PASSWORDS, T, client_tls_context, expect_queued,
                      make_message, send_message, store_problems)


def deliver(f, messages, rcpt=ALICE):
    """Sends each message over SMTP; returns the stored (uid, bytes)."""
    with f.smtp() as c:
        c.ehlo()
        for m in messages:
            expect_queued(send_message(c, "sender@remote.test", rcpt, m))
    return f.wait_messages(rcpt, len(messages))


def acct_dir(f, account=ALICE):
    return Path(f.data_dir) / "mail" / account


def blob_rows(f, account=ALICE):
    """{uid: blob} of INBOX, from index.db."""
    db = sqlite3.connect(f"file:{acct_dir(f, account) / 'index.db'}?mode=ro",
                         uri=True, timeout=10)
    try:
        return dict(db.execute(
            "SELECT mm.uid, m.blob FROM mailbox_messages mm"
            " JOIN messages m ON m.id = mm.message_id"
            " JOIN mailboxes b ON b.id = mm.mailbox_id"
            " WHERE b.name = 'INBOX'").fetchall())
    finally:
        db.close()


def imap_login(f, account=ALICE):
    m = imaplib.IMAP4_SSL("127.0.0.1", f.ports["imaps"],
                          ssl_context=client_tls_context(), timeout=T(20))
    m.login(account, PASSWORDS[account])
    return m


def rebuilt_messages(f, stored):
    """After a rebuild: every stored message is back, byte for byte, with
    UIDs 1..n. Their order follows the files' write times, which within
    one group commit need not be the order of delivery, so it is not
    compared."""
    got = imap_messages(f)
    assert [uid for uid, _ in got] == list(range(1, len(stored) + 1))
    assert sorted(b for _, b in got) == sorted(s[1] for s in stored)


def imap_messages(f, mailbox="INBOX"):
    """[(uid, bytes)] of a mailbox, read over IMAP (BODY.PEEK[])."""
    m = imap_login(f)
    try:
        typ, data = m.select(f'"{mailbox}"', readonly=True)
        assert typ == "OK", (mailbox, data)
        if data[0] == b"0":
            return []
        typ, data = m.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
        assert typ == "OK", data
        out = []
        for item in data:
            if isinstance(item, tuple):
                uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
                out.append((uid, item[1]))
        return sorted(out)
    finally:
        m.logout()


def pop3_messages(f):
    p = poplib.POP3_SSL("127.0.0.1", f.ports["pop3s"],
                        context=client_tls_context(), timeout=T(20))
    try:
        assert p.user(ALICE).startswith(b"+OK")
        assert p.pass_(PASSWORDS[ALICE]).startswith(b"+OK")
        count, _ = p.stat()
        return [b"\r\n".join(p.retr(i)[1]) + b"\r\n"
                for i in range(1, count + 1)]
    finally:
        p.quit()


def write_blob(f, data, mailbox="INBOX", account=ALICE, age=600,
               date=1700000000):
    """A message file written the way store_blob.c does (a fresh id, the
    metadata line, the bytes), `age` seconds old. Returns its id."""
    ms = int(time.time() * 1000) & 0xffffffffffff
    blob = f"{ms:012x}{os.getpid() & 0xffff:04x}{os.urandom(8).hex()}"
    enc = re.sub(rb"[^A-Za-z0-9\-._~/]",
                 lambda m: b"%%%02X" % m.group(0)[0],
                 mailbox.encode()).decode()
    line = (f"facteur-blob 1 id={blob} account={account} mailbox={enc} "
            f"internaldate={date} size={len(data)}\n").encode()
    path = acct_dir(f, account) / "blobs" / blob
    path.write_bytes(line + data)
    then = time.time() - age
    os.utime(path, (then, then))
    return blob


def cli(f, *args, check=True):
    r = f.cli(*args, check=check)
    for word in ("Sanitizer", "runtime error"):
        assert word not in r.stderr, r.stderr
    return r


def repair(f, *args, check=True):
    return cli(f, "user", "repair", *args, ALICE, check=check)


def counts(out):
    """The key=value line of repair/check."""
    line = [ln for ln in out.splitlines() if ln.startswith("rows=")][-1]
    return {k: v for k, v in (w.split("=") for w in line.split())}


def snapshot(f):
    """What a dry run must not change: every row of index.db and the
    files of the account directory."""
    d = acct_dir(f)
    db = sqlite3.connect(f"file:{d / 'index.db'}?mode=ro", uri=True,
                         timeout=10)
    try:
        rows = {t: db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                for t in ("mailboxes", "messages", "mailbox_messages",
                          "expunged", "garbage", "subscriptions")}
    finally:
        db.close()
    files = sorted(str(p.relative_to(d)) for p in d.rglob("*")
                   if p.is_file() and p.name != "rebuild.lock"
                   and not p.name.startswith("index.db"))
    return rows, files


# ------------------------------------------------------------ repair

def test_missing_file_row_removed_live(facteur):
    f = facteur
    msgs = [make_message(subject=f"m{i}") for i in range(3)]
    stored = deliver(f, msgs)
    rows = blob_rows(f)
    # a session with INBOX selected while the repair runs
    live = imap_login(f)
    typ, data = live.select("INBOX")
    assert data == [b"3"]
    (acct_dir(f) / "blobs" / rows[2]).unlink()

    r = cli(f, "user", "check", ALICE, check=False)
    assert r.returncode == 1, r
    assert counts(r.stdout)["removed"] == "1"
    assert blob_rows(f) == rows  # check changes nothing

    r = repair(f)
    c = counts(r.stdout)
    assert (c["rows"], c["removed"], c["adopted"]) == ("3", "1", "0"), r
    assert blob_rows(f) == {1: rows[1], 3: rows[3]}
    # one log line per removal (the CLI logs on its standard error)
    assert re.search(r"event=repair-row-removed account=alice@example\.test "
                     r"mailbox=\"INBOX\" uid=2 file=" + rows[2], r.stderr), r

    # the live session hears of it as an expunge
    typ, data = live.noop()
    assert typ == "OK"
    assert live.response("EXPUNGE")[1] == [b"2"]
    live.logout()

    assert imap_messages(f) == [(1, stored[0][1]), (3, stored[2][1])]
    assert pop3_messages(f) == [stored[0][1], stored[2][1]]
    assert store_problems(f.data_dir, tmp_ok=True) == []
    assert counts(repair(f).stdout)["removed"] == "0"  # idempotent


def test_damaged_file_moved_aside(facteur):
    f = facteur
    stored = deliver(f, [make_message(subject="short"),
                         make_message(subject="ok")])
    rows = blob_rows(f)
    path = acct_dir(f) / "blobs" / rows[1]
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])  # short: an OS crash
    c = counts(repair(f).stdout)
    assert (c["removed"], c["damaged"], c["adopted"]) == ("1", "1", "0")
    kept = acct_dir(f) / "damaged" / rows[1]
    assert kept.read_bytes() == data[:len(data) // 2]  # kept, not deleted
    assert not path.exists()
    assert imap_messages(f) == [(2, stored[1][1])]
    assert store_problems(f.data_dir, tmp_ok=True) == []


def test_orphan_copy_adopted_byte_for_byte(facteur):
    f = facteur
    stored = deliver(f, [make_message(subject="first")])
    body = make_message(subject="orphan", body="caf\u00e9 \r\n.\r\nend\r\n")
    live = imap_login(f)
    live.select("Sent")
    live.response("EXISTS")  # what SELECT said
    blob = write_blob(f, body, mailbox="Sent")
    gone = write_blob(f, stored[0][1], mailbox="Old/Gone")
    young = write_blob(f, b"Subject: young\r\n\r\nx\r\n", age=0)

    r = repair(f)
    c = counts(r.stdout)
    assert (c["adopted"], c["young"], c["removed"]) == ("2", "1", "0"), r
    assert "repair-adopted" in r.stderr and blob in r.stderr

    typ, _ = live.noop()
    assert live.response("EXISTS")[1] == [b"1"]
    live.logout()
    assert imap_messages(f, "Sent") == [(1, body)]
    # the mailbox its line names is gone: INBOX, as a new UID
    assert imap_messages(f) == [(1, stored[0][1]), (2, stored[0][1])]
    assert blob_rows(f)[2] == gone
    # ENVELOPE and SEARCH work on the adopted message as on a delivery
    m = imap_login(f)
    m.select("Sent")
    typ, data = m.fetch("1", "(ENVELOPE)")
    assert typ == "OK" and b'"orphan"' in data[0]
    typ, data = m.search(None, "BODY", "caf")
    assert data == [b"1"]
    m.logout()
    # the young one is left for a later run, then adopted once old enough
    p = acct_dir(f) / "blobs" / young
    os.utime(p, (time.time() - 600, time.time() - 600))
    assert counts(repair(f).stdout)["adopted"] == "1"
    assert store_problems(f.data_dir, tmp_ok=True) == []


def test_real_orphan_and_garbage(facteur):
    f = facteur
    stored = deliver(f, [make_message(subject=f"g{i}") for i in range(2)])
    rows = blob_rows(f)
    old = time.time() - 600
    os.utime(acct_dir(f) / "blobs" / rows[2], (old, old))
    db = sqlite3.connect(str(acct_dir(f) / "index.db"), timeout=10)
    with db:
        # as an expunge does: the trigger queues the file for deletion
        db.execute("DELETE FROM mailbox_messages WHERE uid = 2 AND "
                   "mailbox_id = (SELECT id FROM mailboxes "
                   "WHERE name = 'INBOX')")
    assert db.execute("SELECT blob FROM garbage").fetchall() == [(rows[2],)]
    c = counts(repair(f).stdout)
    # queued for deletion: not an orphan
    assert (c["adopted"], c["garbage"]) == ("0", "1")
    with db:
        # an OS crash between the file and its commit: no row, no garbage
        db.execute("DELETE FROM garbage")
    db.close()
    c = counts(repair(f).stdout)
    assert c["adopted"] == "1"
    assert imap_messages(f) == [(1, stored[0][1]), (3, stored[1][1])]
    assert store_problems(f.data_dir, tmp_ok=True) == []


def test_dry_run_changes_nothing(facteur):
    f = facteur
    deliver(f, [make_message(subject=f"d{i}") for i in range(3)])
    rows = blob_rows(f)
    (acct_dir(f) / "blobs" / rows[1]).unlink()
    write_blob(f, make_message(subject="orphan"))
    before = snapshot(f)
    r = repair(f, "--dry-run")
    assert "dry run" in r.stdout
    c = counts(r.stdout)
    assert (c["removed"], c["adopted"]) == ("1", "1")
    assert snapshot(f) == before
    r = repair(f, "--rebuild", "--dry-run")
    assert counts(r.stdout)["rebuilt"] == "yes" and snapshot(f) == before
    assert not list(acct_dir(f).glob("index.db.broken-*"))


def test_bad_arguments(facteur):
    f = facteur
    for args in (["user", "repair", "--bogus", ALICE],
                 ["user", "repair", "nobody@example.test"],
                 ["user", "check", "--dry-run", ALICE]):
        r = cli(f, *args, check=False)
        assert r.returncode != 0, args
        assert r.stdout == "", args


# ------------------------------------------------------------ rebuild

def corrupt(path, how):
    if how == "missing":
        path.unlink()
    elif how == "garbage":
        size = path.stat().st_size
        path.write_bytes(os.urandom(size))
    elif how == "zero":
        path.write_bytes(b"")
    elif how == "half":
        data = path.read_bytes()
        # keep the header page, lose the rest
        path.write_bytes(data[:4096] + b"\x5a" * (len(data) - 4096))


@pytest.mark.parametrize("how", ["garbage", "missing", "zero", "half"])
def test_broken_index_rebuilt_at_next_start(facteur, how):
    f = facteur
    msgs = [make_message(subject=f"r{i}") for i in range(3)]
    stored = deliver(f, msgs)
    m = imap_login(f)
    assert m.create("Projects/2024")[0] == "OK"
    kept = make_message(subject="appended")
    assert m.append("Projects/2024", "(\\Seen)", None, kept)[0] == "OK"
    typ, data = m.status("INBOX", "(UIDVALIDITY)")
    old_uv = re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1)
    m.logout()
    f.stop()
    index = acct_dir(f) / "index.db"
    for extra in ("index.db-wal", "index.db-shm"):
        assert not (acct_dir(f) / extra).exists() or how != "missing"
    original = index.read_bytes()
    corrupt(index, how)
    damaged = index.read_bytes() if index.exists() else None
    f.start()

    rebuilt_messages(f, stored)
    assert [b for _, b in imap_messages(f, "Projects/2024")] == [kept]
    assert sorted(pop3_messages(f)) == sorted(s[1] for s in stored)
    m = imap_login(f)
    typ, data = m.status("INBOX", "(UIDVALIDITY)")
    assert re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1) != old_uv
    typ, data = m.list()
    names = b"\n".join(data)
    for special in (b"\\Sent", b"\\Drafts", b"\\Trash", b"\\Junk",
                    b"\\Archive"):
        assert special in names
    m.logout()
    log = f.log()
    assert re.search(r"event=index-rebuilt account=alice@example\.test .*"
                     r"messages=4 .*flags and keywords are lost", log), log
    broken = list(acct_dir(f).glob("index.db.broken-*"))
    if how == "missing":
        assert broken == []
    else:
        assert [p.read_bytes() for p in broken
                if not p.name.endswith(("-wal", "-shm"))] == [damaged]
        assert damaged != original
    assert store_problems(f.data_dir, tmp_ok=True) == []
    # a new delivery lands in the rebuilt index
    more = deliver(f, [make_message(subject="after")])
    assert len(more) == 4


def test_rebuild_command(facteur):
    f = facteur
    stored = deliver(f, [make_message(subject=f"c{i}") for i in range(2)])
    r = repair(f, "--rebuild", check=False)
    assert r.returncode == 1 and "server is running" in r.stderr
    assert not list(acct_dir(f).glob("index.db.broken-*"))
    f.stop()
    r = repair(f, "--rebuild")
    c = counts(r.stdout)
    assert (c["rebuilt"], c["adopted"]) == ("yes", "2"), r
    # the old file, with its -wal and -shm if it had them
    assert len([p for p in acct_dir(f).glob("index.db.broken-*")
                if not p.name.endswith(("-wal", "-shm"))]) == 1
    f.start()
    rebuilt_messages(f, stored)
    assert store_problems(f.data_dir, tmp_ok=True) == []


def test_delivery_after_a_rebuild_at_login_goes_to_the_new_index(facteur):
    """index.db removed under a running server: the next login rebuilds it,
    and a delivery after that lands in the new index, not in the file the
    commit thread had open before (it notices the new inode)."""
    f = facteur
    first = deliver(f, [make_message(subject="before")])
    for name in ("index.db", "index.db-wal", "index.db-shm"):
        p = acct_dir(f) / name
        if p.exists():
            p.unlink()
    rebuilt_messages(f, first)  # this login rebuilds
    m = make_message(subject="after the rebuild")
    with f.smtp() as c:
        c.ehlo()
        expect_queued(send_message(c, "sender@remote.test", ALICE, m))
    got = [b for _, b in imap_messages(f)]
    assert len(got) == 2 and b"Subject: after the rebuild" in got[1], got


def test_deliveries_during_rebuilds_at_login_all_land(facteur):
    """Deliveries keep coming while the index is rebuilt at logins: each one
    answered 250 is in the rebuilt index, each one refused was refused for
    a retry (4xx), and its retry stored it once. (The interleaving where a
    delivery would go into the index being set aside is not forced here:
    src/store/store_commit_test.c holds index.lock as a rebuild does.)"""
    f = facteur
    first = make_message(subject="first")
    deliver(f, [first])
    acked, errors = [], []
    stop = threading.Event()

    def sender():
        try:
            with f.smtp() as c:
                c.ehlo()
                i = 0
                while not stop.is_set():
                    m = make_message(subject=f"during {i}")
                    for _ in range(200):
                        r = send_message(c, "sender@remote.test", ALICE, m)
                        if r.code == 250:
                            acked.append(m)
                            break
                        assert 400 <= r.code < 500, r.text
                        time.sleep(0.01)
                    else:
                        raise AssertionError(f"message {i} never stored")
                    i += 1
        except Exception as e:  # reported by the main thread
            errors.append(e)

    t = threading.Thread(target=sender)
    t.start()
    try:
        for _ in range(4):
            time.sleep(0.1)
            for name in ("index.db", "index.db-wal", "index.db-shm"):
                p = acct_dir(f) / name
                if p.exists():
                    p.unlink()
            imap_login(f).logout()  # this login rebuilds
    finally:
        stop.set()
        t.join(T(60))
    assert not errors, errors
    assert len(acked) > 10, len(acked)
    got = [b for _, b in imap_messages(f)]
    # what was sent, below the Return-Path: and Received: lines
    assert sorted(b[b.index(b"From: "):] for b in got) == \
        sorted([first] + acked)
    assert f.log().count("event=index-rebuilt") >= 4


def test_sessions_open_during_a_rebuild_follow_it(facteur):
    """A rebuild at one session's login sets the old index aside; sessions
    opened before it do not go on with that file: one with a mailbox
    selected is told BYE at its next command (the mailbox has a new
    UIDVALIDITY), one without a mailbox sees the new index, and a POP3
    session's deletions are refused at QUIT ([SYS/TEMP]) rather than
    made in the file set aside."""
    f = facteur
    deliver(f, [make_message(subject="one")])
    selected = imap_login(f)
    assert selected.select("INBOX")[0] == "OK"
    authed = imap_login(f)
    assert authed.status("INBOX", "(MESSAGES)")[0] == "OK"
    pop = poplib.POP3_SSL("127.0.0.1", f.ports["pop3s"],
                          context=client_tls_context(), timeout=T(20))
    pop.user(ALICE)
    pop.pass_(PASSWORDS[ALICE])
    assert pop.dele(1).startswith(b"+OK")

    for name in ("index.db", "index.db-wal", "index.db-shm"):
        p = acct_dir(f) / name
        if p.exists():
            p.unlink()
    imap_login(f).logout()  # this login rebuilds
    with f.smtp() as c:
        c.ehlo()
        expect_queued(send_message(c, "sender@remote.test", ALICE,
                                   make_message(subject="two")))

    typ, data = authed.status("INBOX", "(MESSAGES)")
    assert typ == "OK" and b"(MESSAGES 2)" in data[0], data
    authed.logout()
    with pytest.raises(imaplib.IMAP4.abort, match="rebuilt"):
        selected.noop()
    with pytest.raises(poplib.error_proto, match=r"SYS/TEMP"):
        pop.quit()
    assert [b[b.index(b"Subject: "):b.index(b"Subject: ") + 12]
            for _, b in imap_messages(f)] == [b"Subject: one", b"Subject: two"]
