"""
Review tests for the store's and IMAP's recent work: pipelined APPENDs
at a SIGTERM (the session stops taking new APPENDs, answers those in
flight, then says BYE, instead of reading the client's stream until the
shutdown deadline cuts it without a BYE), and with LOGOUT, IDLE, errors
and clients gone in the middle; FETCH never sending another message's
bytes while expunged files are recycled into new deliveries.
"""
import random
import re
import signal
import threading
import time

from conftest import ALICE, T, make_message
from test_imap_util import imap, parse_fetch


def literal_plus(tag, mailbox, msg):
    return (f"{tag} APPEND {mailbox} {{{len(msg)}+}}\r\n".encode() + msg +
            b"\r\n")


def test_sigterm_during_pipelined_appends(make_facteur):
    """A client streams APPENDs without waiting (LITERAL+); a SIGTERM in
    the middle: the APPENDs already read are answered, at most a window
    of them more, then BYE; the server is gone well before its
    shutdown_timeout (30 s here) and every message answered OK is
    stored."""
    f = make_facteur(config={"auth_plaintext_loopback": "yes",
                             "shutdown_timeout": "30s"})
    msg = make_message(subject="stream")
    total = 60000
    data = b"".join(literal_plus(f"a{i}", "INBOX", msg)
                    for i in range(total))
    with imap(f, tls=False) as c:
        def pump():
            try:
                c.sock.sendall(data)
            except OSError:
                pass  # the server closed the connection

        sender = threading.Thread(target=pump, daemon=True)
        sender.start()
        oks = 0
        while oks < 200:
            r = c.response()
            assert b" OK " in r, r
            oks += 1
        f.proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        after, bye = 0, None
        while True:
            r = c.response_or_eof()
            if r is None:
                break
            if r.startswith(b"* BYE"):
                bye = r
                break
            assert b" OK " in r, r
            after += 1
        elapsed = time.monotonic() - t0
        assert bye is not None, f"no BYE; {after} APPENDs answered after " \
                                f"the SIGTERM, in {elapsed:.1f} s"
        # the window in flight, and what the parser had begun
        assert after <= 100, after
    f.proc.wait(timeout=T(25))
    assert time.monotonic() - t0 < T(10)
    assert f.stop() == 0
    assert len(f.mailbox(ALICE)) >= oks + after


def read_until_tagged(c, tag):
    """The responses up to and including the tagged one of `tag`."""
    out = []
    while True:
        r = c.response()
        out.append(r)
        if r.startswith(tag.encode() + b" "):
            return out


def tagged(rs):
    return [r.split(b" ", 2)[:2] for r in rs if not r.startswith(b"*")
            and not r.startswith(b"+")]


def test_pipelined_appends_then_logout_idle_and_errors(make_facteur):
    """Commands after pipelined APPENDs wait for them: LOGOUT's BYE and OK
    come after every APPEND's answer; IDLE's continuation after them too;
    a BAD APPEND and a synchronising literal in the middle of the stream
    leave the others alone."""
    f = make_facteur(config={"auth_plaintext_loopback": "yes"})
    msgs = [make_message(subject=f"p {i}") for i in range(40)]
    with imap(f, tls=False) as c:
        c.ok("SELECT INBOX")
        data = b"".join(literal_plus(f"a{i}", "INBOX", m)
                        for i, m in enumerate(msgs[:20]))
        data += b"x1 APPEND INBOX (\\Bogus\r\n"
        data += b"".join(literal_plus(f"b{i}", "INBOX", m)
                         for i, m in enumerate(msgs[20:30]))
        data += f"s1 APPEND INBOX {{{len(msgs[30])}}}\r\n".encode()
        c.send(data)
        rs = read_until_tagged(c, "x1")
        r = c.response()
        while not r.startswith(b"+"):
            rs.append(r)
            r = c.response()
        c.send(msgs[30] + b"\r\n" +
               b"".join(literal_plus(f"c{i}", "INBOX", m)
                        for i, m in enumerate(msgs[31:])) +
               b"i1 IDLE\r\n")
        while True:
            r = c.response()
            if r.startswith(b"+"):
                break
            rs.append(r)
        c.send(b"DONE\r\n")
        rs += read_until_tagged(c, "i1")
        tags = tagged(rs)
        oks = [t for t, s in tags if s == b"OK"]
        assert [t for t, s in tags if s != b"OK"] == [b"x1"], tags
        want = ([f"a{i}".encode() for i in range(20)] +
                [f"b{i}".encode() for i in range(10)] + [b"s1"] +
                [f"c{i}".encode() for i in range(9)] + [b"i1"])
        assert oks == want, tags
        c.send(b"".join(literal_plus(f"d{i}", "INBOX", m)
                        for i, m in enumerate(msgs[:5])) +
               b"l1 LOGOUT\r\n")
        rs = read_until_tagged(c, "l1")
        tags = [r.split(b" ", 2)[:2] for r in rs
                if not r.startswith(b"* ") or r.startswith(b"* BYE")]
        assert tags == ([[f"d{i}".encode(), b"OK"] for i in range(5)] +
                        [[b"*", b"BYE"], [b"l1", b"OK"]]), tags
    assert len(f.mailbox(ALICE)) == 45


def test_client_gone_with_appends_in_flight(make_facteur):
    """A client that sends APPENDs and closes at once: the server goes on
    (no crash, a later session works), what it read is stored whole."""
    f = make_facteur(config={"auth_plaintext_loopback": "yes"})
    msg = make_message(subject="gone")
    for round_ in range(5):
        c = imap(f, tls=False)
        c.send(b"".join(literal_plus(f"a{i}", "INBOX", msg)
                        for i in range(50)))
        c.sock.close()
    with imap(f, tls=False) as c:
        c.ok("NOOP")
    time.sleep(0.5)
    assert all(m == msg for _, m in f.mailbox(ALICE))
    assert f.stop() == 0


def test_fetch_while_files_are_recycled(make_facteur):
    """One session appends messages of varied sizes, another expunges the
    oldest ones (their files recycled into the next deliveries), a third
    fetches every message over and over: each body it gets is exactly the
    message appended under that UID, never a cut file or the start of one
    message with the end of another."""
    f = make_facteur(config={"auth_plaintext_loopback": "yes"})
    sent = {}
    stop = threading.Event()
    errors = []
    with imap(f, tls=False) as c:
        c.ok("CREATE Box")

    def writer():
        rnd = random.Random(1)
        try:
            with imap(f, tls=False) as c:
                for i in range(400):
                    body = (f"message {i} ".encode() * rnd.randint(1, 3000))
                    msg = make_message(subject=f"recycled {i}", body=body)
                    _, t = c.cmd(f"APPEND Box {{{len(msg)}}}", msg + b"\r\n")
                    m = re.search(rb"APPENDUID \d+ (\d+)", t)
                    assert m, t
                    sent[int(m.group(1))] = msg
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(("writer", e))
        finally:
            stop.set()

    def expunger():
        try:
            with imap(f, tls=False) as c:
                c.ok("SELECT Box")
                while not stop.is_set():
                    c.ok("UID STORE 1:* +FLAGS.SILENT (\\Deleted)")
                    c.ok("EXPUNGE")
                    time.sleep(0.01)
        except Exception as e:  # noqa: BLE001
            errors.append(("expunger", e))

    got = []

    def reader():
        try:
            with imap(f, tls=False) as c:
                c.ok("EXAMINE Box")
                while not stop.is_set():
                    untagged, _ = c.cmd("UID FETCH 1:* (UID BODY.PEEK[])")
                    for r in untagged:
                        if b" FETCH " in r and b"BODY[]" in r:
                            _, it = parse_fetch(r)
                            got.append((int(it["UID"]), it["BODY[]"]))
        except Exception as e:  # noqa: BLE001
            errors.append(("reader", e))

    threads = [threading.Thread(target=t) for t in
               (writer, expunger, reader, reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=T(120))
    assert not errors, errors
    assert len(got) > 100, len(got)
    def which(body):
        subj = re.search(rb"Subject: ([^\r]*)", body)
        return subj.group(1) if subj else body[:60]

    bad = [(uid, len(body), len(sent.get(uid, b"")), which(body),
            which(sent.get(uid, b""))) for uid, body in got
           if body != sent.get(uid)]
    assert not bad, bad[:10]
    assert f.stop() == 0
