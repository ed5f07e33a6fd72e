"""
Load and durability: 200 concurrent sessions delivering 2,000 messages
(all stored, intact); kill -9 during a flood, then a restart (every message
that got its 250 is there, intact); a full disk (452 4.3.1, nothing
half-stored, the server goes on).
"""
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import (ALICE, BOB, QUEUED, T, assert_stored_intact, expect,
                      expect_queued, make_message, message_id,
                      send_message, split_trace, store_problems, wait_until)

SENDER = "flood@remote.test"


def flood_message(i, rcpt, size=600):
    tag = uuid.uuid4().hex
    body = (f"message {i} {tag}\r\n" +
            ("lorem ipsum dolor sit amet " * 3 + "\r\n") *
            max(1, size // 83))
    return make_message(SENDER, rcpt, subject=f"flood {i}",
                        msgid=f"<flood-{i}-{tag}@client.test>", body=body)


def stored_by_msgid(f, accounts):
    """{Message-ID: [stored bytes, ...]} over the accounts' INBOXes."""
    out = {}
    for acct in accounts:
        for _, m in f.mailbox(acct):
            _, rest = split_trace(m)
            out.setdefault(message_id(rest), []).append(m)
    return out


def test_200_concurrent_sessions_2000_messages(facteur):
    f = facteur
    sessions, per_session = 200, 10
    barrier = threading.Barrier(sessions + 1, timeout=T(60))
    sent = {}  # msgid -> (rcpt, message)
    errors = []
    lock = threading.Lock()

    def session(n):
        try:
            c = f.smtp(timeout=T(60))
            c.ehlo(f"client{n}.test")
            barrier.wait()
            for k in range(per_session):
                i = n * per_session + k
                rcpt = ALICE if i % 2 else BOB
                msg = flood_message(i, rcpt)
                expect_queued(send_message(c, SENDER, rcpt, msg))
                with lock:
                    sent[message_id(msg)] = (rcpt, msg)
            expect(c.cmd("QUIT"), 221)
            c.close()
        except BaseException as e:  # noqa: B902 - reported below
            with lock:
                errors.append(f"session {n}: {e!r}")
            try:
                barrier.abort()
            except Exception:
                pass

    threads = [threading.Thread(target=session, args=(n,))
               for n in range(sessions)]
    start = time.monotonic()
    for t in threads:
        t.start()
    try:
        barrier.wait()  # all 200 sessions are open at once
    except threading.BrokenBarrierError:
        pass  # a session failed: reported below
    for t in threads:
        t.join(T(120))
    took = time.monotonic() - start
    assert not any(t.is_alive() for t in threads), "sessions hung"
    assert not errors, f"{len(errors)} sessions failed: {errors[:5]}"
    assert len(sent) == sessions * per_session
    stored = stored_by_msgid(f, [ALICE, BOB])
    missing = [m for m in sent if m not in stored]
    assert not missing, f"{len(missing)} acknowledged messages missing"
    for mid, (rcpt, msg) in sent.items():
        copies = stored[mid]
        assert len(copies) == 1, f"{mid}: {len(copies)} copies"
        assert_stored_intact(copies[0], msg, sender=SENDER)
    assert len(f.mailbox(ALICE)) + len(f.mailbox(BOB)) == len(sent)
    assert store_problems(f.data_dir) == []
    print(f"2000 messages over 200 sessions in {took:.1f}s")


def test_kill9_during_flood_loses_nothing_acknowledged(facteur):
    f = facteur
    sessions = 40
    acked = {}  # msgid -> message
    in_flight = {}  # msgid -> message sent without (yet) a reply
    lock = threading.Lock()
    stop = threading.Event()

    def session(n):
        i = 0
        try:
            c = f.smtp(timeout=T(30))
            c.ehlo()
            while not stop.is_set():
                rcpt = ALICE if (n + i) % 2 else BOB
                msg = flood_message(n * 100000 + i, rcpt, size=2000)
                mid = message_id(msg)
                with lock:
                    in_flight[mid] = msg
                r = send_message(c, SENDER, rcpt, msg)
                if QUEUED.match(r.lines[-1]):
                    with lock:
                        acked[mid] = msg
                        del in_flight[mid]
                i += 1
        except (OSError, EOFError, AssertionError):
            pass  # the server was killed under us

    threads = [threading.Thread(target=session, args=(n,))
               for n in range(sessions)]
    for t in threads:
        t.start()
    wait_until(lambda: len(acked) >= 300 or
               not any(t.is_alive() for t in threads),
               T(60), "300 acknowledged messages")
    f.kill9()
    stop.set()
    for t in threads:
        t.join(T(40))
    assert not any(t.is_alive() for t in threads)
    assert len(acked) >= 300, f"only {len(acked)} acknowledged before the " \
        "flood stopped by itself"
    f.restart()
    stored = stored_by_msgid(f, [ALICE, BOB])
    missing = [m for m in acked if m not in stored]
    assert not missing, \
        f"{len(missing)} of {len(acked)} acknowledged messages lost " \
        f"after kill -9, e.g. {missing[:3]}"
    for mid, msg in acked.items():
        assert len(stored[mid]) == 1, f"{mid}: {len(stored[mid])} copies"
        assert_stored_intact(stored[mid][0], msg, sender=SENDER)
    # whatever else is there was in flight, and is whole
    for mid, copies in stored.items():
        if mid in acked:
            continue
        assert mid in in_flight, f"stored message {mid} was never sent"
        for m in copies:
            assert_stored_intact(m, in_flight[mid], sender=SENDER)
    # files of an interrupted batch may remain (tmp/, or a blob the index
    # never got): the index itself must be whole
    assert store_problems(f.data_dir, orphans_ok=True, tmp_ok=True) == []
    # and the server works after the restart
    msg = make_message(SENDER, ALICE, subject="after restart")
    with f.smtp() as c:
        c.ehlo()
        expect_queued(send_message(c, SENDER, ALICE, msg))
    print(f"{len(acked)} acknowledged, {len(in_flight)} in flight at the "
          f"kill, {len(stored)} stored")


@pytest.fixture
def tmpfs_dir():
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    d = Path(tempfile.mkdtemp(prefix="facteur-full-"))
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755",
                        "tmpfs", str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        d.rmdir()
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    yield d
    r = subprocess.run(["umount", str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run(["umount", "-l", str(d)])
    shutil.rmtree(d, ignore_errors=True)


def test_full_disk_452_and_nothing_half_stored(tmpfs_dir, make_facteur):
    f = make_facteur(data_dir=tmpfs_dir / "data")
    # fill the file system, leaving about 300 KB
    filler = tmpfs_dir / "filler"
    st = os.statvfs(tmpfs_dir)
    free = st.f_bavail * st.f_frsize
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, free - 300 * 1024))
    acked, refused = [], None
    with f.smtp() as c:
        c.ehlo()
        for i in range(60):
            msg = flood_message(i, ALICE, size=40 * 1024)
            r = expect(c.cmd(f"MAIL FROM:<{SENDER}>"), (250, 452))
            if r.code == 250:
                r = c.cmd(f"RCPT TO:<{ALICE}>")
            if r.code == 250:
                r = c.cmd("DATA")
                if r.code == 354:
                    c.send(msg.replace(b"\r\n.", b"\r\n..") + b".\r\n")
                    r = c.reply()
            if r.code == 250:
                expect_queued(r)
                acked.append(msg)
                continue
            refused = r
            break
        assert refused is not None, \
            "60 messages of 40 KB went into 300 KB of free space"
        expect(refused, 452, "4.3.1")
        expect(c.cmd("RSET"), 250)
    stored = f.mailbox(ALICE)
    assert len(stored) == len(acked)
    for (_, m), msg in zip(stored, acked):
        assert_stored_intact(m, msg)
    assert store_problems(f.data_dir) == []
    # the server goes on: with space again, mail is accepted
    filler.unlink()
    msg = make_message(SENDER, ALICE, subject="after the disk was full")
    with f.smtp() as c:
        c.ehlo()
        expect_queued(send_message(c, SENDER, ALICE, msg))
    stored = f.mailbox(ALICE)
    assert len(stored) == len(acked) + 1
    assert_stored_intact(stored[-1][1], msg)
    assert store_problems(f.data_dir) == []
