"""
POP3 with real clients from Debian against a running facteur: curl
(pop3:// with STLS and pop3s://: LIST, RETR, UIDL, TOP, DELE) and fetchmail
(STLS and implicit TLS with the certificate checked, keep and delete,
UIDL memory across runs, delivery through an MDA that writes files). The
results are checked on both sides: the files the client wrote and the
mailbox as IMAP then sees it.
"""
import getpass
import re

import pytest

from conftest import ALICE
from interop_util import (crlf, deliver, fetchmail, imap_messages,
                          interop_server, need, new_user, run, trace_split)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from interop_server(tmp_path_factory)


def sample(n, to, extra=b""):
    return (f"From: {ALICE}\r\nTo: {to}\r\nSubject: pop message {n}\r\n"
            f"Message-ID: <pop{n}@example.test>\r\n\r\n").encode() + \
        b"line one\r\n.starts with a dot\r\n" + extra + \
        f"end of {n}\r\n".encode()


def curl_pop3(srv, tmp_path, user, pw, path="", *, tls="stls", args=()):
    if tls == "stls":
        url = f"pop3://127.0.0.1:{srv.ports['pop3']}/{path}"
        extra = ["--ssl-reqd"]
    else:
        url = f"pop3s://127.0.0.1:{srv.ports['pop3s']}/{path}"
        extra = []
    return run(["curl", "-q", "-sS", "--cacert", srv.cert, *extra,
                "-u", f"{user}:{pw}", *args, url], tmp_path=tmp_path)


@pytest.mark.parametrize("tls", ["stls", "implicit"])
def test_curl_pop3(srv, tmp_path, tls):
    """curl lists the maildrop, retrieves each message (byte for byte,
    dot-unstuffed), lists UIDs and a TOP, deletes one with DELE: the next
    session and IMAP see one message left."""
    need("curl")
    user, pw = new_user(srv)
    msgs = [sample(1, user), sample(2, user, b"\xc3\xa9t\xc3\xa9\r\n")]
    for m in msgs:
        deliver(srv, user, m)
    r = curl_pop3(srv, tmp_path, user, pw, tls=tls)
    listing = r.stdout.decode().split("\r\n")
    assert listing[-1] == ""
    sizes = [tuple(map(int, ln.split())) for ln in listing[:-1]]
    assert [n for n, _ in sizes] == [1, 2]
    stored = imap_messages(srv, user, pw)
    for (n, size), uid in zip(sizes, sorted(stored)):
        assert size == len(stored[uid][1])
        got = curl_pop3(srv, tmp_path, user, pw, str(n), tls=tls).stdout
        assert got == stored[uid][1]
        assert trace_split(got)[1] == msgs[n - 1]
    uidl = curl_pop3(srv, tmp_path, user, pw, tls=tls,
                     args=["-X", "UIDL"]).stdout.decode().split("\r\n")
    assert len(uidl) == 3 and uidl[0].startswith("1 ") and \
        uidl[1].startswith("2 ") and uidl[0] != uidl[1]
    top = curl_pop3(srv, tmp_path, user, pw, tls=tls,
                    args=["-X", "TOP 2 1"]).stdout
    assert top.endswith(b"Subject: pop message 2\r\n"
                        b"Message-ID: <pop2@example.test>\r\n\r\n"
                        b"line one\r\n")
    # -I: DELE has a one-line answer (curl waits for a listing otherwise).
    curl_pop3(srv, tmp_path, user, pw, "1", tls=tls,
              args=["-X", "DELE", "-I"])
    left = curl_pop3(srv, tmp_path, user, pw, tls=tls).stdout.decode()
    assert left.split("\r\n")[:-1] == [f"1 {sizes[1][1]}"]
    after = imap_messages(srv, user, pw)
    assert [m for _, m in after.values()] == [stored[max(stored)][1]]


def test_curl_pop3_auth_mechanisms(srv, tmp_path):
    """curl picks SASL PLAIN from CAPA by itself, and LOGIN when told to;
    a wrong password is a login failure (exit 67)."""
    need("curl")
    user, pw = new_user(srv)
    deliver(srv, user, sample(1, user))
    for opts in (["-v"], ["-v", "--login-options", "AUTH=LOGIN"]):
        r = curl_pop3(srv, tmp_path, user, pw, tls="implicit",
                      args=[*opts, "-X", "STAT", "-I"])
        log = r.stderr.decode(errors="replace")
        mech = "LOGIN" if len(opts) > 1 else "PLAIN"
        assert f"> AUTH {mech}" in log
        assert re.search(r"< \+OK 1 \d+", log), log
    r = run(["curl", "-q", "-sS", "-k", "-u", f"{user}:wrong",
             f"pop3s://127.0.0.1:{srv.ports['pop3s']}/"],
            tmp_path=tmp_path, check=False)
    assert r.returncode == 67, r.stderr


# ------------------------------------------------------------------ fetchmail

def fetched_body(data):
    """A message as the MDA got it: fetchmail hands LF line ends and adds
    its own Received: after the Return-Path; all the trace fields are
    cut."""
    assert b"\nReceived: from 127.0.0.1 [127.0.0.1]\n" in data, data[:300]
    assert b"\r" not in data
    return trace_split(crlf(data))[1]


@pytest.mark.parametrize("tls", ["stls", "implicit"])
def test_fetchmail_pop3_keep(srv, tmp_path, tls):
    """fetchmail over STLS (or pop3s) with keep: every message reaches the
    MDA intact; a second run fetches nothing (UIDL remembered in the
    idfile), a third after a new delivery fetches only the new one; the
    server still has them all."""
    need("fetchmail")
    user, pw = new_user(srv)
    msgs = [sample(1, user), sample(2, user)]
    for m in msgs:
        deliver(srv, user, m)
    out = tmp_path / "out"
    r, got = fetchmail(srv, tmp_path, user, pw, proto="pop3", tls=tls,
                       keep=True, out=out)
    log = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0, log
    if tls == "stls":
        assert "POP3> STLS" in log and "upgrade to TLS succeeded" in log
    assert "POP3> UIDL" in log
    assert sorted(fetched_body(g) for g in got) == sorted(msgs)
    r, got = fetchmail(srv, tmp_path, user, pw, proto="pop3", tls=tls,
                       keep=True, out=out)
    assert r.returncode == 1 and got == [], (r.stdout, got)
    msgs.append(sample(3, user))
    deliver(srv, user, msgs[-1])
    r, got = fetchmail(srv, tmp_path, user, pw, proto="pop3", tls=tls,
                       keep=True, out=out)
    assert sorted(fetched_body(g) for g in got) == sorted(msgs[2:])
    stored = imap_messages(srv, user, pw)
    assert [trace_split(m)[1] for _, m in stored.values()] == msgs
    # pop3_mark_seen is off by default: RETR leaves the flags alone.
    assert [fl for fl, _ in stored.values()] == [set()] * 3


@pytest.mark.parametrize("tls", ["stls", "implicit"])
def test_fetchmail_pop3_delete(srv, tmp_path, tls):
    """fetchmail without keep: DELE then QUIT; the maildrop is empty
    afterwards for POP3 and IMAP alike."""
    need("fetchmail")
    user, pw = new_user(srv)
    msgs = [sample(n, user, b"x" * 5000 + b"\r\n") for n in (1, 2, 3)]
    for m in msgs:
        deliver(srv, user, m)
    r, got = fetchmail(srv, tmp_path, user, pw, proto="pop3", tls=tls,
                       keep=False, out=tmp_path / "out")
    log = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0, log
    assert log.count("POP3> DELE") == 3 and "POP3< +OK Bye" in log
    assert sorted(fetched_body(g) for g in got) == sorted(msgs)
    assert imap_messages(srv, user, pw) == {}
    r, got = fetchmail(srv, tmp_path, user, pw, proto="pop3", tls=tls,
                       keep=False, out=tmp_path / "out")
    assert r.returncode == 1 and got == []


def test_fetchmail_forwards_over_smtp(srv, tmp_path):
    """fetchmail's usual setup: no MDA, each message fetched over POP3 is
    handed to an SMTP server, here facteur's own port 25 for another
    account (smtpname). fetchmail says BODY=8BITMIME for the 8-bit
    message and SIZE; the copy arrives with the original bytes after the
    trace fields of both hops."""
    need("fetchmail")
    user, pw = new_user(srv)
    dest, dest_pw = new_user(srv)
    msg = (f"From: {ALICE}\r\nTo: {user}\r\nSubject: 8bit\r\n"
           "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
           "Content-Transfer-Encoding: 8bit\r\n\r\nd\u00e9j\u00e0 vu\r\n"
           ".leading dot\r\n").encode()
    deliver(srv, user, msg)
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        f"poll 127.0.0.1 service {srv.ports['pop3']} protocol pop3 "
        "timeout 20\n"
        f'  user "{user}" there with password "{pw}"'
        f' is "{getpass.getuser()}" here\n'
        f"  sslproto tls1.2+ sslcertck sslcertfile {srv.cert} "
        f"sslcertpath {tmp_path}\n"
        "  nokeep\n"
        f"  smtphost 127.0.0.1/{srv.ports['smtp']}\n"
        f"  smtpname {dest}\n")
    rc.chmod(0o600)
    r = run(["fetchmail", "-f", rc, "-v", "--nodetach", "--nosyslog",
             "--idfile", tmp_path / "fetchids",
             "--pidfile", tmp_path / "fetchmail.pid"],
            tmp_path=tmp_path, env={"FETCHMAILHOME": str(tmp_path)})
    log = (r.stdout + r.stderr).decode(errors="replace")
    assert re.search(r"SMTP> MAIL FROM:<alice@example.test> "
                     r"BODY=8BITMIME SIZE=\d+", log), log
    assert f"SMTP> RCPT TO:<{dest}>" in log
    assert "SMTP< 250 2.0.0 OK: queued as" in log
    assert imap_messages(srv, user, pw) == {}
    got = imap_messages(srv, dest, dest_pw)
    assert len(got) == 1
    (_, stored), = got.values()
    trace, body = trace_split(stored)
    assert body == msg
    assert b"with POP3 (fetchmail" in trace
    assert b"by mx.example.test (facteur) with ESMTP" in trace
    assert "body=8bitmime" in srv.log().lower()
