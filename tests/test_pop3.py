"""
POP3 protocol: greeting, CAPA, STLS and pop3s, the login (USER/PASS, AUTH
PLAIN/LOGIN, refusals before TLS, failures, [IN-USE]), states, syntax,
limits, garbage and pipelining (RFC 1939, 2449, 2595, 3206, 5034).
Retrieval and the maildrop are in test_pop3_mail.py.
"""
import poplib
import socket
import time

import pytest

from conftest import ALICE, BOB, PASSWORDS, T, client_tls_context, \
    make_message, wait_until
from test_pop3_util import POP3Conn, b64, deliver, pop3

BASE_CAPS = {"TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE",
             "IMPLEMENTATION facteur"}


# ------------------------------------------------------------ greeting, CAPA

def test_greeting_has_no_apop_timestamp(shared_facteur):
    with POP3Conn(shared_facteur.ports["pop3"]) as c:
        assert c.greeting.startswith(b"+OK ")
        # No APOP: no <timestamp> in the greeting (RFC 1939 §7).
        assert b"<" not in c.greeting and b">" not in c.greeting
        c.err("APOP alice@example.test c4c9334bac560ecc979e58001b3e22fb")
        assert c.ok("QUIT") == b"+OK Bye"
        c.expect_eof()


def test_capa_plain_then_stls(shared_facteur):
    with POP3Conn(shared_facteur.ports["pop3"]) as c:
        caps = c.capa()
        assert BASE_CAPS <= set(caps), caps
        assert "STLS" in caps
        # No login offered where it would be refused.
        assert "USER" not in caps
        assert not any(x.startswith("SASL") for x in caps)
        # Not enforced, so not announced.
        assert not any(x.split()[0] in ("EXPIRE", "LOGIN-DELAY", "APOP")
                       for x in caps)
        c.stls()
        caps = c.capa()
        assert BASE_CAPS <= set(caps), caps
        assert "USER" in caps and "SASL PLAIN LOGIN" in caps
        assert "STLS" not in caps
        c.login()
        caps = c.capa()
        assert BASE_CAPS <= set(caps), caps
        assert "USER" not in caps and "STLS" not in caps
        c.ok("QUIT")


def test_pop3s_implicit_tls(shared_facteur):
    with POP3Conn(shared_facteur.ports["pop3s"], tls=True) as c:
        caps = c.capa()
        assert "STLS" not in caps and "USER" in caps
        c.err("STLS")
        c.login(BOB)
        assert c.ok("STAT").startswith(b"+OK ")
        c.ok("QUIT")


def test_poplib_pop3_ssl_and_stls(shared_facteur):
    f = shared_facteur
    p = poplib.POP3_SSL("127.0.0.1", f.ports["pop3s"],
                        context=client_tls_context(), timeout=T(20))
    assert p.user(BOB).startswith(b"+OK")
    assert p.pass_(PASSWORDS[BOB]).startswith(b"+OK")
    assert p.stat()[0] >= 0
    assert p.quit().startswith(b"+OK")
    p = poplib.POP3("127.0.0.1", f.ports["pop3"], timeout=T(20))
    assert "STLS" in p.capa()
    p.stls(context=client_tls_context())
    assert "USER" in p.capa()
    p.user(BOB)
    p.pass_(PASSWORDS[BOB])
    assert p.noop().startswith(b"+OK")
    p.quit()


# ------------------------------------------------------------ login policy

def test_login_refused_before_tls(shared_facteur):
    with POP3Conn(shared_facteur.ports["pop3"]) as c:
        r = c.err(f"USER {ALICE}")
        assert b"TLS" in r
        c.err(f"PASS {PASSWORDS[ALICE]}")
        c.err("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORDS[ALICE]}"))
        c.err("AUTH")
        # Refusals are not failed logins: no closing after 3.
        for _ in range(3):
            c.err(f"USER {ALICE}")
        c.err("STAT")
        c.stls()
        c.login()
        c.ok("QUIT")


def test_loopback_plaintext_allowed(make_facteur):
    f = make_facteur(config={"auth_plaintext_loopback": "yes"})
    with POP3Conn(f.ports["pop3"]) as c:
        caps = c.capa()
        assert "USER" in caps and "SASL PLAIN LOGIN" in caps
        c.login()
        c.ok("QUIT")
    p = poplib.POP3("127.0.0.1", f.ports["pop3"], timeout=T(20))
    p.user(ALICE)
    p.pass_(PASSWORDS[ALICE])
    assert p.stat() == (0, 0)
    p.quit()


# ------------------------------------------------------------ STLS

def test_stls_injection_discarded(shared_facteur):
    """Plaintext pipelined behind STLS in the same packet must not be
    run after the handshake (RFC 2595 §4, like CVE-2011-0411)."""
    with POP3Conn(shared_facteur.ports["pop3"]) as c:
        c.send(f"STLS\r\nUSER {ALICE}\r\nPASS {PASSWORDS[ALICE]}\r\n"
               "QUIT\r\n")
        r = c.line()
        assert r.startswith(b"+OK"), r
        assert c.buf == b""
        c._wrap()
        # The first reply over TLS is to what is sent over TLS.
        c.err("STAT")
        caps = c.capa()
        assert "USER" in caps
        # PASS without USER: the injected USER was forgotten.
        r = c.err(f"PASS {PASSWORDS[ALICE]}")
        assert b"USER" in r
        c.login()
        c.ok("QUIT")
    assert "reason=stls-injection" in shared_facteur.log()


def test_stls_forgets_user(shared_facteur):
    f = shared_facteur
    with POP3Conn(f.ports["pop3"]) as c:
        c.stls()
        c.ok(f"USER {ALICE}")
        c.err("STLS")  # already TLS
        c.ok(f"PASS {PASSWORDS[ALICE]}")
        c.err("STLS")  # not in TRANSACTION either
        c.ok("QUIT")


def test_stls_syntax(shared_facteur):
    with POP3Conn(shared_facteur.ports["pop3"]) as c:
        c.err("STLS now")
        c.stls()
        c.ok("QUIT")


# ------------------------------------------------------------ AUTH

def test_auth_plain_initial_response(shared_facteur):
    with POP3Conn(shared_facteur.ports["pop3s"], tls=True) as c:
        r = c.ok("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORDS[ALICE]}"))
        assert b"Logged in" in r
        c.ok("STAT")
        c.ok("QUIT")


def test_auth_plain_continuation_and_authzid(shared_facteur):
    with POP3Conn(shared_facteur.ports["pop3s"], tls=True) as c:
        assert c.cmd("AUTH PLAIN") == b"+ "
        c.ok(b64(f"{ALICE}\0{ALICE.upper()}\0{PASSWORDS[ALICE]}"))
        c.ok("QUIT")


def test_auth_login(shared_facteur):
    with POP3Conn(shared_facteur.ports["pop3s"], tls=True) as c:
        assert c.cmd("AUTH LOGIN") == b"+ " + b64("Username:").encode()
        assert c.cmd(b64(BOB)) == b"+ " + b64("Password:").encode()
        c.ok(b64(PASSWORDS[BOB]))
        c.ok("QUIT")
    with POP3Conn(shared_facteur.ports["pop3s"], tls=True) as c:
        assert c.cmd("auth login " + b64(BOB)) == \
            b"+ " + b64("Password:").encode()
        c.ok(b64(PASSWORDS[BOB]))
        c.ok("QUIT")


def test_auth_list_cancel_and_errors(shared_facteur):
    with POP3Conn(shared_facteur.ports["pop3s"], tls=True) as c:
        c.ok("AUTH")
        assert set(c.multi()) == {b"PLAIN", b"LOGIN"}
        c.err("AUTH CRAM-MD5")
        assert c.cmd("AUTH PLAIN") == b"+ "
        r = c.err("*")
        assert b"cancel" in r
        assert c.cmd("AUTH LOGIN") == b"+ VXNlcm5hbWU6"
        c.err("not base64!")
        c.err("AUTH PLAIN " + b64("no nul bytes"))
        c.err("AUTH PLAIN a b")
        # Still in AUTHORIZATION, nothing counted: a login works.
        c.ok("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORDS[ALICE]}"))
        c.err("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORDS[ALICE]}"))
        c.ok("QUIT")


def test_auth_authzid_of_someone_else_fails(shared_facteur):
    with POP3Conn(shared_facteur.ports["pop3s"], tls=True) as c:
        c.err("AUTH PLAIN " + b64(f"{BOB}\0{ALICE}\0{PASSWORDS[ALICE]}"),
              "AUTH")
        c.login()
        c.ok("QUIT")


def test_long_sasl_response_accepted(shared_facteur):
    """SASL lines may pass 255 octets (RFC 5034 §4): a long password in
    an initial response reaches the password check (and fails)."""
    with POP3Conn(shared_facteur.ports["pop3s"], tls=True) as c:
        token = b64(f"\0{ALICE}\0" + "x" * 700)
        assert len("AUTH PLAIN " + token) > 900
        c.err("AUTH PLAIN " + token, "AUTH")
        c.ok("QUIT")


# ------------------------------------------------------------ failures

def test_wrong_password_and_unknown_user(shared_facteur):
    with POP3Conn(shared_facteur.ports["pop3s"], tls=True) as c:
        c.ok(f"USER {ALICE}")
        r = c.err("PASS wrong-password", "AUTH")
        # A failed PASS needs a new USER.
        c.err(f"PASS {PASSWORDS[ALICE]}")
        c.ok("USER nobody@example.test")
        r2 = c.err("PASS whatever", "AUTH")
        # The same answer whether the user exists or not.
        assert r == r2
        c.login()
        c.ok("QUIT")


def test_too_many_failures_close(shared_facteur):
    with POP3Conn(shared_facteur.ports["pop3s"], tls=True) as c:
        for i in range(2):
            c.ok(f"USER {ALICE}")
            c.err(f"PASS bad-{i}", "AUTH")
        c.err("AUTH PLAIN " + b64(f"\0{ALICE}\0bad-3"), "AUTH")
        c.expect_eof()


def test_failure_delay(make_facteur):
    f = make_facteur(config={"auth_failure_delay": "1s"})
    with POP3Conn(f.ports["pop3s"], tls=True) as c:
        c.ok(f"USER {ALICE}")
        t = time.monotonic()
        c.err("PASS wrong", "AUTH")
        assert time.monotonic() - t >= 0.9
        # A good password is not delayed by the last failure.
        t = time.monotonic()
        c.login()
        assert time.monotonic() - t < T(1.5)
        c.ok("QUIT")


# ------------------------------------------------------------ [IN-USE]

def test_second_session_in_use(shared_facteur):
    f = shared_facteur
    a = pop3(f)
    try:
        with POP3Conn(f.ports["pop3s"], tls=True) as b:
            b.ok(f"USER {ALICE}")
            b.err(f"PASS {PASSWORDS[ALICE]}", "IN-USE")
            # Not a failed login; still in AUTHORIZATION.
            b.err("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORDS[ALICE]}"),
                  "IN-USE")
            b.err("STAT")
            # Another user is not concerned.
            with pop3(f, BOB) as c:
                c.ok("QUIT")
            a.ok("QUIT")
            a.expect_eof()
            # The lock went with the QUIT, before its reply.
            b.login()
            b.ok("QUIT")
    finally:
        a.close()


def test_lock_released_when_client_vanishes(shared_facteur):
    f = shared_facteur
    a = pop3(f)
    a.close()

    def try_login():
        with POP3Conn(f.ports["pop3s"], tls=True) as c:
            c.ok(f"USER {ALICE}")
            r = c.cmd(f"PASS {PASSWORDS[ALICE]}")
            if r.startswith(b"+OK"):
                c.ok("QUIT")
                return True
            assert r.startswith(b"-ERR [IN-USE]"), r
            return False
    wait_until(try_login, T(10), "the lock of a vanished session to go")


# ------------------------------------------------------------ states, syntax

def test_states(shared_facteur):
    with POP3Conn(shared_facteur.ports["pop3s"], tls=True) as c:
        for cmd in ("STAT", "LIST", "UIDL", "RETR 1", "TOP 1 1", "DELE 1",
                    "RSET", "NOOP"):
            r = c.err(cmd)
            assert b"logged in" in r.lower(), r
        c.err(f"PASS {PASSWORDS[ALICE]}")  # no USER yet
        c.login()
        for cmd in (f"USER {ALICE}", f"PASS {PASSWORDS[ALICE]}",
                    "AUTH PLAIN", "STLS", "APOP a b"):
            c.err(cmd)
        c.ok("NOOP")
        c.ok("CAPA")
        c.multi()
        c.ok("QUIT")


def test_syntax_errors(make_facteur):
    f = make_facteur()
    deliver(f, [make_message(subject="one")])
    with pop3(f) as c:
        for cmd in ("RETR", "RETR 0", "RETR 2", "RETR x", "RETR -1",
                    "RETR 1 2", "RETR 4294967296", "TOP 1", "TOP 1 x",
                    "TOP 1 -1", "DELE", "DELE 1 1", "LIST 1 2", "LIST 0",
                    "UIDL 9", "STAT 1", "NOOP x", "RSET 1", "QUIT now",
                    "CAPA x"):
            c.err(cmd)
        # Keywords are case-insensitive; arguments may be spaced.
        assert c.ok("stat") == c.ok("StAt")
        c.ok("list  1 ")
        c.ok("QUIT")


def test_user_syntax(shared_facteur):
    with POP3Conn(shared_facteur.ports["pop3s"], tls=True) as c:
        c.err("USER")
        c.err("USER a b")
        # Spaces around the name are tolerated.
        c.ok(f"USER   {ALICE}  ")
        c.ok(f"PASS {PASSWORDS[ALICE]}")
        c.ok("QUIT")


# ------------------------------------------------------------ limits, garbage

def test_long_command_line(shared_facteur):
    with pop3(shared_facteur) as c:
        r = c.err("NOOP " + "x" * 995)  # 1,000 bytes
        assert b"too long" in r.lower()
        # RFC 2449: 255 octets with CRLF; 300 is too long.
        c.err("LIST " + "1" * 295)
        c.ok("NOOP")
        # A 1 MB line costs nothing and is answered once.
        c.send("LIST " + "1" * (1 << 20) + "\r\n")
        r = c.line()
        assert r.startswith(b"-ERR"), r
        c.ok("NOOP")
        c.ok("QUIT")


def test_garbage_and_nul(shared_facteur):
    with pop3(shared_facteur) as c:
        c.err("HELLO")
        c.err("GET / HTTP/1.1")
        c.err("\x16\x03\x01\x02\x00\x01")
        c.err("NOOP\x00")
        c.err("")
        c.err("  NOOP")
        c.send(b"\xff\xfe\xfd\r\n")
        assert c.line().startswith(b"-ERR")
        c.ok("NOOP")
        c.ok("QUIT")


def test_too_many_bad_commands_close(shared_facteur):
    with POP3Conn(shared_facteur.ports["pop3"]) as c:
        c.send("".join(f"BAD{i}\r\n" for i in range(40)))
        data = c.expect_eof()
        lines = (c.greeting + b"\r\n" + data).split(b"\r\n")
        errs = [ln for ln in lines if ln.startswith(b"-ERR")]
        assert 20 <= len(errs) <= 22, lines
        assert b"Too many" in errs[-1]


def test_bare_lf_commands(shared_facteur):
    """Lines ending with a bare LF are accepted as commands."""
    with POP3Conn(shared_facteur.ports["pop3s"], tls=True) as c:
        c.send(f"USER {BOB}\n")
        assert c.line().startswith(b"+OK")
        c.send(f"PASS {PASSWORDS[BOB]}\n")
        assert c.line().startswith(b"+OK")
        c.send("QUIT\n")
        assert c.line().startswith(b"+OK")


# ------------------------------------------------------------ pipelining

def test_pipelined_session(make_facteur):
    f = make_facteur()
    deliver(f, [make_message(subject=f"p{i}") for i in range(3)])
    with POP3Conn(f.ports["pop3s"], tls=True) as c:
        c.send(f"CAPA\r\nUSER {ALICE}\r\nPASS {PASSWORDS[ALICE]}\r\n"
               "STAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 2 0\r\nLIST 3\r\n"
               "DELE 1\r\nSTAT\r\nRSET\r\nNOOP\r\nDELE 3\r\nQUIT\r\n")
        assert c.line().startswith(b"+OK")
        assert b"PIPELINING" in c.multi()
        assert c.line().startswith(b"+OK")
        assert c.line().startswith(b"+OK Logged in")
        stat = c.line()
        assert stat.startswith(b"+OK 3 ")
        assert c.line().startswith(b"+OK")
        assert len(c.multi()) == 3
        assert c.line().startswith(b"+OK")
        assert len(c.multi()) == 3
        assert c.line().endswith(b" octets")
        assert b"Subject: p0" in c.multi()
        assert c.line().startswith(b"+OK")
        top = c.multi()
        assert b"Subject: p1" in top and top[-1] == b""
        assert c.line().startswith(b"+OK 3 ")
        assert c.line().startswith(b"+OK")           # DELE 1
        assert c.line().startswith(b"+OK 2 ")        # STAT
        assert c.line().startswith(b"+OK")           # RSET
        assert c.line() == b"+OK"                    # NOOP
        assert c.line().startswith(b"+OK")           # DELE 3
        assert c.line().startswith(b"+OK Bye")       # QUIT
        c.expect_eof()
    subjects = [m for _, m in f.mailbox(ALICE)]
    assert len(subjects) == 2
    assert not any(b"Subject: p2" in m for m in subjects)


def test_commands_after_quit_not_run(make_facteur):
    f = make_facteur()
    deliver(f, [make_message(subject="stay")])
    with pop3(f) as c:
        c.send("QUIT\r\nDELE 1\r\nQUIT\r\n")
        assert c.line().startswith(b"+OK Bye")
        assert c.expect_eof() == b""
    assert len(f.mailbox(ALICE)) == 1


# ------------------------------------------------------------ shutdown

def test_shutdown_closes_without_update(make_facteur):
    f = make_facteur()
    deliver(f, [make_message(subject="kept")])
    with pop3(f) as c:
        c.ok("DELE 1")
        f.stop()
        data = c.expect_eof()
        assert data.startswith(b"-ERR [SYS/TEMP]"), data
    f.start()
    assert len(f.mailbox(ALICE)) == 1
    assert "pop3 id=" in f.log() and "reason=shutdown" in f.log()


def test_refused_when_too_many_connections(make_facteur):
    f = make_facteur(config={"max_connections_per_ip": "2"})
    # The fixture's start-up probes may still hold slots for a moment.
    time.sleep(T(0.3))
    held = [POP3Conn(f.ports["pop3"]) for _ in range(2)]
    try:
        s = socket.create_connection(("127.0.0.1", f.ports["pop3"]),
                                     timeout=T(10))
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        assert data.startswith(b"-ERR [SYS/TEMP]"), data
    finally:
        for c in held:
            c.close()
