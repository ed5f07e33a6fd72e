"""
The SMTP session under stress of its input: pipelining, QUIT with
commands behind it, 2,000-byte and 1 MB lines, NUL bytes, binary garbage,
too many errors, and SMTP smuggling (<LF>.<LF> and friends inside DATA).

These tests share one server per module (they do not reconfigure it);
they look for their own messages by a unique marker, never assume an
empty mailbox.
"""
import random
import socket
import threading
import time
import uuid

import pytest

from conftest import (ALICE, BOB, T, assert_stored_intact, expect,
                      expect_queued, make_message, send_message, wait_until)

SENDER = "sender@remote.test"


def find(f, account, marker):
    """The stored messages of `account` that contain `marker`."""
    if isinstance(marker, str):
        marker = marker.encode()
    return [m for _, m in f.mailbox(account) if marker in m]


def test_pipelining_many_commands_in_one_write(shared_facteur):
    f = shared_facteur
    with f.smtp() as c:
        cmds = "EHLO client.test\r\n"
        for i in range(20):
            cmds += (f"MAIL FROM:<s{i}@remote.test>\r\n"
                     f"RCPT TO:<{ALICE}>\r\n"
                     "RSET\r\n")
        cmds += "NOOP\r\n" * 100
        cmds += "VRFY bob\r\n"
        c.send(cmds)
        r = expect(c.reply(), 250)
        assert len(r.lines) > 1
        for i in range(20):
            expect(c.reply(), 250, "2.1.0")
            expect(c.reply(), 250, "2.1.5")
            expect(c.reply(), 250, "2.0.0")
        for i in range(100):
            expect(c.reply(), 250)
        expect(c.reply(), 252)


def test_pipelining_across_messages(shared_facteur):
    """After the end of data, the next transaction may be pipelined in the
    same write; the replies keep their order even though the first
    message must first be made durable."""
    f = shared_facteur
    tag = uuid.uuid4().hex
    m1 = make_message(SENDER, ALICE, subject=f"first {tag}")
    m2 = make_message(SENDER, BOB, subject=f"second {tag}")
    with f.smtp() as c:
        c.ehlo()
        c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{ALICE}>\r\nDATA\r\n")
        expect(c.reply(), 250)
        expect(c.reply(), 250)
        expect(c.reply(), 354)
        c.send(m1 + b".\r\n" +
               f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{BOB}>\r\nDATA\r\n"
               .encode())
        expect_queued(c.reply())
        expect(c.reply(), 250)
        expect(c.reply(), 250)
        expect(c.reply(), 354)
        c.send(m2 + b".\r\nNOOP\r\nQUIT\r\n")
        expect_queued(c.reply())
        expect(c.reply(), 250)
        expect(c.reply(), 221)
        assert c.expect_eof() == b""
    a, = find(f, ALICE, f"first {tag}")
    b, = find(f, BOB, f"second {tag}")
    assert_stored_intact(a, m1)
    assert_stored_intact(b, m2)


def test_commands_after_quit_are_not_run(shared_facteur):
    f = shared_facteur
    tag = uuid.uuid4().hex
    msg = make_message(SENDER, ALICE, subject=f"after quit {tag}")
    with f.smtp() as c:
        c.ehlo()
        c.send(b"QUIT\r\nNOOP\r\n" +
               f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{ALICE}>\r\nDATA\r\n"
               .encode() + msg + b".\r\n")
        expect(c.reply(), 221, "2.0.0")
        try:
            rest = c.expect_eof()
        except (ConnectionResetError, BrokenPipeError):
            rest = b""
        assert rest == b"", f"replies after 221: {rest!r}"
    assert find(f, ALICE, tag) == []


def test_2000_byte_command_lines(shared_facteur):
    """Under smtp_max_line (2048), a 2,000-byte line is read whole and
    answered."""
    f = shared_facteur
    with f.smtp() as c:
        c.ehlo()
        line = "NOOP " + "x" * 1995
        assert len(line) == 2000
        expect(c.cmd(line), 250)
        # a 2,000-byte path is too long for RFC 5321 (256): refused
        r = c.cmd("MAIL FROM:<" + "a" * 1970 + "@remote.test>")
        assert 500 <= r.code < 600, r
        r = c.cmd("EHLO " + "h" * 1995)
        assert 500 <= r.code < 600, r
        # and the session goes on
        c.ehlo()
        expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
        expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
        expect(c.cmd("RSET"), 250)


def test_overlong_line_tail_not_run(shared_facteur):
    """A line over smtp_max_line gets one 500 5.5.2; the rest of that line
    is skipped up to its end, never read as a command."""
    f = shared_facteur
    with f.smtp() as c:
        c.ehlo()
        c.send("NOOP " + "x" * 2100 + "RSET\r\n")
        expect(c.reply(), 500, "5.5.2")
        expect(c.cmd("HELP"), 214)
        # the same with the line end in another write
        c.send("MAIL FROM:<" + "y" * 5000)
        c.send(">\r\nHELP\r\n")
        expect(c.reply(), 500, "5.5.2")
        expect(c.reply(), 214)
        expect(c.cmd("NOOP"), 250)


def test_1mb_command_line(shared_facteur):
    """A 1 MB line is refused with 500 5.5.2 and the session goes on; the
    server serves another client meanwhile."""
    f = shared_facteur
    with f.smtp() as c, f.smtp() as other:
        c.ehlo()
        other.ehlo()
        c.sock.settimeout(T(30))
        chunk = b"Z" * 65536
        errors = []

        def feed(n):
            try:
                for _ in range(n):
                    c.sock.sendall(chunk)
            except OSError as e:
                errors.append(e)
        t = threading.Thread(target=feed, args=(8,))
        t.start()
        t.join(T(30))
        assert not t.is_alive() and not errors, errors
        # half way through the line: another session is served
        expect(other.cmd("NOOP"), 250)
        t = threading.Thread(target=feed, args=(8,))
        t.start()
        t.join(T(30))
        assert not t.is_alive() and not errors, errors
        c.send(b"\r\n")
        expect(c.reply(), 500, "5.5.2")
        expect(c.cmd("NOOP"), 250)
        expect(other.cmd(f"MAIL FROM:<{SENDER}>"), 250)


def test_nul_bytes_in_commands(shared_facteur):
    f = shared_facteur
    with f.smtp() as c:
        c.ehlo()
        for line in (b"NOOP\x00\r\n", b"EHLO cli\x00ent.test\r\n",
                     b"MAIL FROM:<a\x00b@remote.test>\r\n",
                     b"\x00\x00\x00\r\n"):
            c.send(line)
            r = c.reply()
            assert 500 <= r.code < 600, (line, r)
        # a NUL must not cut the command into a valid one
        c.send(b"MAIL FROM:<" + SENDER.encode() + b">\x00 junk\r\n")
        r = c.reply()
        assert 500 <= r.code < 600, r
        expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
        c.send(f"RCPT TO:<{ALICE}>\x00\r\n")
        r = c.reply()
        assert 500 <= r.code < 600, r
        expect(c.cmd("RSET"), 250)


def test_nul_bytes_in_data(shared_facteur):
    """A message with NUL bytes is either refused, or stored whole: never
    cut at the first NUL."""
    f = shared_facteur
    tag = uuid.uuid4().hex
    msg = make_message(SENDER, ALICE, subject=f"nul {tag}",
                       body=b"before\x00after\r\n\x00\x00\r\nend\r\n")
    with f.smtp() as c:
        c.ehlo()
        r = send_message(c, SENDER, ALICE, msg)
        if r.code == 250:
            expect_queued(r)
            stored, = find(f, ALICE, tag)
            assert_stored_intact(stored, msg)
        else:
            assert 500 <= r.code < 600, r
            assert find(f, ALICE, tag) == []
        expect(c.cmd("NOOP"), 250)


def _drain(c, deadline_s):
    """Reads replies until EOF; returns the list of reply lines."""
    c.sock.settimeout(deadline_s)
    lines = []
    while True:
        try:
            r = c.reply()
        except (EOFError, ConnectionResetError):
            return lines
        lines += r.lines


def test_binary_garbage(shared_facteur):
    f = shared_facteur
    rnd = random.Random(2)
    garbage = bytes(rnd.getrandbits(8) for _ in range(64 * 1024))
    c = f.smtp()
    try:
        try:
            c.send(garbage)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed for too many errors while we were sending
        lines = _drain(c, T(20))
    finally:
        c.close()
    assert lines, "no reply at all to 64 KB of garbage"
    assert all(ln[0] in "45" for ln in lines), lines[:20]
    assert lines[-1].startswith("421"), lines[-5:]
    # garbage instead of a TLS handshake on 465
    s = socket.create_connection(("127.0.0.1", f.ports["submissions"]),
                                 timeout=T(20))
    try:
        try:
            s.sendall(garbage[:4096])
            while s.recv(4096):
                pass
        except (ConnectionResetError, BrokenPipeError):
            pass
    finally:
        s.close()
    # the server is still there
    with f.smtp() as c:
        c.ehlo()
        expect(c.cmd("NOOP"), 250)


def test_too_many_errors_close_with_421(shared_facteur):
    f = shared_facteur
    with f.smtp() as c:
        c.ehlo()
        c.send("BOGUS\r\n" * 15 + "NOOP\r\n")
        lines = _drain(c, T(20))
    errors = [ln for ln in lines if ln.startswith("5")]
    assert 1 <= len(errors) <= 10, lines
    assert lines[-1].startswith("421 4.7.0"), lines
    assert not any(ln.startswith("250") for ln in lines), lines


SMUGGLE = {
    "lf-dot-lf": b"\n.\n",
    "crlf-dot-lf": b"\r\n.\n",
    "lf-dot-crlf": b"\n.\r\n",
    "cr-dot-crlf": b"\r.\r\n",
    "cr-dot-cr": b"\r.\r",
    "bare-lf": b"\n",
    "bare-cr": b"\r",
}


@pytest.mark.parametrize("end", list(SMUGGLE), ids=list(SMUGGLE))
def test_smtp_smuggling(shared_facteur, end):
    """Only <CRLF>.<CRLF> ends the data: a fake end is kept as data, the
    bytes after it are not run as commands, and the message is refused
    with 554 5.6.0 when the real end comes."""
    f = shared_facteur
    tag = uuid.uuid4().hex
    data = (f"From: <{SENDER}>\r\nSubject: outer {tag}\r\n\r\nhello"
            .encode() + SMUGGLE[end] +
            f"MAIL FROM:<evil@remote.test>\r\nRCPT TO:<{BOB}>\r\n"
            f"DATA\r\nSubject: smuggled {tag}\r\n\r\nevil\r\n.\r\n"
            .encode())
    with f.smtp() as c:
        c.ehlo()
        expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
        expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
        expect(c.cmd("DATA"), 354)
        c.send(data)
        expect(c.reply(), 554, "5.6.0")
        # the next reply is HELP's: nothing smuggled was answered
        expect(c.cmd("HELP"), 214)
        # no transaction is open: the smuggled MAIL did not run
        expect(c.cmd(f"RCPT TO:<{ALICE}>"), 503)
        # and the session still works
        msg = make_message(SENDER, ALICE, subject=f"after {tag}")
        expect_queued(send_message(c, SENDER, ALICE, msg))
    assert find(f, BOB, tag) == []
    got = find(f, ALICE, tag)
    assert len(got) == 1 and f"after {tag}".encode() in got[0], got


def _rss_kb(pid):
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_client_that_never_reads_replies_is_bounded(facteur):
    """A client that pipelines commands without ever reading the replies
    must not make the server queue replies without limit: the server
    stops reading while its output is backed up (TCP flow control then
    stops the client). 24 MB of NOOPs would otherwise cost ~56 MB of
    queued '250 2.0.0 OK' replies, and a few such clients the machine."""
    from conftest import sanitized
    if sanitized():
        pytest.skip("ASan's quarantine makes RSS meaningless here")
    pid = facteur.proc.pid
    before = _rss_kb(pid)
    chunk = b"NOOP\r\n" * 10000
    sent = 0
    with facteur.smtp() as c:
        c.ehlo()
        c.sock.settimeout(T(2))
        try:
            for _ in range(400):
                c.sock.sendall(chunk)
                sent += len(chunk)
        except socket.timeout:
            pass  # the server stopped reading: flow control works
        peak = before
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            peak = max(peak, _rss_kb(pid))
            time.sleep(0.05)
        # others are still served meanwhile
        with facteur.smtp() as other:
            other.ehlo()
    grown_mb = (peak - before) / 1024
    assert grown_mb < 16, \
        f"server RSS grew by {grown_mb:.0f} MB while a client sent " \
        f"{sent / 1e6:.0f} MB of NOOPs without reading a reply"


def test_client_that_stops_reading_is_closed_after_the_idle_time(
        make_facteur):
    """A client that pipelines commands and never reads a reply fills the
    server's output; the server stops reading it, and once its output has
    made no progress for the idle time (smtp_timeout) it closes the
    connection instead of holding it for ever."""
    f = make_facteur(config={"smtp_timeout": "1s"})
    c = f.smtp()
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.sock.settimeout(0.5)
    chunk = b"NOOP\r\n" * 10000
    try:
        for _ in range(400):
            c.sock.sendall(chunk)
    except (socket.timeout, OSError):
        pass  # the server stopped reading
    wait_until(lambda: "write timeout" in f.log(), T(15),
               "the server to give up on a client that does not read")
    c.close()
    with f.smtp() as other:  # and goes on serving others
        other.ehlo()
