"""
TLS and authentication: STARTTLS on 25 and 587, implicit TLS on 465, TLS
1.2 minimum, the self-signed certificate, AUTH PLAIN and LOGIN only after
TLS on the submission ports, wrong passwords, sending only as one's own
addresses, STARTTLS command injection, and certificate reload on SIGHUP.
"""
import base64
import re
import shutil
import smtplib
import ssl
import subprocess
import time

import pytest

from clients import b64
from conftest import (ALICE, BOB, HOSTNAME, PASSWORDS, SMTPConn,
                      T, assert_stored_intact, client_tls_context, expect,
                      expect_queued, make_message, send_message, split_trace,
                      wait_until)


def received_of(stored):
    fields, _ = split_trace(stored)
    rec = b"".join(f for f in fields if f.lower().startswith(b"received:"))
    return re.sub(rb"\r\n[ \t]+", b" ", rec).decode()


def test_starttls_auth_plain_and_send_587(facteur):
    ctx = client_tls_context()
    msg = make_message(ALICE, BOB, subject="from alice")
    with smtplib.SMTP("127.0.0.1", facteur.ports["submission"],
                      timeout=T(20)) as s:
        s.ehlo("client.test")
        assert s.has_extn("starttls")
        assert not s.has_extn("auth")
        code, _ = s.starttls(context=ctx)
        assert code == 220
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
        s.ehlo("client.test")
        assert "PLAIN" in s.esmtp_features["auth"].upper().split()
        assert "LOGIN" in s.esmtp_features["auth"].upper().split()
        s.user, s.password = ALICE, PASSWORDS[ALICE]
        code, text = s.auth("PLAIN", s.auth_plain, initial_response_ok=True)
        assert code == 235, text
        assert s.sendmail(ALICE, [BOB], msg) == {}
        tls_version = s.sock.version()
    (_, stored), = facteur.wait_messages(BOB, 1)
    assert_stored_intact(stored, msg, sender=ALICE)
    rec = received_of(stored)
    assert re.search(r"\bwith ESMTPSA\b", rec), rec
    assert tls_version in rec, rec
    assert ALICE in rec, rec


def test_auth_login_587(facteur):
    with facteur.submission(auth=False) as c:
        expect(c.cmd("AUTH LOGIN"), 334)
        expect(c.cmd(b64(ALICE)), 334)
        expect(c.cmd(b64(PASSWORDS[ALICE])), 235, "2.7.0")
        # once authenticated, AUTH is refused (RFC 4954 4)
        expect(c.cmd("AUTH PLAIN " + b64("\0" + ALICE + "\0x")), 503)
        msg = make_message(ALICE, BOB)
        expect_queued(send_message(c, ALICE, BOB, msg))
    (_, stored), = facteur.wait_messages(BOB, 1)
    assert_stored_intact(stored, msg, sender=ALICE)


def test_auth_plain_without_initial_response(facteur):
    with facteur.submission(auth=False) as c:
        r = expect(c.cmd("AUTH PLAIN"), 334)
        assert r.lines[-1].rstrip() == "334", r
        expect(c.cmd(b64("\0" + BOB + "\0" + PASSWORDS[BOB])), 235)


def test_auth_cancelled(facteur):
    with facteur.submission(auth=False) as c:
        expect(c.cmd("AUTH LOGIN"), 334)
        expect(c.cmd("*"), 501)
        expect(c.cmd("MAIL FROM:<alice@example.test>"), 530, "5.7.0")


def test_implicit_tls_465(facteur):
    msg = make_message(BOB, ALICE, subject="over 465")
    ctx = client_tls_context()
    with smtplib.SMTP_SSL("127.0.0.1", facteur.ports["submissions"],
                          context=ctx, timeout=T(20)) as s:
        s.ehlo("client.test")
        assert not s.has_extn("starttls")
        assert "PLAIN" in s.esmtp_features["auth"].upper()
        s.login(BOB, PASSWORDS[BOB])
        assert s.sendmail(BOB, [ALICE], msg) == {}
    (_, stored), = facteur.wait_messages(ALICE, 1)
    assert_stored_intact(stored, msg, sender=BOB)
    assert "ESMTPSA" in received_of(stored)


def test_starttls_on_25_then_send(facteur):
    msg = make_message("someone@remote.test", ALICE)
    with facteur.smtp() as c:
        c.ehlo()
        c.starttls()
        # STARTTLS resets the session: EHLO is required again
        expect(c.cmd("MAIL FROM:<someone@remote.test>"), 503, "5.5.1")
        c.ehlo()
        assert not c.has_ext("STARTTLS")
        # a second STARTTLS is refused
        r = c.cmd("STARTTLS")
        assert 500 <= r.code < 600, r
        expect_queued(send_message(c, "someone@remote.test", ALICE, msg))
    (_, stored), = facteur.wait_messages(ALICE, 1)
    rec = received_of(stored)
    assert re.search(r"\bwith ESMTPS\b", rec), rec


def test_tls_12_minimum(facteur):
    # TLS 1.2 is accepted
    ctx = client_tls_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with SMTPConn(facteur.ports["submissions"], greeting=False) as c:
        c.sock = ctx.wrap_socket(c.sock, server_hostname=HOSTNAME)
        assert c.sock.version() == "TLSv1.2"
        expect(c.reply(), 220)
    # TLS 1.1 and 1.0 are not
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    try:
        old.set_ciphers("DEFAULT:@SECLEVEL=0")
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ssl.SSLError, ValueError) as e:
        pytest.skip(f"this Python cannot offer TLS 1.1: {e}")
    with SMTPConn(facteur.ports["submissions"], greeting=False) as c:
        try:
            c.sock = old.wrap_socket(c.sock, server_hostname=HOSTNAME)
        except ssl.SSLError as e:
            if "NO_PROTOCOLS_AVAILABLE" in str(e) or \
                    "no protocols available" in str(e):
                pytest.skip(f"the client library refuses TLS 1.1: {e}")
            return  # the server refused it
        except (ConnectionResetError, BrokenPipeError):
            return
        raise AssertionError(f"TLS {c.sock.version()} was accepted")


def test_auth_refused_before_tls(facteur):
    with facteur.smtp("submission") as c:
        c.ehlo()
        assert not c.has_ext("AUTH")
        r = c.auth_plain(ALICE, PASSWORDS[ALICE])
        assert 500 <= r.code < 600, r
        # LOGIN neither, and without a 334 challenge
        r = c.cmd("AUTH LOGIN")
        assert 500 <= r.code < 600, r
        # not authenticated
        expect(c.cmd(f"MAIL FROM:<{ALICE}>"), 530, "5.7.0")


def test_auth_plaintext_loopback_allows_auth_without_tls(make_facteur):
    f = make_facteur(config={"auth_plaintext_loopback": "yes"})
    with f.smtp("submission") as c:
        c.ehlo()
        assert c.has_ext("AUTH")
        expect(c.auth_plain(ALICE, PASSWORDS[ALICE]), 235, "2.7.0")
        msg = make_message(ALICE, BOB)
        expect_queued(send_message(c, ALICE, BOB, msg))
    assert len(f.wait_messages(BOB, 1)) == 1


def test_no_auth_on_port_25_even_after_tls(facteur):
    with facteur.smtp() as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        assert not c.has_ext("AUTH")
        r = c.auth_plain(ALICE, PASSWORDS[ALICE])
        assert 500 <= r.code < 600, r
        expect(c.cmd(f"MAIL FROM:<{ALICE}>"), 250)
        expect(c.cmd("RCPT TO:<friend@elsewhere.test>"), 554, "5.7.1")


def test_wrong_password(facteur):
    with facteur.submission(auth=False) as c:
        expect(c.auth_plain(ALICE, "wrong"), 535, "5.7.8")
        # an unknown user gets the same answer (no user enumeration)
        expect(c.auth_plain("nobody@example.test", "wrong"), 535, "5.7.8")
        expect(c.cmd(f"MAIL FROM:<{ALICE}>"), 530, "5.7.0")
        # the right password still works in the same session
        expect(c.auth_plain(ALICE, PASSWORDS[ALICE]), 235, "2.7.0")
        expect(c.cmd(f"MAIL FROM:<{ALICE}>"), 250)


def test_too_many_auth_failures_close_session(facteur):
    # auth_max_failures = 3 in the test configuration
    with facteur.smtp("submissions") as c:
        c.ehlo()
        for _ in range(2):
            expect(c.auth_plain(ALICE, "wrong"), 535, "5.7.8")
        c.send("AUTH PLAIN " + b64("\0" + ALICE + "\0wrong") + "\r\n")
        r = c.reply()
        assert r.code in (535, 421), r
        if r.code == 535:
            r = c.reply_or_eof()
            assert r is None or r.code == 421, r
        assert c.expect_eof() == b""


def test_auth_failure_delay(make_facteur):
    f = make_facteur(config={"auth_failure_delay": "1s"})
    with f.smtp("submissions") as c:
        c.ehlo()
        for user in (ALICE, "nobody@example.test"):
            t = time.monotonic()
            expect(c.auth_plain(user, "wrong"), 535, "5.7.8")
            assert time.monotonic() - t >= 0.9
        # commands sent during the delay wait for its answer
        c.send("AUTH PLAIN " + b64("\0" + ALICE + "\0wrong") +
               "\r\nNOOP\r\n")
        expect(c.reply(), 421, "4.7.0")
        assert c.expect_eof() == b""
    with f.smtp("submissions") as c:
        c.ehlo()
        # a good password is answered at once, after a failure too
        expect(c.auth_plain(ALICE, "wrong"), 535, "5.7.8")
        t = time.monotonic()
        expect(c.auth_plain(ALICE, PASSWORDS[ALICE]), 235, "2.7.0")
        assert time.monotonic() - t < T(0.9)
    assert "reason=\"no such user\"" in f.log()


def test_user_can_send_only_as_own_addresses(facteur):
    facteur.cli("alias", "add", "sales@example.test", ALICE)
    with facteur.submission(ALICE) as c:
        expect(c.cmd(f"MAIL FROM:<{BOB}>"), 553, "5.7.1")
        expect(c.cmd("MAIL FROM:<ceo@remote.test>"), 553, "5.7.1")
        expect(c.cmd("MAIL FROM:<Alice@Example.Test>"), 250)
        expect(c.cmd("RSET"), 250)
        expect(c.cmd("MAIL FROM:<alice+tag@example.test>"), 250)
        expect(c.cmd("RSET"), 250)
        expect(c.cmd("MAIL FROM:<sales@example.test>"), 250)
        expect(c.cmd("RSET"), 250)
        # what was refused did not start a transaction
        msg = make_message(ALICE, BOB)
        expect_queued(send_message(c, ALICE, BOB, msg))
        # the null sender is nobody's: a read receipt (RFC 8098)
        mdn = make_message(ALICE, BOB, subject="Read: hello")
        expect_queued(send_message(c, "", BOB, mdn))
    got = facteur.wait_messages(BOB, 2)
    assert len(got) == 2
    assert b"Return-Path: <>" in got[1][1], got[1][1][:200]


def test_authenticated_non_local_recipient_is_queued(facteur):
    # relaying for authenticated users (issue 5): accepted for the queue
    with facteur.submission(ALICE) as c:
        expect(c.cmd(f"MAIL FROM:<{ALICE}>"), 250)
        expect(c.cmd("RCPT TO:<friend@elsewhere.test>"), 250, "2.1.5")
        expect(c.cmd(f"RCPT TO:<{BOB}>"), 250)
        expect(c.cmd("RCPT TO:<nobody@example.test>"), 550, "5.1.1")
        expect(c.cmd("RSET"), 250)


@pytest.mark.parametrize("service", ["smtp", "submission"])
def test_starttls_injection(facteur, service):
    """Plaintext pipelined behind STARTTLS (in the same packet) must be
    thrown away, not run after the handshake (CVE-2011-0411 class)."""
    with facteur.smtp(service) as c:
        c.ehlo()
        injected = "RSET\r\n" if service == "smtp" else \
            "AUTH PLAIN " + b64("\0" + ALICE + "\0" + PASSWORDS[ALICE]) + \
            "\r\n"
        c.send("STARTTLS\r\n" + injected)
        expect(c.reply(), 220)
        # anything the server answered in plaintext to the injected
        # command would sit here or break the handshake
        c._wrap()
        # the first reply over TLS must be HELP's, not the injected one's
        expect(c.cmd("HELP"), 214)
        # and the session is new: EHLO is required again
        expect(c.cmd("MAIL FROM:<alice@example.test>"), 503, "5.5.1")
        c.ehlo()
        if service == "submission":
            # the injected AUTH did not log us in
            expect(c.cmd(f"MAIL FROM:<{ALICE}>"), 530, "5.7.0")


def test_self_signed_certificate_created_and_kept(make_facteur):
    f = make_facteur(own_cert=True)
    cert = f.data_dir / "tls" / "cert.pem"
    key = f.data_dir / "tls" / "key.pem"
    assert cert.exists() and key.exists()
    assert key.stat().st_mode & 0o077 == 0, oct(key.stat().st_mode)
    pem = cert.read_text()
    with f.smtp("submissions") as c:
        served = ssl.DER_cert_to_PEM_cert(c.sock.getpeercert(True))
    assert served.strip() == pem.strip()
    assert f.stop() == 0
    f.start()
    assert cert.read_text() == pem, "the certificate was created again"


def test_sighup_reloads_certificate(make_facteur, tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("no openssl tool to make a second certificate")
    f = make_facteur()
    with f.smtp("submissions") as c:
        old = c.sock.getpeercert(True)
    # a connection open across the reload
    keep = f.smtp("submission")
    keep.ehlo()
    r = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
         "-subj", "/CN=new.example.test",
         "-keyout", str(tmp_path / "key.pem"),
         "-out", str(tmp_path / "cert.pem")], capture_output=True)
    assert r.returncode == 0, r.stderr
    shutil.copy(tmp_path / "cert.pem", f.data_dir / "tls" / "cert.pem")
    shutil.copy(tmp_path / "key.pem", f.data_dir / "tls" / "key.pem")
    f.sighup()

    def served():
        with f.smtp("submissions") as c:
            return c.sock.getpeercert(True) != old
    wait_until(served, T(10), "the new certificate after SIGHUP")
    # STARTTLS uses the new one too, and the old connection lives on
    keep.starttls()
    assert keep.sock.getpeercert(True) != old
    keep.ehlo()
    expect(keep.auth_plain(ALICE, PASSWORDS[ALICE]), 235)
    keep.close()


def test_no_stall_after_tls_handshake(facteur):
    """The first reply after a TLS handshake (the greeting on 465, the
    EHLO answer after STARTTLS) comes at once. A write pattern that
    leaves a small TLS record behind Nagle's algorithm waits for the
    client's delayed ACK (40 ms on Linux) on every TLS session."""
    import socket as _socket
    import statistics
    import time

    def greeting_465():
        s = _socket.create_connection(
            ("127.0.0.1", facteur.ports["submissions"]), timeout=T(10))
        s = client_tls_context().wrap_socket(s, server_hostname=HOSTNAME)
        t0 = time.perf_counter()
        data = s.recv(1000)
        took = time.perf_counter() - t0
        s.close()
        assert data.startswith(b"220"), data
        return took

    def ehlo_after_starttls():
        with facteur.smtp("submission") as c:
            c.ehlo()
            c.starttls()
            t0 = time.perf_counter()
            c.ehlo()
            return time.perf_counter() - t0

    limit = 0.025 * (2 if T(1) > 1 else 1)
    for probe in (greeting_465, ehlo_after_starttls):
        samples = [probe() for _ in range(5)]
        med = statistics.median(samples)
        assert med < limit, \
            f"{probe.__name__}: median {med * 1000:.1f} ms over " \
            f"{[round(x * 1000, 1) for x in samples]} ms"


def test_auth_plain_as_another_user_refused(facteur):
    """PLAIN with an authorization identity other than the authenticated
    user (RFC 4616: authzid) must not let alice act as bob."""
    with facteur.smtp("submissions") as c:
        c.ehlo()
        token = base64.b64encode(
            f"{BOB}\0{ALICE}\0{PASSWORDS[ALICE]}".encode()).decode()
        r = c.cmd("AUTH PLAIN " + token)
        assert r.code != 235 or \
            c.cmd(f"MAIL FROM:<{BOB}>").code != 250, \
            "alice's password let her send as bob"
        if r.code != 235:
            assert 500 <= r.code < 600, r
        # the same identity twice is fine
        token = base64.b64encode(
            f"{ALICE}\0{ALICE}\0{PASSWORDS[ALICE]}".encode()).decode()
        expect(c.cmd("RSET"), 250)
        r = c.cmd("AUTH PLAIN " + token)
        assert r.code in (235, 503), r  # 503: already authenticated


def test_auth_malformed_responses(facteur):
    # at most two failures per session: auth_max_failures is 3
    with facteur.smtp("submissions") as c:
        c.ehlo()
        expect(c.cmd("AUTH PLAIN !!!notbase64"), 501)
        expect(c.cmd("AUTH CRAM-MD5"), 504)
        expect(c.cmd(f"MAIL FROM:<{ALICE}>"), 530, "5.7.0")
        expect(c.auth_plain(ALICE, PASSWORDS[ALICE]), 235)
    with facteur.smtp("submissions") as c:
        c.ehlo()
        expect(c.cmd("AUTH"), 501)
        expect(c.cmd("AUTH LOGIN"), 334)
        expect(c.cmd("%%%"), 501)
        expect(c.cmd(f"MAIL FROM:<{ALICE}>"), 530, "5.7.0")
        expect(c.auth_plain(ALICE, PASSWORDS[ALICE]), 235)
    with facteur.smtp("submissions") as c:
        c.ehlo()
        expect(c.cmd("AUTH PLAIN " + b64("no-nul-bytes")), (501, 535))
        expect(c.auth_plain(ALICE, PASSWORDS[ALICE]), 235)


def test_sighup_during_tls_sessions(facteur):
    """Reloads (configuration and certificate) while TLS handshakes and
    AUTH checks are in flight: no session fails."""
    import threading
    import time
    f = facteur
    stop = threading.Event()
    done, errors = [0], []

    def worker(i):
        while not stop.is_set():
            try:
                svc = ("submissions", "submission", "smtp")[i % 3]
                with f.smtp(svc) as c:
                    c.ehlo()
                    if svc != "submissions":
                        c.starttls()
                        c.ehlo()
                    if svc != "smtp":
                        expect(c.auth_plain(ALICE, PASSWORDS[ALICE]), 235)
                    expect(c.cmd("QUIT"), 221)
                done[0] += 1
            except Exception as e:  # noqa: B902 - reported below
                errors.append(repr(e))
    threads = [threading.Thread(target=worker, args=(i,))
               for i in range(15)]
    for t in threads:
        t.start()
    try:
        for _ in range(15):
            time.sleep(0.05)  # pacing of the reloads, not a wait
            f.sighup()
        wait_until(lambda: done[0] >= 100 or errors, T(30),
                   "100 TLS sessions")
    finally:
        stop.set()
        for t in threads:
            t.join(T(30))
    assert not errors, errors[:5]
    assert f.running()
