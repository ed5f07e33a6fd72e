"""
POP3 and the mail: messages sent over SMTP retrieved byte for byte (CRLF,
byte-stuffing, 8-bit, big messages streamed), TOP, STAT/LIST/UIDL, DELE
then QUIT or a dropped connection, RSET, the maildrop as it was at login,
\\Seen on retrieval, and a client that vanishes in the middle of RETR.
"""
import os
import poplib
import re
import socket
import time

from conftest import ALICE, BOB, PASSWORDS, T, client_tls_context, \
    make_message, sanitized, wait_until
from test_pop3_util import POP3Conn, SEEN, deliver, index_rows, pop3, \
    stuffed


def retr_raw(c, n):
    """RETR n: the announced size and the raw body (stuffed, with the
    terminator)."""
    r = c.ok(f"RETR {n}")
    m = re.match(rb"^\+OK (\d+) octets$", r)
    assert m, r
    return int(m.group(1)), c.raw_multi()


# ------------------------------------------------------------ retrieval

def test_retr_byte_for_byte(make_facteur):
    f = make_facteur()
    body = ("line one\r\n.leading dot\r\n..two dots\r\n.\r\n"
            "caf\u00e9 8-bit \u2603\r\n" + "x" * 990 + "\r\n"
            "\r\n\r\nlast line without dot\r\n")
    sent = [make_message(subject="bytes", body=body,
                         headers=["Content-Type: text/plain; "
                                  "charset=utf-8",
                                  "Content-Transfer-Encoding: 8bit"]),
            make_message(subject="second", body=".\r\n")]
    stored = [m for _, m in deliver(f, sent)]
    assert all(s.endswith(m) for s, m in zip(stored, sent))
    for tls in (True, False):
        with POP3Conn(f.ports["pop3s" if tls else "pop3"], tls=tls) as c:
            if not tls:
                c.stls()
            c.login()
            for n, data in enumerate(stored, 1):
                size, raw = retr_raw(c, n)
                assert size == len(data)
                assert raw == stuffed(data)
                assert b"\r\n..leading dot\r\n" in raw or n == 2
            c.ok("QUIT")
    # The same through poplib (which un-stuffs).
    p = poplib.POP3_SSL("127.0.0.1", f.ports["pop3s"],
                        context=client_tls_context(), timeout=T(20))
    p.user(ALICE)
    p.pass_(PASSWORDS[ALICE])
    resp, lines, octets = p.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == stored[0]
    p.quit()


def test_stat_list_uidl(make_facteur):
    f = make_facteur()
    stored = [m for _, m in deliver(
        f, [make_message(subject=f"s{i}", body="b" * (100 * i + 1))
            for i in range(4)])]
    uidvalidity, rows = index_rows(f)
    with pop3(f) as c:
        total = sum(len(m) for m in stored)
        assert c.ok("STAT") == f"+OK 4 {total}".encode()
        assert c.ok("LIST").startswith(b"+OK 4 messages")
        assert c.multi() == [f"{i + 1} {len(m)}".encode()
                             for i, m in enumerate(stored)]
        assert c.ok("LIST 2") == f"+OK 2 {len(stored[1])}".encode()
        c.ok("UIDL")
        uidls = c.multi()
        expected = [f"{i + 1} {uidvalidity:08x}{uid:08x}".encode()
                    for i, (uid, _) in enumerate(rows)]
        assert uidls == expected
        assert c.ok("UIDL 3") == b"+OK " + expected[2]
        c.ok("DELE 2")
        assert c.ok("STAT") == \
            f"+OK 3 {total - len(stored[1])}".encode()
        c.ok("LIST")
        assert [ln.split()[0] for ln in c.multi()] == [b"1", b"3", b"4"]
        c.ok("UIDL")
        assert c.multi() == [expected[0], expected[2], expected[3]]
        for cmd in ("LIST 2", "UIDL 2", "RETR 2", "TOP 2 0", "DELE 2"):
            r = c.err(cmd)
            assert b"deleted" in r, r
        r = c.err("LIST 5")
        assert b"No such message" in r
        c.ok("QUIT")
    # UIDL values are stable across sessions; numbers are renumbered.
    with pop3(f) as c:
        c.ok("UIDL")
        assert [ln.split()[1] for ln in c.multi()] == \
            [expected[i].split()[1] for i in (0, 2, 3)]
        c.ok("QUIT")


def test_empty_maildrop(shared_facteur):
    with pop3(shared_facteur, BOB) as c:
        assert c.ok("STAT") == b"+OK 0 0"
        c.ok("LIST")
        assert c.multi() == []
        c.ok("UIDL")
        assert c.multi() == []
        c.err("RETR 1")
        assert c.ok("QUIT") == b"+OK Bye (maildrop empty)"


def test_top(make_facteur):
    f = make_facteur()
    body = "b1\r\n.b2\r\nb3\r\nb4\r\n"
    stored = [m for _, m in deliver(f, [make_message(subject="top",
                                                       body=body)])][0]
    header = stored[:stored.index(b"\r\n\r\n") + 4]
    with pop3(f) as c:
        assert c.ok("TOP 1 0").startswith(b"+OK")
        assert c.raw_multi() == stuffed(header)
        c.ok("TOP 1 2")
        assert c.raw_multi() == stuffed(header + b"b1\r\n.b2\r\n")
        assert stuffed(header + b"b1\r\n.b2\r\n").endswith(
            b"\r\n..b2\r\n.\r\n")
        c.ok("TOP 1 100")
        assert c.raw_multi() == stuffed(stored)
        c.ok("TOP 1 4294967295")
        assert c.raw_multi() == stuffed(stored)
        c.ok("QUIT")


def test_bdat_bare_lf_sent_with_crlf(make_facteur):
    """A message stored with bare LF line ends (BDAT keeps the bytes) is
    sent with CRLF, RETR announces the size of what it sends (RFC 1939
    §11: CRLF line ends, byte-stuffing not counted), and TOP finds its
    header end."""
    f = make_facteur()
    msg = (b"From: <a@remote.test>\nTo: <alice@example.test>\n"
           b"Subject: lf\n\nbody 1\n.dot\nbody 3")
    with f.smtp() as c:
        c.ehlo()
        c.send(f"MAIL FROM:<a@remote.test> BODY=BINARYMIME\r\n"
               f"RCPT TO:<{ALICE}>\r\nBDAT {len(msg)} LAST\r\n".encode()
               + msg)
        for code in (250, 250, 250):
            assert c.reply().code == code
    stored = f.wait_messages(ALICE, 1)[0][1]
    assert b"\nbody 1\n" in stored  # kept as sent
    with pop3(f) as c:
        size, raw = retr_raw(c, 1)
        assert size == len(re.sub(rb"(?<!\r)\n", b"\r\n", stored))
        assert size == len(stored) + stored.count(b"\n") - \
            stored.count(b"\r\n")
        assert raw == stuffed(stored)
        assert b"\n" not in raw.replace(b"\r\n", b"")
        assert raw.endswith(b"\r\n..dot\r\nbody 3\r\n.\r\n")
        c.ok("TOP 1 1")
        top = c.raw_multi()
        assert top.endswith(b"Subject: lf\r\n\r\nbody 1\r\n.\r\n"), top
        c.ok("QUIT")


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks."""
    with open(f"/proc/{pid}/stat") as st:
        fields = st.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def wait_idle(f, quiet=0.3, timeout=None):
    """Waits until the server has used no CPU for `quiet` seconds (its
    background work after a delivery, full-text indexing, is over), so
    that a memory measurement sees only what the test does."""
    deadline = time.monotonic() + (timeout or T(20))
    last = cpu_ticks(f.proc.pid)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = cpu_ticks(f.proc.pid)
        if now == last:
            return
        last = now
    raise AssertionError("the server did not become idle")


def test_big_message_streamed(make_facteur):
    """A 9 MB message: retrieved intact over TLS, and the server does not
    buffer it whole for a client that does not read."""
    f = make_facteur()
    line = b"0123456789" * 7 + b"\r\n"
    body = line * (9 * 1024 * 1024 // len(line))
    body = body.replace(b"\r\n0", b"\r\n.0", 1000)
    stored = [m for _, m in deliver(
        f, [make_message(subject="big", body=body)])][0]
    assert len(stored) > 9_000_000

    def rss_kb():
        with open(f"/proc/{f.proc.pid}/status") as st:
            for ln in st:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
        return 0

    # what the delivery set going in the background (indexing of the
    # 9 MB) is not the RETR's memory
    wait_idle(f)
    with pop3(f) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        before = rss_kb()
        assert c.ok("RETR 1") == f"+OK {len(stored)} octets".encode()
        time.sleep(T(1))
        grown = rss_kb() - before
        # Buffered whole, the 9 MB would show. Under ASan freed buffers
        # stay in quarantine, so everything that went into the kernel's
        # socket buffers shows as well: no bound there (the unit test
        # pop3_session_test checks the output bound exactly).
        if not sanitized():
            assert grown < 4096, f"server RSS grew by {grown} KB " \
                "while the client read nothing"
        raw = c.raw_multi()
        assert raw == stuffed(stored)
        c.ok("QUIT")


# ------------------------------------------------------------ the maildrop

def test_dele_then_drop_keeps_messages(make_facteur):
    f = make_facteur()
    deliver(f, [make_message(subject=f"k{i}") for i in range(3)])
    before = f.mailbox(ALICE)
    c = pop3(f)
    c.ok("DELE 1")
    c.ok("DELE 3")
    c.close()  # no QUIT: no UPDATE state
    wait_until(lambda: re.search(r'pop3 id=\d+ event=disconnect '
                                 r'reason="peer closed" state=transaction',
                                 f.log()),
               T(10), "the session end")
    assert f.mailbox(ALICE) == before
    # RST instead of FIN, after a RETR.
    c = pop3(f)
    c.ok("DELE 2")
    c.ok("RETR 1")
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                      b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()
    with POP3Conn(f.ports["pop3s"], tls=True) as c2:
        wait_until(lambda: c2.cmd(f"USER {ALICE}") and
                   c2.cmd(f"PASS {PASSWORDS[ALICE]}").startswith(b"+OK"),
                   T(10), "the lock to go")
        assert c2.ok("STAT").startswith(b"+OK 3 ")
        c2.ok("QUIT")
    assert f.mailbox(ALICE) == before


def test_dele_then_quit_removes(make_facteur):
    f = make_facteur()
    deliver(f, [make_message(subject=f"q{i}") for i in range(4)])
    before = f.mailbox(ALICE)
    with pop3(f) as c:
        c.ok("UIDL")
        uidl = c.multi()
        c.ok("DELE 2")
        c.ok("DELE 4")
        assert c.ok("QUIT") == b"+OK Bye (2 messages left)"
        c.expect_eof()
    after = f.mailbox(ALICE)
    assert after == [before[0], before[2]]
    log = f.log()
    assert re.search(r"pop3 id=\d+ event=quit user=alice@example.test "
                     r"deleted=2 ", log), log
    with pop3(f) as c:
        assert c.ok("STAT").startswith(b"+OK 2 ")
        c.ok("UIDL")
        assert [u.split()[1] for u in c.multi()] == \
            [uidl[0].split()[1], uidl[2].split()[1]]
        c.ok("QUIT")
    # The files of the expunged messages go too (after the store's next
    # flush): no index row without its file, nothing left behind.
    from conftest import store_problems
    wait_until(lambda: not store_problems(f.data_dir), T(10),
               "a clean store")


def test_rset(make_facteur):
    f = make_facteur()
    deliver(f, [make_message(subject=f"r{i}") for i in range(2)])
    with pop3(f) as c:
        c.ok("DELE 1")
        c.ok("DELE 2")
        assert c.ok("STAT") == b"+OK 0 0"
        r = c.ok("RSET")
        assert r.startswith(b"+OK Maildrop has 2 messages")
        assert c.ok("STAT").startswith(b"+OK 2 ")
        c.ok("RETR 1")
        c.multi()
        c.ok("QUIT")
    assert len(f.mailbox(ALICE)) == 2


def test_maildrop_is_a_snapshot(make_facteur):
    f = make_facteur()
    deliver(f, [make_message(subject="old")])
    with pop3(f) as c:
        assert c.ok("STAT").startswith(b"+OK 1 ")
        deliver(f, [make_message(subject="new")])
        assert c.ok("STAT").startswith(b"+OK 1 ")
        c.err("RETR 2")
        c.ok("DELE 1")
        c.ok("QUIT")
    # The message that came during the session stays.
    with pop3(f) as c:
        assert c.ok("STAT").startswith(b"+OK 1 ")
        c.ok("TOP 1 0")
        assert b"Subject: new" in c.multi()
        c.ok("QUIT")


def test_mark_seen_on_retr(make_facteur):
    f = make_facteur(config={"pop3_mark_seen": "yes"})
    deliver(f, [make_message(subject=f"m{i}") for i in range(4)])
    # Dropped: nothing is marked.
    c = pop3(f)
    c.ok("RETR 1")
    c.multi()
    c.close()
    time.sleep(T(0.3))
    assert all(not flags & SEEN for _, flags in index_rows(f)[1])
    with POP3Conn(f.ports["pop3s"], tls=True) as c:
        wait_until(lambda: c.cmd(f"USER {ALICE}") and
                   c.cmd(f"PASS {PASSWORDS[ALICE]}").startswith(b"+OK"),
                   T(10), "the lock to go")
        c.ok("RETR 1")
        c.multi()
        c.ok("TOP 2 1")  # TOP does not mark
        c.multi()
        c.ok("RETR 3")
        c.multi()
        c.ok("DELE 3")  # deleted: not marked, expunged
        c.ok("QUIT")
    rows = index_rows(f)[1]
    assert [(flags & SEEN) != 0 for _, flags in rows] == \
        [True, False, False]


def test_no_mark_seen_by_default(make_facteur):
    f = make_facteur()
    deliver(f, [make_message(subject="unseen")])
    with pop3(f) as c:
        c.ok("RETR 1")
        c.multi()
        c.ok("QUIT")
    assert all(not flags & SEEN for _, flags in index_rows(f)[1])


def test_vanished_client_mid_retr(make_facteur):
    f = make_facteur()
    # Bigger than what the socket buffers of both sides can hold.
    big = make_message(subject="big", body=("y" * 78 + "\r\n") * 110000)
    deliver(f, [big, make_message(subject="small")])
    before = f.mailbox(ALICE)
    for tls in (True, False):
        c = POP3Conn(f.ports["pop3s" if tls else "pop3"], tls=tls)
        if not tls:
            c.stls()
        c.login()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.ok("DELE 2")
        c.send("RETR 1\r\nQUIT\r\n")
        assert c.line().startswith(b"+OK")
        c._fill()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
        wait_until(lambda: f.log().count("output=message") >= (
            1 if tls else 2), T(10), "the session to end mid-RETR")
    # Still serving, nothing deleted (the QUIT behind RETR never ran).
    with POP3Conn(f.ports["pop3s"], tls=True) as c:
        wait_until(lambda: c.cmd(f"USER {ALICE}") and
                   c.cmd(f"PASS {PASSWORDS[ALICE]}").startswith(b"+OK"),
                   T(10), "the lock to go")
        assert c.ok("STAT").startswith(b"+OK 2 ")
        size, raw = retr_raw(c, 1)
        assert raw == stuffed(before[0][1])
        c.ok("QUIT")
    assert f.mailbox(ALICE) == before


def test_many_pipelined_retr(make_facteur):
    """200 RETR in one write, each reply in order and complete, while the
    output is produced as it drains."""
    f = make_facteur()
    msgs = [make_message(subject=f"n{i}", body=f"{i}\r\n" * (i * 10 + 1))
            for i in range(20)]
    stored = [m for _, m in deliver(f, msgs)]
    with pop3(f) as c:
        c.send("".join(f"RETR {i % 20 + 1}\r\n" for i in range(200)))
        for i in range(200):
            r = c.line()
            assert r == f"+OK {len(stored[i % 20])} octets".encode(), r
            assert c.raw_multi() == stuffed(stored[i % 20])
        c.ok("QUIT")


# ------------------------------------------------------------ with IMAP

def test_imap_idle_hears_pop3_expunge(make_facteur):
    """DELE + QUIT in POP3 expunges in the store, and an IMAP session
    idling on INBOX is told at once."""
    from test_imap_util import imap
    f = make_facteur()
    deliver(f, [make_message(subject=f"x{i}") for i in range(3)])
    a = imap(f)
    try:
        assert b"* 3 EXISTS" in a.ok("SELECT INBOX")
        a.send("i1 IDLE\r\n")
        assert a.response() == b"+ idling"
        with pop3(f) as c:
            c.ok("DELE 2")
            c.ok("DELE 3")
            c.ok("QUIT")
        got = {a.response(), a.response()}
        assert got == {b"* 3 EXPUNGE", b"* 2 EXPUNGE"} or \
            got == {b"* 2 EXPUNGE"}, got
        a.send("DONE\r\n")
        rest = a.until_tagged("i1")[0]
        assert b"* 2 EXPUNGE" in got | set(rest)
        # The IMAP view now matches the store.
        u = a.ok("UID FETCH 1:* (FLAGS)")
        assert len(u) == 1 and u[0].startswith(b"* 1 FETCH"), u
    finally:
        a.close()
    assert len(f.mailbox(ALICE)) == 1


def test_uidl_matches_imap_uid(make_facteur):
    """The UIDL is UIDVALIDITY and UID: what IMAP shows of the same
    message."""
    from test_imap_util import imap
    f = make_facteur()
    deliver(f, [make_message(subject=f"u{i}") for i in range(2)])
    with imap(f) as a:
        u = a.ok("SELECT INBOX")
        uv = next(int(re.search(rb"UIDVALIDITY (\d+)", r).group(1))
                  for r in u if b"UIDVALIDITY" in r)
        uids = [int(re.search(rb"UID (\d+)", r).group(1))
                for r in a.ok("FETCH 1:* (UID)")]
        a.ok("LOGOUT")
    with pop3(f) as c:
        c.ok("UIDL")
        assert c.multi() == [f"{i + 1} {uv:08x}{uid:08x}".encode()
                             for i, uid in enumerate(uids)]
        c.ok("QUIT")


def test_imap_seen_after_pop3_retr(make_facteur):
    from test_imap_util import imap
    f = make_facteur(config={"pop3_mark_seen": "yes"})
    deliver(f, [make_message(subject="seen")])
    with pop3(f) as c:
        c.ok("RETR 1")
        c.multi()
        c.ok("QUIT")
    with imap(f) as a:
        a.ok("EXAMINE INBOX")
        u = a.ok("FETCH 1 (FLAGS)")
        assert b"\\Seen" in u[0], u
        a.ok("LOGOUT")
