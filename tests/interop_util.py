"""
What the interoperability tests share (no test here): a facteur started
with a certificate that real clients can verify, a fresh account per test,
the runner of the client programs (curl, mbsync, fetchmail, msmtp, swaks,
openssl) with HOME pointed at the test's directory, and the readers that
compare what a client sent with what IMAP gives back.

The certificate names the server mx.example.test and 127.0.0.1, both as an
IP address (curl, OpenSSL) and as a DNS name: isync 1.4 compares the host it
was given only with the DNS names and the CN of the certificate.

A test whose client program is not installed is skipped with the reason;
scripts/deps.sh installs them all, so nothing is skipped on CI.
"""
import getpass
import imaplib
import itertools
import os
import re
import shutil
import subprocess

import pytest

from conftest import (ALICE, DOMAIN, HOSTNAME, PASSWORDS, T, _finish_all,
                      _new_facteur, expect, expect_queued, send_message)
from clients import client_tls_context

_users = itertools.count(1)


def need(*binaries):
    """Skips the test unless every program is on PATH."""
    for b in binaries:
        if shutil.which(b) is None:
            pytest.skip(f"{b} is not installed (scripts/deps.sh installs "
                        "it)")


def run(cmd, *, tmp_path, input=None, check=True, timeout=30, env=None):
    """Runs a client program with HOME=tmp_path (never the user's own
    configuration or state) and returns the CompletedProcess (bytes). A
    non-zero exit fails the test with its output unless check is False."""
    e = dict(os.environ)
    e["HOME"] = str(tmp_path)
    e.pop("SSL_CERT_FILE", None)
    e.update(env or {})
    r = subprocess.run([str(c) for c in cmd], input=input,
                       capture_output=True, env=e, timeout=T(timeout))
    if check and r.returncode != 0:
        raise AssertionError(
            f"{cmd[0]} exited {r.returncode}\n--- stdout\n"
            f"{r.stdout.decode(errors='replace')[-4000:]}\n--- stderr\n"
            f"{r.stderr.decode(errors='replace')[-4000:]}")
    return r


def make_cert(directory):
    """A self-signed certificate for mx.example.test and 127.0.0.1;
    returns (cert, key)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    r = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
         "-subj", f"/CN={HOSTNAME}", "-addext",
         f"subjectAltName=DNS:{HOSTNAME},DNS:127.0.0.1,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return cert, key


def interop_server(tmp_path_factory):
    """Generator for a module fixture: one facteur with the verifiable
    certificate; yields it and stops it (failing on an unclean exit or a
    sanitizer report)."""
    need("openssl")
    pair = make_cert(tmp_path_factory.mktemp("interop-tls"))
    made = []
    f = _new_facteur(tmp_path_factory, pair, made)
    f.cert = pair[0]
    yield f
    _finish_all(made)


def new_user(f, local=None):
    """Creates a fresh account on f; returns (address, password)."""
    n = next(_users)
    addr = f"{local or 'user'}{n}@{DOMAIN}"
    password = f"pw-{n}-secret"
    f.cli("user", "add", addr, input=password + "\n")
    return addr, password


def crlf(data):
    """Bare LF line ends made CRLF."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def deliver(f, rcpt, message, sender=ALICE):
    """Delivers one message to rcpt over SMTP (port 25)."""
    c = f.smtp()
    try:
        c.ehlo()
        expect_queued(send_message(c, sender, rcpt, message))
        expect(c.cmd("QUIT"), 221)
    finally:
        c.close()


_TRACE = re.compile(rb"\A(?:(?:Return-Path|Received):[^\r\n]*\r\n"
                    rb"(?:[ \t][^\r\n]*\r\n)*)*")


def trace_split(stored):
    """(trace fields added on delivery, the rest: the message as the client
    sent it)."""
    m = _TRACE.match(stored)
    return stored[:m.end()], stored[m.end():]


def imap_login(f, user, password=None):
    """An imaplib session over IMAPS, logged in."""
    m = imaplib.IMAP4_SSL("127.0.0.1", f.ports["imaps"],
                          ssl_context=client_tls_context(),
                          timeout=T(20))
    password = password or PASSWORDS[user]
    # AUTHENTICATE PLAIN: imaplib's LOGIN cannot send a UTF-8 name.
    m.authenticate("PLAIN", lambda _: b"\0" + user.encode() + b"\0" +
                   password.encode())
    return m


def imap_messages(f, user, password, mailbox="INBOX"):
    """{uid: (flags set, message bytes)} of a mailbox, read with imaplib
    (BODY.PEEK: the flags are not changed)."""
    m = imap_login(f, user, password)
    try:
        typ, _ = m.select(f'"{mailbox}"', readonly=True)
        assert typ == "OK", (mailbox, typ)
        typ, data = m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
        assert typ == "OK", data
        out = {}
        for item in data:
            if not isinstance(item, tuple):
                continue
            head, body = item
            uid = int(re.search(rb"UID (\d+)", head).group(1))
            flags = re.search(rb"FLAGS \(([^)]*)\)", head).group(1)
            out[uid] = (set(flags.decode().split()), body)
        return out
    finally:
        m.logout()


def imap_mailboxes(f, user, password):
    """The names LIST "" "*" gives."""
    m = imap_login(f, user, password)
    try:
        typ, data = m.list('""', "*")
        assert typ == "OK", data
        names = []
        for line in data:
            name = line.decode().rsplit(' "/" ', 1)[1]
            names.append(name.strip('"'))
        return names
    finally:
        m.logout()


def fetchmail(srv, tmp_path, user, pw, *, proto, tls, keep, out):
    """Runs fetchmail once with an rc file in tmp_path; each message goes
    through the MDA into out/msg.<pid>. Returns (CompletedProcess,
    [messages written]): in no reliable order (file times are as coarse
    as the kernel's tick), so the tests compare them sorted."""
    out.mkdir(exist_ok=True)
    before = set(out.iterdir())
    if proto == "pop3":
        port = srv.ports["pop3s" if tls == "implicit" else "pop3"]
    else:
        port = srv.ports["imaps" if tls == "implicit" else "imap"]
    tls_opts = ("ssl " if tls == "implicit" else "sslproto tls1.2+ ") + \
        f"sslcertck sslcertfile {srv.cert} sslcertpath {tmp_path}"
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        f"poll 127.0.0.1 service {port} protocol {proto} timeout 20\n"
        f'  user "{user}" there with password "{pw}"'
        f' is "{getpass.getuser()}" here\n'
        f"  {tls_opts}\n"
        f"  {'keep' if keep else 'nokeep'}\n"
        f"  mda \"/bin/sh -c 'cat > {out}/msg.$$'\"\n")
    rc.chmod(0o600)
    r = run(["fetchmail", "-f", rc, "-v", "--nodetach", "--nosyslog",
             "--idfile", tmp_path / "fetchids",
             "--pidfile", tmp_path / "fetchmail.pid"],
            tmp_path=tmp_path, check=False,
            env={"FETCHMAILHOME": str(tmp_path)})
    # 0: mail fetched, 1: no new mail; anything else is a failure.
    assert r.returncode in (0, 1), (r.returncode, r.stdout, r.stderr)
    new = sorted(set(out.iterdir()) - before,
                 key=lambda p: p.stat().st_mtime_ns)
    return r, [p.read_bytes() for p in new]
