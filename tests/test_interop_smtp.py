"""
Submission with real SMTP clients from Debian: curl, msmtp and swaks send
to a running facteur over STARTTLS on the submission port and over implicit
TLS (465), with AUTH PLAIN and LOGIN, 8-bit bodies and SMTPUTF8 (curl: its
addresses in UTF-8); each message is then read back over IMAP and compared
byte for byte with what the client sent (after the Return-Path and
Received fields added on delivery). Every tool's configuration is written
into the test's directory; HOME points there too.
"""
import os
import re
import select
import subprocess
import time

import pytest

from conftest import ALICE, HOSTNAME, PASSWORDS, T
from interop_util import (crlf, imap_messages, interop_server, make_cert,
                          need, new_user, run, trace_split)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from interop_server(tmp_path_factory)


def only_message(srv, user, password):
    msgs = imap_messages(srv, user, password)
    assert len(msgs) == 1, f"{user}: {len(msgs)} messages: {msgs!r}"
    return next(iter(msgs.values()))


MSG_8BIT = (b"From: {frm}\r\nTo: {to}\r\nSubject: =?UTF-8?Q?caf=C3=A9?=\r\n"
            b"Date: Thu, 26 Nov 2026 03:00:00 +0000\r\n"
            b"Message-ID: <{tag}@example.test>\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n"
            b"Caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9e\r\n"
            b".\r\n..two dots\r\n.\r\nlast line\r\n")


def message(frm, to, tag):
    return MSG_8BIT.replace(b"{frm}", frm.encode()).replace(
        b"{to}", to.encode()).replace(b"{tag}", tag.encode())


# ------------------------------------------------------------------ curl

@pytest.mark.parametrize("service", ["submission", "submissions"])
def test_curl_submission(srv, tmp_path, service):
    """curl with AUTH over STARTTLS (--ssl-reqd) or smtps://, the server's
    certificate verified with --cacert: the message, 8-bit body and lines
    of dots included, arrives as sent."""
    need("curl")
    to, pw = new_user(srv)
    data = message(ALICE, to, f"curl-{service}")
    (tmp_path / "m.eml").write_bytes(data)
    scheme = "smtp" if service == "submission" else "smtps"
    r = run(["curl", "-q", "-sS", "-v", "--ssl-reqd", "--cacert", srv.cert,
             "--url", f"{scheme}://127.0.0.1:{srv.ports[service]}/client.test",
             "--mail-from", ALICE, "--mail-rcpt", to,
             "-u", f"{ALICE}:{PASSWORDS[ALICE]}",
             "-T", tmp_path / "m.eml"], tmp_path=tmp_path)
    log = r.stderr.decode(errors="replace")
    if service == "submission":
        assert "> STARTTLS" in log
    assert "> AUTH PLAIN" in log and "< 235 " in log
    assert "250 2.0.0 OK: queued as" in log
    flags, stored = only_message(srv, to, pw)
    trace, body = trace_split(stored)
    assert body == data
    assert b"with ESMTPSA" in trace and b"(authenticated sender: " + \
        ALICE.encode() in trace
    assert flags == set()


def test_curl_smtputf8(srv, tmp_path):
    """curl says SMTPUTF8 on MAIL FROM when an address is UTF-8: a user
    josé@ sends to himself, logs in with his UTF-8 name, and reads his
    message back."""
    need("curl")
    user, pw = new_user(srv, "jos\u00e9")
    data = (f"From: {user}\r\nTo: {user}\r\nSubject: na\u00efve\r\n"
            "Date: Thu, 26 Nov 2026 03:00:00 +0000\r\n"
            "Message-ID: <utf8@example.test>\r\n\r\nd\u00e9j\u00e0 vu\r\n"
            ).encode()
    (tmp_path / "m.eml").write_bytes(data)
    r = run(["curl", "-q", "-sS", "-v", "--ssl-reqd", "-k",
             "--url", f"smtp://127.0.0.1:{srv.ports['submission']}",
             "--mail-from", user, "--mail-rcpt", user,
             "-u", f"{user}:{pw}", "-T", tmp_path / "m.eml"],
            tmp_path=tmp_path)
    log = r.stderr.decode("utf-8", errors="replace")
    assert f"> MAIL FROM:<{user}>" in log and "SMTPUTF8" in log
    _, stored = only_message(srv, user, pw)
    assert trace_split(stored)[1] == data
    # And again over IMAP with curl, which logs in with the UTF-8 name.
    r = run(["curl", "-q", "-sS", "-k", "-u", f"{user}:{pw}",
             f"imaps://127.0.0.1:{srv.ports['imaps']}/INBOX;UID=1"],
            tmp_path=tmp_path)
    assert trace_split(r.stdout)[1] == data


def test_curl_bare_lf_refused(srv, tmp_path):
    """A file with Unix line ends sent by curl without --crlf: the data is
    refused whole (554, bare LF: no smuggling), nothing is stored; with
    --crlf the same file goes through."""
    need("curl")
    to, pw = new_user(srv)
    data = message(ALICE, to, "lf").replace(b"\r\n", b"\n")
    (tmp_path / "m.eml").write_bytes(data)
    base = ["curl", "-q", "-sS", "-v", "--ssl-reqd", "-k",
            "--url", f"smtp://127.0.0.1:{srv.ports['submission']}",
            "--mail-from", ALICE, "--mail-rcpt", to,
            "-u", f"{ALICE}:{PASSWORDS[ALICE]}", "-T", tmp_path / "m.eml"]
    r = run(base, tmp_path=tmp_path, check=False)
    assert r.returncode != 0
    assert b"< 554 5.6.0" in r.stderr and b"bare LF" in r.stderr
    assert imap_messages(srv, to, pw) == {}
    run(base + ["--crlf"], tmp_path=tmp_path)
    _, stored = only_message(srv, to, pw)
    assert trace_split(stored)[1] == crlf(data)


def test_curl_wrong_password(srv, tmp_path):
    """A wrong password: curl stops at 535 (exit 67), nothing is sent."""
    need("curl")
    to, pw = new_user(srv)
    (tmp_path / "m.eml").write_bytes(message(ALICE, to, "wrong"))
    r = run(["curl", "-q", "-sS", "-v", "--ssl-reqd", "-k",
             "--url", f"smtp://127.0.0.1:{srv.ports['submission']}",
             "--mail-from", ALICE, "--mail-rcpt", to,
             "-u", f"{ALICE}:not-the-password", "-T", tmp_path / "m.eml"],
            tmp_path=tmp_path, check=False)
    assert r.returncode == 67, r.stderr
    assert b"< 535 5.7.8" in r.stderr
    assert imap_messages(srv, to, pw) == {}


# ------------------------------------------------------------------ msmtp

def msmtp_rc(srv, tmp_path, *, implicit, auth, user=ALICE, password=None):
    rc = tmp_path / "msmtprc"
    rc.write_text(
        "defaults\n"
        f"logfile {tmp_path / 'msmtp.log'}\n"
        f"tls_trust_file {srv.cert}\n"
        "set_date_header off\n"
        "set_msgid_header off\n"
        "account test\n"
        "host 127.0.0.1\n"
        f"port {srv.ports['submissions' if implicit else 'submission']}\n"
        f"from {user}\n"
        f"auth {auth}\n"
        f"user {user}\n"
        f"password {password or PASSWORDS[user]}\n"
        "tls on\n"
        f"tls_starttls {'off' if implicit else 'on'}\n", encoding="utf-8")
    rc.chmod(0o600)
    return rc


@pytest.mark.parametrize("implicit,auth", [(False, "plain"),
                                           (True, "login")])
def test_msmtp(srv, tmp_path, implicit, auth):
    """msmtp reads a message with Unix line ends on standard input (as
    sendmail would), checks the certificate against the test's, sends over
    STARTTLS with AUTH PLAIN or over 465 with AUTH LOGIN: the stored
    message is the input with CRLF line ends, nothing else changed."""
    need("msmtp")
    to, pw = new_user(srv)
    data = message(ALICE, to, f"msmtp-{auth}").replace(b"\r\n", b"\n")
    rc = msmtp_rc(srv, tmp_path, implicit=implicit, auth=auth)
    r = run(["msmtp", "-C", rc, "-a", "test", "-v", to], input=data,
            tmp_path=tmp_path)
    log = (r.stdout + r.stderr).decode(errors="replace")
    assert f"--> AUTH {auth.upper()}" in log
    assert ("--> STARTTLS" in log) == (not implicit)
    assert "<-- 250 2.0.0 OK: queued as" in log
    _, stored = only_message(srv, to, pw)
    assert trace_split(stored)[1] == crlf(data)


def test_msmtp_refuses_wrong_certificate(srv, tmp_path):
    """msmtp trusting another certificate stops at the handshake: it
    really checks, and the passing tests above prove ours verifies."""
    need("msmtp", "openssl")
    other = tmp_path / "other"
    other.mkdir()
    cert, _ = make_cert(other)
    to, pw = new_user(srv)
    rc = msmtp_rc(srv, tmp_path, implicit=True, auth="plain")
    rc.write_text(rc.read_text().replace(str(srv.cert), str(cert)))
    r = run(["msmtp", "-C", rc, "-a", "test", to],
            input=message(ALICE, to, "x"), tmp_path=tmp_path, check=False)
    assert r.returncode != 0
    assert b"certificate" in r.stderr.lower()
    assert imap_messages(srv, to, pw) == {}


def test_msmtp_smtputf8_address_refused(srv, tmp_path):
    """msmtp 1.8 does not say SMTPUTF8: its UTF-8 envelope address gets
    553 5.6.7 (RFC 6531 3.5) and msmtp reports it; nothing is stored."""
    need("msmtp")
    user, pw = new_user(srv, "ren\u00e9e")
    rc = msmtp_rc(srv, tmp_path, implicit=False, auth="plain", user=user,
                  password=pw)
    r = run(["msmtp", "-C", rc, "-a", "test", "-v", user],
            input=f"From: {user}\nSubject: x\n\nx\n".encode(),
            tmp_path=tmp_path, check=False)
    if r.returncode == 0:
        # A later msmtp that says SMTPUTF8: then the message is there.
        assert b"SMTPUTF8" in r.stderr
        assert len(imap_messages(srv, user, pw)) == 1
        return
    assert b"553 5.6.7" in r.stderr, r.stderr
    assert imap_messages(srv, user, pw) == {}


# ------------------------------------------------------------------ swaks

@pytest.mark.parametrize("implicit,auth", [(False, "LOGIN"),
                                           (True, "PLAIN")])
def test_swaks(srv, tmp_path, implicit, auth):
    """swaks with AUTH LOGIN over STARTTLS and AUTH PLAIN over 465,
    pipelining its envelope: the data file arrives byte for byte (swaks
    ends the data with one CRLF of its own before the dot)."""
    need("swaks")
    to, pw = new_user(srv)
    data = message(ALICE, to, f"swaks-{auth}")
    (tmp_path / "m.eml").write_bytes(data)
    port = srv.ports["submissions" if implicit else "submission"]
    r = run(["swaks", "--server", "127.0.0.1", "--port", port,
             "--tls-on-connect" if implicit else "--tls",
             "--pipeline", "--helo", "client.test",
             "--auth", auth, "--auth-user", ALICE,
             "--auth-password", PASSWORDS[ALICE],
             "--from", ALICE, "--to", to,
             "--data", f"@{tmp_path / 'm.eml'}"], tmp_path=tmp_path)
    out = r.stdout.decode(errors="replace")
    assert f"AUTH {auth}" in out
    assert "235 2.7.0" in out and "250 2.0.0 OK: queued as" in out
    _, stored = only_message(srv, to, pw)
    assert trace_split(stored)[1] == data + b"\r\n"


def test_swaks_auth_refused_before_tls(srv, tmp_path):
    """swaks trying AUTH without TLS on the submission port: facteur does
    not offer AUTH there (the EHLO has none), swaks gives up without sending
    the password."""
    need("swaks")
    to, pw = new_user(srv)
    r = run(["swaks", "--server", "127.0.0.1",
             "--port", srv.ports["submission"], "--helo", "client.test",
             "--auth", "PLAIN", "--auth-user", ALICE,
             "--auth-password", PASSWORDS[ALICE],
             "--from", ALICE, "--to", to], tmp_path=tmp_path, check=False)
    assert r.returncode != 0
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert "<-  250-STARTTLS" in out
    assert not re.search(r"<-  250[- ]AUTH", out)
    assert "*** Host did not advertise authentication" in out
    assert " -> AUTH" not in out
    assert imap_messages(srv, to, pw) == {}


# ------------------------------------------------------------------ openssl

@pytest.mark.parametrize("proto,service", [
    ("smtp", "submission"), ("smtp", "smtp"), ("imap", "imap"),
    ("pop3", "pop3")])
def test_openssl_starttls(srv, tmp_path, proto, service):
    """openssl s_client -starttls for each protocol: the handshake
    completes, the certificate verifies against the test's for the name
    mx.example.test, TLS 1.3 by default."""
    need("openssl")
    r = run(["openssl", "s_client", "-connect",
             f"127.0.0.1:{srv.ports[service]}", "-starttls", proto,
             "-CAfile", srv.cert, "-verify_hostname", HOSTNAME,
             "-verify_return_error", "-brief"],
            input=b"", tmp_path=tmp_path)
    err = r.stderr.decode(errors="replace")
    assert "CONNECTION ESTABLISHED" in err
    assert "Protocol version: TLSv1.3" in err
    assert "Verification: OK" in err


@pytest.mark.parametrize("service", ["submissions", "imaps", "pop3s"])
def test_openssl_tls_versions(srv, tmp_path, service):
    """Implicit TLS ports: TLS 1.2 and 1.3 are accepted (and the greeting
    follows the handshake), TLS 1.1 is refused with a protocol_version
    alert."""
    need("openssl")
    port = srv.ports[service]
    bye = b"a LOGOUT\r\n" if service == "imaps" else b"QUIT\r\n"
    for version in ("-tls1_2", "-tls1_3"):
        # -ign_eof: read until the server closes after its goodbye.
        r = run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                 version, "-CAfile", srv.cert, "-verify_return_error",
                 "-brief", "-ign_eof"], input=bye, tmp_path=tmp_path)
        assert f"Protocol version: TLSv1.{version[-1]}" in \
            r.stderr.decode(errors="replace")
        greeting = r.stdout.split(b"\r\n")[0]
        assert greeting.startswith((b"220 mx.example.test", b"* OK",
                                    b"+OK")), r.stdout
        assert re.search(rb"(?m)^(221 2\.0\.0|\* BYE|\+OK Bye)", r.stdout), \
            r.stdout
    r = run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
             "-tls1_1", "-brief"], input=b"", tmp_path=tmp_path,
            check=False)
    assert r.returncode != 0
    err = r.stderr.decode(errors="replace")
    assert "alert protocol version" in err or "no protocols available" \
        in err, err


def test_generated_certificate_verifies(make_facteur, tmp_path):
    """The certificate facteur makes for itself (tls_self_signed, no
    certificate given) is one that clients can pin: curl (--cacert, the
    name mx.example.test resolved to 127.0.0.1 with --resolve) submits
    over 465 and reads over imaps and pop3s, msmtp (tls_trust_file,
    tls_host_override) over STARTTLS, both checking the name."""
    need("curl", "msmtp")
    f = make_facteur(own_cert=True)
    cert = f.data_dir / "tls" / "cert.pem"
    assert cert.exists()
    data = message(ALICE, ALICE, "generated-cert")
    (tmp_path / "m.eml").write_bytes(data)
    host = HOSTNAME
    resolve = [a for s in ("submissions", "imaps", "pop3s")
               for a in ("--resolve", f"{host}:{f.ports[s]}:127.0.0.1")]
    run(["curl", "-q", "-sS", "--cacert", cert, *resolve,
         "--url", f"smtps://{host}:{f.ports['submissions']}/client.test",
         "--mail-from", ALICE, "--mail-rcpt", ALICE,
         "-u", f"{ALICE}:{PASSWORDS[ALICE]}", "-T", tmp_path / "m.eml"],
        tmp_path=tmp_path)
    got = run(["curl", "-q", "-sS", "--cacert", cert, *resolve,
               "-u", f"{ALICE}:{PASSWORDS[ALICE]}",
               f"imaps://{host}:{f.ports['imaps']}/INBOX;UID=1"],
              tmp_path=tmp_path).stdout
    assert trace_split(got)[1] == data
    got = run(["curl", "-q", "-sS", "--cacert", cert, *resolve,
               "-u", f"{ALICE}:{PASSWORDS[ALICE]}",
               f"pop3s://{host}:{f.ports['pop3s']}/1"],
              tmp_path=tmp_path).stdout
    assert trace_split(got)[1] == data
    # The wrong name is refused: the check is real.
    r = run(["curl", "-q", "-sS", "--cacert", cert,
             "--resolve", f"other.test:{f.ports['imaps']}:127.0.0.1",
             "-u", f"{ALICE}:{PASSWORDS[ALICE]}",
             f"imaps://other.test:{f.ports['imaps']}/"],
            tmp_path=tmp_path, check=False)
    assert r.returncode == 60, r.stderr
    rc = tmp_path / "msmtprc"
    rc.write_text(
        f"account test\nhost 127.0.0.1\nport {f.ports['submission']}\n"
        f"from {ALICE}\nauth plain\nuser {ALICE}\n"
        f"password {PASSWORDS[ALICE]}\ntls on\ntls_starttls on\n"
        f"tls_trust_file {cert}\ntls_host_override {host}\n"
        "set_date_header off\nset_msgid_header off\n")
    rc.chmod(0o600)
    run(["msmtp", "-C", rc, "-a", "test", ALICE], input=data,
        tmp_path=tmp_path)
    stored = imap_messages(f, ALICE, PASSWORDS[ALICE])
    assert [trace_split(m)[1] for _, m in stored.values()] == [data, data]


@pytest.mark.parametrize("service,starttls,bye", [
    ("submission", "smtp", b"QUIT\r\n"), ("imap", "imap", b"a LOGOUT\r\n"),
    ("pop3", "pop3", b"QUIT\r\n"), ("submissions", None, b"QUIT\r\n"),
    ("imaps", None, b"a LOGOUT\r\n"), ("pop3s", None, b"QUIT\r\n")])
def test_openssl_session_resumption(srv, tmp_path, service, starttls, bye):
    """A TLS 1.3 session ticket saved by openssl s_client (-sess_out) is
    accepted on the next connection (-sess_in: Reused), after STARTTLS as
    on the implicit TLS ports, and the session goes on to its goodbye;
    TLS 1.2 resumption (-reconnect) as well."""
    need("openssl")
    sess = tmp_path / "session.pem"
    base = ["openssl", "s_client", "-connect",
            f"127.0.0.1:{srv.ports[service]}", "-CAfile", srv.cert,
            "-nocommands"] + (["-starttls", starttls] if starttls else [])
    r = run(base + ["-tls1_2", "-reconnect"], input=b"",
            tmp_path=tmp_path)
    assert r.stdout.count(b"Reused, TLSv1.2") >= 5, r.stdout[-3000:]
    # -ign_eof: read on after the goodbye until the server closes, so
    # that the ticket (sent after the handshake in TLS 1.3) is there.
    base.append("-ign_eof")
    r = run(base + ["-sess_out", sess], input=bye, tmp_path=tmp_path)
    assert b"New, TLSv1.3" in r.stdout and sess.exists()
    r = run(base + ["-sess_in", sess], input=bye, tmp_path=tmp_path)
    assert b"Reused, TLSv1.3" in r.stdout, r.stdout[-2000:]
    assert re.search(rb"(?m)^(221 2\.0\.0|\* BYE|\+OK Bye)", r.stdout), \
        r.stdout[-2000:]


@pytest.mark.parametrize("service,login,logged,cmd,ok", [
    ("imaps", b"a LOGIN {u} {p}\r\n", b"a OK", b"b NOOP\r\n", b"b OK"),
    ("pop3s", b"USER {u}\r\nPASS {p}\r\n", b"+OK Logged in",
     b"STAT\r\n", b"+OK 0 0"),
    ("submissions", b"EHLO client.test\r\n", b"250 HELP", b"NOOP\r\n",
     b"250 2.0.0")])
def test_openssl_key_update(srv, tmp_path, service, login, logged, cmd, ok):
    """TLS 1.3 KeyUpdate in the middle of a session (s_client's 'k', the
    peer asked to update too: 'K'), as a long-lived client does: the
    session goes on with the new keys on both sides. (TLS 1.2
    renegotiation is refused on purpose: no_renegotiation.)"""
    need("openssl")
    user, pw = new_user(srv)
    proc = subprocess.Popen(
        ["openssl", "s_client", "-connect",
         f"127.0.0.1:{srv.ports[service]}", "-CAfile", str(srv.cert),
         "-tls1_3"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, env={**os.environ, "HOME": str(tmp_path)})
    out = b""

    def until(marker):
        nonlocal out
        deadline = time.monotonic() + T(10)
        while marker not in out:
            left = deadline - time.monotonic()
            assert left > 0, f"no {marker!r} in {out[-2000:]!r}"
            if select.select([proc.stdout], [], [], left)[0]:
                chunk = os.read(proc.stdout.fileno(), 65536)
                assert chunk, f"s_client ended: {out[-2000:]!r}"
                out += chunk
        i = out.index(marker) + len(marker)
        out = out[i:]

    try:
        until(b"Verify return code: 0 (ok)\n---\n")  # handshake done
        until(b"\r\n")  # the greeting
        proc.stdin.write(login.replace(b"{u}", user.encode()).replace(
            b"{p}", pw.encode()))
        proc.stdin.flush()
        until(logged)
        for letter in (b"k\n", b"K\n"):
            proc.stdin.write(letter)
            proc.stdin.flush()
            until(b"KEYUPDATE")
            proc.stdin.write(cmd)
            proc.stdin.flush()
            until(ok)
    finally:
        proc.stdin.close()
        proc.kill()
        proc.wait()


def test_curl_file_name_with_underscore(srv, tmp_path):
    """curl says EHLO with the name of the file it uploads when the URL
    has no path: "EHLO my_mail.eml". '_' is in no RFC 5321 domain, but it
    is in real host names (Windows machines, containers) and facteur takes
    it as a letter, as Postfix does; it used to answer 501 to both EHLO
    and HELO, so curl could not send a file so named at all."""
    need("curl")
    to, pw = new_user(srv)
    data = message(ALICE, to, "underscore")
    (tmp_path / "my_mail.eml").write_bytes(data)
    r = run(["curl", "-q", "-sS", "-v", "--ssl-reqd", "-k",
             "--url", f"smtp://127.0.0.1:{srv.ports['submission']}",
             "--mail-from", ALICE, "--mail-rcpt", to,
             "-u", f"{ALICE}:{PASSWORDS[ALICE]}",
             "-T", tmp_path / "my_mail.eml"], tmp_path=tmp_path)
    assert b"> EHLO my_mail.eml" in r.stderr
    _, stored = only_message(srv, to, pw)
    trace, body = trace_split(stored)
    assert body == data
    assert b"Received: from my_mail.eml (unknown [127.0.0.1])" in trace
