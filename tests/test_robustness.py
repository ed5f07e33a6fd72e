"""
Clients that misbehave and signals: idle timeouts (a client that stalls,
before and inside DATA), a client that disconnects mid-DATA or mid-BDAT
(nothing stored), the per-address connection limit, SIGHUP (reload without
dropping connections) and SIGTERM (no new connections, the transaction in
flight finishes, exit 0).
"""
import socket
import time

import pytest

from conftest import (ALICE, BOB, T, assert_stored_intact, expect,
                      expect_queued, make_message, send_message,
                      store_problems, wait_until)

SENDER = "sender@remote.test"


def test_idle_client_is_closed_with_421(make_facteur):
    f = make_facteur(config={"smtp_timeout": "2s",
                             "smtp_data_timeout": "2s"})
    # before any command
    c = f.smtp()
    start = time.monotonic()
    c.sock.settimeout(T(15))
    r = c.reply_or_eof()
    took = time.monotonic() - start
    assert r is not None and r.code == 421, \
        f"expected 421 on idle timeout, got {r!r}"
    assert r.enhanced in ("4.4.2", "4.4.1"), r
    assert c.expect_eof() == b""
    assert took >= 1.5, f"closed after {took:.1f}s, timeout is 2s"
    c.close()
    # inside DATA: nothing is stored
    c = f.smtp()
    c.ehlo()
    expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
    expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
    expect(c.cmd("DATA"), 354)
    c.send(b"Subject: stalled\r\n\r\nhalf a message\r\n")
    c.sock.settimeout(T(15))
    r = c.reply_or_eof()
    assert r is not None and r.code == 421, r
    assert c.expect_eof() == b""
    c.close()
    assert f.mailbox(ALICE) == []
    assert store_problems(f.data_dir) == []


def test_idle_timeout_restarts_with_each_command(make_facteur):
    """The timeout is for idleness, not for the whole session."""
    f = make_facteur(config={"smtp_timeout": "2s"})
    with f.smtp() as c:
        c.ehlo()
        end = time.monotonic() + 4
        while time.monotonic() < end:
            time.sleep(0.5)  # pacing, well under the 2 s timeout
            expect(c.cmd("NOOP"), 250)


def test_disconnect_mid_data_stores_nothing(facteur):
    msg = make_message(SENDER, ALICE, subject="cut", body="x" * 70000)
    c = facteur.smtp()
    c.ehlo()
    expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
    expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
    expect(c.cmd("DATA"), 354)
    c.send(msg[:len(msg) // 2])
    c.close()
    # the same in BDAT, cut inside a chunk
    c = facteur.smtp()
    c.ehlo()
    expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
    expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
    c.send(f"BDAT {len(msg)} LAST\r\n".encode() + msg[:1000])
    c.close()
    # and after a complete first chunk of a BDAT transaction
    c = facteur.smtp()
    c.ehlo()
    expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
    expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
    c.send(f"BDAT {len(msg) // 2}\r\n".encode() + msg[:len(msg) // 2])
    expect(c.reply(), 250)
    c.close()
    # a complete message afterwards is the only one stored
    ok = make_message(SENDER, ALICE, subject="complete")
    with facteur.smtp() as c2:
        c2.ehlo()
        expect_queued(send_message(c2, SENDER, ALICE, ok))
    got = facteur.wait_messages(ALICE, 1)
    assert len(got) == 1, [m[:200] for _, m in got]
    assert_stored_intact(got[0][1], ok)
    assert store_problems(facteur.data_dir) == []


def test_connection_limit_per_address(make_facteur):
    f = make_facteur(config={"max_connections_per_ip": "3"})
    conns = []

    def three_open():
        # the start-up probes of the fixture may not be closed yet
        try:
            while len(conns) < 3:
                conns.append(f.smtp())
            return True
        except AssertionError:
            return False
    wait_until(three_open, T(5), "3 connections greeted", interval=0.1)
    try:
        s = socket.create_connection(("127.0.0.1", f.ports["smtp"]),
                                     timeout=T(15))
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        s.close()
        assert not data.startswith(b"220"), \
            f"a 4th connection from one address was greeted: {data!r}"
        assert data == b"" or data.startswith(b"421"), data
    finally:
        conns[0].cmd("QUIT")
        conns[0].close()

    def greeted():
        try:
            c = f.smtp()
        except (AssertionError, EOFError, ConnectionResetError):
            return None
        return c
    c = wait_until(greeted, T(10), "a free connection slot")
    expect(c.cmd("NOOP"), 250)
    c.close()
    for c in conns[1:]:
        c.close()


def test_sighup_reloads_without_dropping_connections(facteur):
    f = facteur
    msg = make_message(SENDER, ALICE, subject="across SIGHUP")
    c = f.smtp()
    c.ehlo()
    assert "SIZE 10485760" in c.extensions
    expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
    expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
    f.write_config(smtp_max_message_size="5M")
    f.sighup()

    def reloaded():
        with f.smtp() as n:
            n.ehlo()
            return "SIZE 5242880" in n.extensions
    wait_until(reloaded, T(10), "SIGHUP to take the new configuration")
    # the connection opened before is still there, mid-transaction
    expect(c.cmd(f"RCPT TO:<{BOB}>"), 250)
    expect(c.cmd("DATA"), 354)
    c.send(msg + b".\r\n")
    expect_queued(c.reply())
    expect(c.cmd("QUIT"), 221)
    c.close()
    (_, a), = f.wait_messages(ALICE, 1)
    assert_stored_intact(a, msg)
    assert len(f.wait_messages(BOB, 1)) == 1
    # a bad configuration on SIGHUP is refused and the server goes on
    f.config_path.write_text(f.config_path.read_text() + "bogus_key = 1\n")
    f.sighup()
    with f.smtp() as n:
        n.ehlo()
        assert "SIZE 5242880" in n.extensions
    assert f.running()


def test_sigterm_finishes_transaction_in_flight(facteur):
    f = facteur
    msg = make_message(SENDER, ALICE, subject="in flight")
    c = f.smtp()
    c.ehlo()
    expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
    expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
    expect(c.cmd("DATA"), 354)
    c.send(msg[:50])
    f.proc.send_signal(15)

    def refused():
        try:
            socket.create_connection(("127.0.0.1", f.ports["smtp"]),
                                     timeout=1).close()
            return False
        except OSError:
            return True
    wait_until(refused, T(10), "the listener to close after SIGTERM")
    assert f.running(), "exited with a transaction in flight"
    c.send(msg[50:] + b".\r\n")
    expect_queued(c.reply())
    # then the session may be closed (421 4.3.2), or go on to QUIT
    try:
        c.send("QUIT\r\n")
        r = c.reply_or_eof()
    except OSError:
        r = None
    assert r is None or r.code in (421, 221), r
    c.close()
    f.proc.wait(timeout=T(20))
    f.exits.append((f.proc.returncode, "SIGTERM"))
    assert f.proc.returncode == 0
    (_, a), = f.mailbox(ALICE)
    assert_stored_intact(a, msg)


def test_client_gone_while_server_works(facteur):
    """Clients that vanish while the server waits on a worker (the store
    commit after the end of data, the password check of AUTH) must not
    crash it or leak the connection (ASan checks the rest)."""
    f = facteur
    for i in range(30):
        c = f.smtp()
        c.ehlo()
        msg = make_message(SENDER, ALICE, subject=f"gone {i}")
        c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{ALICE}>\r\nDATA\r\n")
        for _ in range(3):
            c.reply()
        c.send(msg + b".\r\nQUIT\r\n")
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()  # RST at once
    for i in range(20):
        c = f.smtp("submissions")
        c.ehlo()
        c.send(c_auth_line(ALICE, "alice-pass-1" if i % 2 else "wrong"))
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
    # the server is fine, and whatever it stored is whole
    with f.smtp() as c:
        c.ehlo()
        ok = make_message(SENDER, BOB)
        expect_queued(send_message(c, SENDER, BOB, ok))
    assert len(f.wait_messages(BOB, 1)) == 1
    for _, m in f.mailbox(ALICE):
        assert b"Subject: gone " in m
    assert store_problems(f.data_dir) == []


def c_auth_line(user, password):
    import base64
    return "AUTH PLAIN " + base64.b64encode(
        f"\0{user}\0{password}".encode()).decode() + "\r\n"


def test_connection_slots_are_released(make_facteur):
    """However a connection ends (QUIT, peer close, RST, failed TLS
    handshake, garbage, idle timeout, too many errors), its slot in
    max_connections_per_ip comes back."""
    f = make_facteur(config={"max_connections_per_ip": "4",
                             "smtp_timeout": "1s"})
    port = f.ports

    def rst(sock):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()

    def greeted(service="smtp"):
        """A new session once a slot is free: the server releases the
        slot of a connection that just ended a moment after the client
        sees the end, so a 421 in between is retried; a leak is caught
        by four_greeted() below, after three rounds."""
        def attempt():
            try:
                return f.smtp(service)
            except (AssertionError, EOFError, OSError):
                return None
        return wait_until(attempt, T(10), "a free connection slot",
                          interval=0.1)

    for _ in range(3):
        with greeted() as c:
            expect(c.cmd("QUIT"), 221)
        greeted().close()
        c = greeted()
        rst(c.sock)
        s = socket.create_connection(("127.0.0.1", port["submissions"]))
        s.sendall(b"\x16\x03\x01\x00\x05hello")
        s.close()
        s = socket.create_connection(("127.0.0.1", port["submissions"]))
        rst(s)
        c = greeted()
        c.send("BOGUS\r\n" * 12)
        c.expect_eof()
        c.close()
    c = greeted()
    c.expect_eof(T(10))  # idle timeout
    c.close()
    c = greeted("submission")
    c.ehlo()
    c.starttls()
    rst(c.sock)

    def four_greeted():
        conns = []
        try:
            for _ in range(4):
                conns.append(f.smtp(timeout=T(5)))
            return True
        except (AssertionError, EOFError, OSError):
            return False
        finally:
            for c in conns:
                c.close()
    wait_until(four_greeted, T(10), "4 connections greeted (slots back)",
               interval=0.2)


def _leave_during_auth(f, service):
    c = f.smtp(service)
    c.ehlo()
    if service == "submission":
        c.starttls()
        c.ehlo()
    c.send(c_auth_line(ALICE, "alice-pass-1"))
    c.close()


def _leave_during_delivery(f, service, tls=True):
    c = f.smtp(service)
    c.ehlo()
    if tls:
        c.starttls()
        c.ehlo()
    c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{ALICE}>\r\nDATA\r\n")
    for _ in range(3):
        c.reply()
    c.send(make_message(SENDER, ALICE) + b".\r\n")
    c.close()


LEAVE = {
    "465-auth": (_leave_during_auth, "submissions"),
    "587-starttls-auth": (_leave_during_auth, "submission"),
    "25-starttls-data": (_leave_during_delivery, "smtp"),
    "25-plain-data": (lambda f, svc: _leave_during_delivery(f, svc, False),
                      "smtp"),
}


@pytest.mark.parametrize("mode", list(LEAVE), ids=list(LEAVE))
def test_tls_client_leaving_during_pending_work_is_closed(make_facteur,
                                                          mode):
    """A TLS client that closes while the server checks its password or
    commits its message must still be seen gone: its connection is closed
    and its slot (max_connections_per_ip) given back, not held until
    SIGTERM."""
    f = make_facteur(config={"max_connections_per_ip": "4"})
    action, service = LEAVE[mode]
    for _ in range(4):
        action(f, service)

    def greeted():
        try:
            f.smtp(timeout=T(5)).close()
            return True
        except (AssertionError, EOFError, OSError):
            return False
    wait_until(greeted, T(5), "a connection slot to come back after 4 "
               "clients left", interval=0.2)
    start = time.monotonic()
    assert f.stop() == 0
    took = time.monotonic() - start
    assert took < 3, f"SIGTERM took {took:.1f}s: connections were left " \
        "open (shutdown_timeout is 5s)"


def test_global_connection_limit(make_facteur):
    """max_connections counts all services together."""
    f = make_facteur(config={"max_connections": "3",
                             "max_connections_per_ip": "100"})
    conns = []
    services = ["submissions", "submission", "smtp"]

    def three_open():
        try:
            while len(conns) < 3:
                conns.append(f.smtp(services[len(conns)]))
            return True
        except (AssertionError, OSError):
            return False
    wait_until(three_open, T(5), "3 connections greeted", interval=0.1)
    try:
        s = socket.create_connection(("127.0.0.1", f.ports["smtp"]),
                                     timeout=T(10))
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        s.close()
        assert data == b"" or data.startswith(b"421"), \
            f"a 4th connection past max_connections got {data!r}"
    finally:
        for c in conns:
            c.close()


def test_sigterm_closes_idle_sessions_at_once(facteur):
    f = facteur
    conns = [f.smtp() for _ in range(5)]
    for c in conns:
        c.ehlo()
    start = time.monotonic()
    f.proc.send_signal(15)
    for c in conns:
        r = c.reply_or_eof()
        assert r is not None and r.code == 421 and r.enhanced == "4.3.2", r
        c.expect_eof()
        c.close()
    f.proc.wait(timeout=T(10))
    took = time.monotonic() - start
    f.exits.append((f.proc.returncode, "SIGTERM"))
    assert f.proc.returncode == 0
    assert took < 3, f"idle sessions kept the server {took:.1f}s"


def test_log_lines_say_what_happened(facteur):
    """Issue 2: one line per event with a connection id: client address,
    TLS version and cipher, authenticated user, message id, size,
    result."""
    f = facteur
    msg = make_message(ALICE, BOB)
    with f.submission(ALICE) as c:
        r = expect_queued(send_message(c, ALICE, BOB, msg))
    qid = r.lines[-1].split("queued as", 1)[1].strip()
    wait_until(lambda: qid in f.log(), T(5), "the message id in the log")
    lines = f.log().splitlines()
    tls = [ln for ln in lines if "TLSv1." in ln]
    assert any("cipher=" in ln and " id=" in ln for ln in tls), tls
    assert any(ALICE in ln and "auth" in ln and " id=" in ln
               for ln in lines), "no log line of the AUTH"
    assert any("127.0.0.1" in ln and " id=" in ln for ln in lines)
    mine = [ln for ln in lines if qid in ln]
    assert any(f"size={len(msg)}" in ln or "size=" in ln for ln in mine), \
        mine
    assert any("result=ok" in ln for ln in mine), mine


@pytest.fixture
def nobody_dir():
    """A data directory owned by `nobody`, under a directory `nobody` can
    traverse (pytest's own temporary directories are 0700 root)."""
    import os
    import pwd
    import shutil
    import tempfile
    from pathlib import Path
    if os.geteuid() != 0:
        pytest.skip("dropping privileges needs root")
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    base = Path(tempfile.mkdtemp(prefix="facteur-drop-"))
    os.chmod(base, 0o755)
    data = base / "data"
    data.mkdir()
    os.chown(data, pw.pw_uid, pw.pw_gid)
    yield data, pw
    shutil.rmtree(base, ignore_errors=True)


def test_drops_privileges_to_run_user(nobody_dir, make_facteur):
    """Started as root, the server binds its ports, then runs as run_user
    (real, effective and saved ids, no supplementary root group); the
    CLI, run as root, leaves files that user owns."""
    data, pw = nobody_dir
    f = make_facteur(config={"run_user": "nobody"}, data_dir=data,
                     own_cert=True)
    # the listening sockets accept (into the backlog) from bind() on,
    # before the drop: wait for it rather than read the ids at once
    wait_until(lambda: f"\t{pw.pw_uid}\t" in open(
        f"/proc/{f.proc.pid}/status").read(), T(5), "the privilege drop")
    status = open(f"/proc/{f.proc.pid}/status").read()
    uids = next(ln for ln in status.splitlines() if ln.startswith("Uid:"))
    gids = next(ln for ln in status.splitlines() if ln.startswith("Gid:"))
    groups = next(ln for ln in status.splitlines()
                  if ln.startswith("Groups:"))
    assert uids.split()[1:] == [str(pw.pw_uid)] * 4, uids
    assert gids.split()[1:] == [str(pw.pw_gid)] * 4, gids
    assert "0" not in groups.split()[1:], groups
    msg = make_message(SENDER, ALICE)
    with f.smtp() as c:
        c.ehlo()
        expect_queued(send_message(c, SENDER, ALICE, msg))
    (_, a), = f.wait_messages(ALICE, 1)
    assert_stored_intact(a, msg)
    for p in [data / "accounts.db", data / "tls" / "key.pem"] + \
            list((data / "mail").rglob("*")):
        assert p.stat().st_uid == pw.pw_uid, f"{p} is not owned by nobody"


def test_data_phase_uses_smtp_data_timeout(make_facteur):
    """Inside DATA and BDAT chunks the idle limit is smtp_data_timeout,
    not smtp_timeout (RFC 5321 4.5.3.2: 3 minutes per data block)."""
    f = make_facteur(config={"smtp_timeout": "1s",
                             "smtp_data_timeout": "30s"})
    msg = make_message(SENDER, ALICE, subject="slow")
    with f.smtp() as c:
        c.ehlo()
        expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
        expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
        expect(c.cmd("DATA"), 354)
        head, rest = msg[:40], msg[40:]
        c.send(head)
        time.sleep(2.5)  # pacing: longer than smtp_timeout
        c.send(rest + b".\r\n")
        expect_queued(c.reply())
        expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
        expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
        c.send(f"BDAT {len(msg)} LAST\r\n".encode() + head)
        time.sleep(2.5)
        c.send(rest)
        expect_queued(c.reply())
    got = f.wait_messages(ALICE, 2)
    assert_stored_intact(got[0][1], msg)
    assert_stored_intact(got[1][1], msg)
