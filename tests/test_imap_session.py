"""
IMAP sessions: greeting, CAPABILITY, NOOP, LOGOUT, STARTTLS, LOGINDISABLED,
LOGIN and AUTHENTICATE PLAIN (with SASL-IR), ID, ENABLE, state checks,
BAD with reasons, the BAD limit, and imaplib against the real server.
"""
import imaplib
import socket
import ssl

import pytest

from conftest import ALICE, BOB, PASSWORDS, T, client_tls_context
from test_imap_util import IMAPConn, b64, imap


def caps(resp):
    text = resp.decode()
    i = text.index("CAPABILITY ")
    return text[i + len("CAPABILITY "):].rstrip("]").split("]")[0].split()


def test_greeting_and_capability_plain(shared_facteur):
    with IMAPConn(shared_facteur.ports["imap"]) as c:
        assert c.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 ")
        untagged, tagged = c.cmd("CAPABILITY")
        assert tagged == b"a1 OK CAPABILITY completed"
        assert len(untagged) == 1
        cl = caps(untagged[0])
        assert cl[0] == "IMAP4rev1"
        assert "STARTTLS" in cl and "LOGINDISABLED" in cl
        assert not any(x.startswith("AUTH=") for x in cl)
        assert "SASL-IR" in cl and "LITERAL+" in cl


def test_capability_tls(shared_facteur):
    with IMAPConn(shared_facteur.ports["imaps"], tls=True) as c:
        cl = caps(c.greeting)
        assert "AUTH=PLAIN" in cl
        assert "LOGINDISABLED" not in cl and "STARTTLS" not in cl


def test_login_refused_before_tls(shared_facteur):
    with IMAPConn(shared_facteur.ports["imap"]) as c:
        st, tagged, _ = c.status(f'LOGIN "{ALICE}" "{PASSWORDS[ALICE]}"')
        assert st == "NO" and b"[PRIVACYREQUIRED]" in tagged
        st, tagged, _ = c.status("AUTHENTICATE PLAIN " +
                                 b64(f"\0{ALICE}\0{PASSWORDS[ALICE]}"))
        assert st == "NO" and b"[PRIVACYREQUIRED]" in tagged


def test_starttls_then_login(shared_facteur):
    with IMAPConn(shared_facteur.ports["imap"]) as c:
        c.starttls()
        cl = caps(c.cmd("CAPABILITY")[0][0])
        assert "AUTH=PLAIN" in cl and "STARTTLS" not in cl
        untagged, tagged = c.cmd(f'LOGIN "{ALICE}" "{PASSWORDS[ALICE]}"')
        assert tagged.startswith(b"a3 OK [CAPABILITY IMAP4rev1 ")
        st, tagged, _ = c.status("STARTTLS")
        assert st == "BAD"


def test_starttls_injection_discarded(shared_facteur):
    """Commands pipelined after STARTTLS in clear are thrown away."""
    with IMAPConn(shared_facteur.ports["imap"]) as c:
        c.send("a1 STARTTLS\r\na2 CAPABILITY\r\n")
        assert c.response() == b"a1 OK Begin TLS negotiation now"
        c._wrap()
        untagged, tagged = c.cmd("NOOP")
        assert untagged == [] and tagged.startswith(b"a1 OK")


def test_loopback_plaintext_allowed(make_facteur):
    f = make_facteur(config={"auth_plaintext_loopback": "yes"})
    with IMAPConn(f.ports["imap"]) as c:
        cl = caps(c.greeting)
        assert "LOGINDISABLED" not in cl and "AUTH=PLAIN" in cl
        c.login(BOB)


def test_login_wrong_password_and_unknown_user(shared_facteur):
    with IMAPConn(shared_facteur.ports["imaps"], tls=True) as c:
        st, tagged, _ = c.status(f'LOGIN "{ALICE}" "nope"')
        assert st == "NO" and b"[AUTHENTICATIONFAILED]" in tagged
        st, tagged, _ = c.status('LOGIN "nobody@example.test" "x"')
        assert st == "NO" and b"[AUTHENTICATIONFAILED]" in tagged
        c.login(ALICE)


def test_too_many_auth_failures(shared_facteur):
    with IMAPConn(shared_facteur.ports["imaps"], tls=True) as c:
        for _ in range(2):
            assert c.status(f'LOGIN "{ALICE}" "bad"')[0] == "NO"
        c.send(f'a9 LOGIN "{ALICE}" "bad"\r\n')
        rest = c.expect_eof()
        assert b"a9 NO [AUTHENTICATIONFAILED]" in rest
        assert b"* BYE" in rest


def test_login_literal_and_case(shared_facteur):
    with IMAPConn(shared_facteur.ports["imaps"], tls=True) as c:
        pw = PASSWORDS[BOB].encode()
        c.ok("login {%d}" % len(BOB.upper()), BOB.upper().encode() +
             b" {%d}" % len(pw) + b"\r\n" + pw + b"\r\n")


def test_authenticate_plain_continuation(shared_facteur):
    with IMAPConn(shared_facteur.ports["imaps"], tls=True) as c:
        c.send("a1 AUTHENTICATE PLAIN\r\n")
        assert c.response() == b"+ "
        c.send(b64(f"\0{ALICE}\0{PASSWORDS[ALICE]}") + "\r\n")
        r = c.response()
        assert r.startswith(b"a1 OK [CAPABILITY "), r


def test_authenticate_sasl_ir_and_cancel(shared_facteur):
    with IMAPConn(shared_facteur.ports["imaps"], tls=True) as c:
        c.send("a1 AUTHENTICATE PLAIN\r\n")
        assert c.response() == b"+ "
        c.send("*\r\n")
        assert c.response().startswith(b"a1 BAD")
        st, tagged, _ = c.status("AUTHENTICATE PLAIN " +
                                 b64(f"{BOB}\0{ALICE}\0{PASSWORDS[ALICE]}"))
        assert st == "NO"
        st, tagged, _ = c.status("AUTHENTICATE PLAIN " +
                                 b64(f"{ALICE}\0{ALICE}\0"
                                     f"{PASSWORDS[ALICE]}"))
        assert st == "OK", tagged


def test_authenticate_unknown_mechanism(shared_facteur):
    with IMAPConn(shared_facteur.ports["imaps"], tls=True) as c:
        st, tagged, _ = c.status("AUTHENTICATE CRAM-MD5")
        assert st == "NO"
        st, tagged, _ = c.status("AUTHENTICATE PLAIN !!notbase64")
        assert st == "BAD"


def test_states_and_bad_reasons(shared_facteur):
    with IMAPConn(shared_facteur.ports["imaps"], tls=True) as c:
        assert c.cmd("IDLE")[1] == b"a1 BAD Log in first"
        assert c.cmd("ENABLE X")[1] == b"a2 BAD Log in first"
        assert c.cmd("FROB")[1] == b"a3 BAD Unknown command"
        assert c.cmd("NOOP extra")[1].startswith(b"a4 BAD")
        assert c.cmd("UID")[1].startswith(b"a5 BAD")
        assert c.cmd("UID LOGIN x y")[1] == b"a6 BAD Unknown UID command"
        c.login()
        assert c.cmd("LOGIN a b")[1] == b"a8 BAD Already logged in"
        assert c.cmd("STARTTLS")[1].startswith(b"a9 BAD")


def test_noop_id_enable_logout(shared_facteur):
    with imap(shared_facteur) as c:
        assert c.ok("NOOP") == []
        u = c.ok('ID ("name" "pytest" "version" NIL)')
        assert u == [b'* ID ("name" "facteur" "vendor" "facteur")']
        assert c.ok("ID NIL")
        assert c.status('ID ("name")')[0] == "BAD"
        assert c.ok("ENABLE UTF8=ACCEPT X-UNKNOWN") == \
            [b"* ENABLED UTF8=ACCEPT"]
        assert c.ok("ENABLE UTF8=ACCEPT") == [b"* ENABLED"]
        c.send("a9 LOGOUT\r\n")
        rest = c.expect_eof()
        assert rest == b"* BYE Logging out\r\na9 OK LOGOUT completed\r\n"


def test_enable_not_before_login(shared_facteur):
    with IMAPConn(shared_facteur.ports["imaps"], tls=True) as c:
        assert c.cmd("ENABLE UTF8=ACCEPT")[1] == b"a1 BAD Log in first"


def test_garbage_and_too_many_bad(shared_facteur):
    with IMAPConn(shared_facteur.ports["imap"]) as c:
        c.send(b"\x00\x01\xff garbage\r\n")
        r = c.response()
        assert r.startswith(b"* BAD") or r.startswith(b"\x00"), r
        c.send(b"a1 NOOP (unbalanced\r\n")
        assert c.response().startswith(b"a1 BAD")
        c.send(b"a2 NOOP\r\n")
        assert c.response() == b"a2 OK NOOP completed"
        c.send(b"x FROB\r\n" * 30)
        rest = c.expect_eof()
        assert b"* BYE Too many invalid commands" in rest
    # the server goes on serving others
    with IMAPConn(shared_facteur.ports["imap"]) as c:
        assert c.ok("NOOP") == []


def test_long_line(shared_facteur):
    with IMAPConn(shared_facteur.ports["imap"]) as c:
        c.send(b"a1 NOOP " + b"x" * (1024 * 1024) + b"\r\n")
        r = c.response()
        assert r.startswith(b"a1 BAD Line too long"), r[:100]
        c.send(b"a2 NOOP\r\n")
        assert c.response() == b"a2 OK NOOP completed"


def test_huge_literal_refused_without_continuation(shared_facteur):
    with IMAPConn(shared_facteur.ports["imaps"], tls=True) as c:
        c.login()
        c.send(b"a5 APPEND INBOX {2147483648}\r\n")
        r = c.response()
        assert r.startswith(b"a5 NO [TOOBIG]"), r
        c.send(b"a6 NOOP\r\n")
        assert c.response() == b"a6 OK NOOP completed"


def test_preauth_literal_limit(shared_facteur):
    with IMAPConn(shared_facteur.ports["imap"]) as c:
        c.send(b"a1 LOGIN {100000}\r\n")
        r = c.response()
        assert r.startswith(b"a1 NO [TOOBIG]") or r.startswith(b"a1 BAD"), r
        c.send(b"a2 LOGIN {100000+}\r\n")
        assert c.expect_eof().startswith(b"* BYE")


def test_vanished_client_and_others_served(shared_facteur):
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1",
                                      shared_facteur.ports["imap"]))
        s.sendall(b"a1 LOGIN {5}\r\n")
        s.close()
    with imap(shared_facteur) as c:
        assert c.ok("NOOP") == []


def test_imaplib_login_logout(shared_facteur):
    m = imaplib.IMAP4_SSL("127.0.0.1", shared_facteur.ports["imaps"],
                          ssl_context=client_tls_context())
    typ, _ = m.login(ALICE, PASSWORDS[ALICE])
    assert typ == "OK"
    typ, data = m.capability()
    assert typ == "OK" and b"IMAP4rev1" in data[0]
    assert m.noop()[0] == "OK"
    assert m.logout()[0] == "BYE"


def test_imaplib_starttls(shared_facteur):
    m = imaplib.IMAP4("127.0.0.1", shared_facteur.ports["imap"])
    m.starttls(ssl_context=client_tls_context())
    assert m.login(BOB, PASSWORDS[BOB])[0] == "OK"
    m.logout()


def test_connections_per_user(make_facteur):
    f = make_facteur(config={"imap_max_connections_per_user": "2"})
    a = imap(f)
    b = imap(f)
    with IMAPConn(f.ports["imaps"], tls=True) as c:
        st, tagged, _ = c.status(f'LOGIN "{ALICE}" "{PASSWORDS[ALICE]}"')
        assert st == "NO" and b"[LIMIT]" in tagged
        c.login(BOB)
    a.close()
    import time
    deadline = time.monotonic() + T(5)
    while True:
        with IMAPConn(f.ports["imaps"], tls=True) as c:
            st, tagged, _ = c.status(f'LOGIN "{ALICE}" '
                                     f'"{PASSWORDS[ALICE]}"')
            if st == "OK":
                break
        assert time.monotonic() < deadline, tagged
        time.sleep(0.05)
    b.close()


def test_shutdown_says_bye(make_facteur):
    f = make_facteur()
    c = imap(f)
    f.stop()
    rest = c.expect_eof()
    assert b"* BYE" in rest


def test_idle_timeout_says_bye(make_facteur):
    """imap_timeout (60 s at least): a silent client, before or after
    login, in IDLE or not, gets BYE and is closed."""
    import time
    f = make_facteur(config={"imap_timeout": "60s"})
    quiet = IMAPConn(f.ports["imap"])
    idler = imap(f)
    idler.ok("SELECT INBOX")
    idler.send("i IDLE\r\n")
    assert idler.response() == b"+ idling"
    t0 = time.monotonic()
    for c in (quiet, idler):
        rest = c.expect_eof(timeout=T(30) + 60)
        assert b"* BYE Autologout" in rest, rest
    assert time.monotonic() - t0 >= 55
    with imap(f) as c:
        assert c.ok("NOOP") == []


def test_clients_vanishing_mid_command(make_facteur):
    """Clients that go away during a literal, an APPEND commit, a long
    FETCH, IDLE or a password check leave the server serving others."""
    from conftest import make_message
    f = make_facteur()
    with imap(f) as c:
        m = make_message(body="q" * 200000)
        for _ in range(5):
            c.ok(f"APPEND INBOX {{{len(m)}}}", m + b"\r\n")
    for mode in range(5):
        c = imap(f)
        if mode == 0:
            c.send(b"x APPEND INBOX {100}\r\n")
            c.response()
            c.send(b"partial")
        elif mode == 1:
            m = make_message()
            c.send(b"x APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
        elif mode == 2:
            c.ok("SELECT INBOX")
            c.send(b"x FETCH 1:* BODY[]\r\n")
        elif mode == 3:
            c.ok("SELECT INBOX")
            c.send(b"x IDLE\r\n")
        else:
            c.close()
            c = IMAPConn(f.ports["imaps"], tls=True)
            c.send(f'x LOGIN "{ALICE}" "{PASSWORDS[ALICE]}"\r\n')
        c.sock.close()
    with imap(f) as c:
        c.ok("SELECT INBOX")
        u = c.ok("FETCH 1:* UID")
        assert len(u) >= 5
