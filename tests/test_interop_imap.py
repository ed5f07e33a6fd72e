"""
IMAP with real clients from Debian against a running facteur: curl
(imap:// with STARTTLS and imaps://: LIST, SELECT and FETCH by UID through
the URL, sections and partial fetches, SEARCH, APPEND with -T, EXAMINE,
UIDVALIDITY in the URL), mbsync from isync (a two-way sync of an account
with a local Maildir: new messages both ways, flags changed on both sides,
deletions expunged, folders created on either side, a 1.4 MB message,
folder names isync 1.4 gets wrong), offlineimap (the same in short) and
fetchmail over IMAP (STARTTLS and imaps, keep and delete, IDLE). Each
result is checked on both sides: imaplib on the server, the files on the
client.
"""
import getpass
import os
import re
import subprocess

import pytest

from conftest import ALICE, T, wait_until
from interop_util import (crlf, deliver, fetchmail, imap_login,
                          imap_mailboxes, imap_messages, interop_server,
                          need, new_user, run, trace_split)
from test_imap_util import IMAPConn


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from interop_server(tmp_path_factory)


def sample(n, to, extra=b""):
    return (f"From: {ALICE}\r\nTo: {to}\r\nSubject: imap message {n}\r\n"
            f"Message-ID: <imap{n}@example.test>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=b1\r\n\r\n"
            "--b1\r\nContent-Type: text/plain\r\n\r\n"
            f"text part of {n}\r\n"
            "--b1\r\nContent-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\nAAECAwQF\r\n"
            "--b1--\r\n").encode() + extra


# ------------------------------------------------------------------ curl

def curl_imap(srv, tmp_path, user, pw, path="", *, tls="starttls",
              args=(), check=True):
    if tls == "starttls":
        url = f"imap://127.0.0.1:{srv.ports['imap']}/{path}"
        extra = ["--ssl-reqd"]
    else:
        url = f"imaps://127.0.0.1:{srv.ports['imaps']}/{path}"
        extra = []
    return run(["curl", "-q", "-sS", "--cacert", srv.cert, *extra,
                "-u", f"{user}:{pw}", *args, url], tmp_path=tmp_path,
               check=check)


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_curl_imap_fetch(srv, tmp_path, tls):
    """curl lists the mailboxes, fetches messages by UID (whole, a header
    field, a MIME part, a partial range) byte for byte, and searches; the
    whole-message fetch (BODY[]) sets \\Seen, the others do not matter."""
    need("curl")
    user, pw = new_user(srv)
    msgs = [sample(1, user), sample(2, user)]
    for m in msgs:
        deliver(srv, user, m)
    listing = curl_imap(srv, tmp_path, user, pw, tls=tls).stdout.decode()
    names = re.findall(r'^\* LIST \(([^)]*)\) "/" (\S+)\r$', listing,
                       re.M)
    assert ("\\HasNoChildren", "INBOX") in names
    assert ("\\HasNoChildren \\Sent", "Sent") in names
    stored = imap_messages(srv, user, pw)
    assert sorted(stored) == [1, 2]
    for uid in (1, 2):
        whole = curl_imap(srv, tmp_path, user, pw, f"INBOX;UID={uid}",
                          tls=tls).stdout
        assert whole == stored[uid][1]
        assert trace_split(whole)[1] == msgs[uid - 1]
    subj = curl_imap(srv, tmp_path, user, pw,
                     "INBOX;UID=2;SECTION=HEADER.FIELDS%20(SUBJECT)",
                     tls=tls).stdout
    assert subj == b"Subject: imap message 2\r\n\r\n"
    part = curl_imap(srv, tmp_path, user, pw, "INBOX;UID=2;SECTION=2",
                     tls=tls).stdout
    assert part == b"AAECAwQF"
    text = curl_imap(srv, tmp_path, user, pw,
                     "INBOX;UID=1;SECTION=1;PARTIAL=5.4", tls=tls).stdout
    assert text == b"part"
    found = curl_imap(srv, tmp_path, user, pw,
                      "INBOX?SUBJECT%20%22message%202%22", tls=tls).stdout
    assert found == b"* SEARCH 2\r\n"
    found = curl_imap(srv, tmp_path, user, pw, "INBOX", tls=tls,
                      args=["-X", "SEARCH SEEN"]).stdout
    assert found == b"* SEARCH 1 2\r\n"
    after = imap_messages(srv, user, pw)
    assert after[1][0] == after[2][0] == {"\\Seen"}


def test_curl_imap_append_and_commands(srv, tmp_path):
    """curl -T appends a file (a synchronizing literal or LITERAL+) to a
    mailbox that imaplib then reads back; -X runs EXAMINE, STATUS and
    FETCH FLAGS; a stale UIDVALIDITY in the URL is refused by curl itself
    from SELECT's answer."""
    need("curl")
    user, pw = new_user(srv)
    data = sample(7, user, b"\xc3\xa9\r\n")
    (tmp_path / "m.eml").write_bytes(data)
    curl_imap(srv, tmp_path, user, pw, "Drafts", tls="implicit",
              args=["-T", tmp_path / "m.eml"])
    stored = imap_messages(srv, user, pw, "Drafts")
    assert [m for _, m in stored.values()] == [data]
    # curl appends with (\Seen).
    assert stored[1][0] == {"\\Seen"}
    out = curl_imap(srv, tmp_path, user, pw, "", tls="implicit",
                    args=["-X", "STATUS Drafts (MESSAGES UIDNEXT UNSEEN)"]
                    ).stdout
    assert out == b"* STATUS Drafts (MESSAGES 1 UIDNEXT 2 UNSEEN 0)\r\n"
    out = curl_imap(srv, tmp_path, user, pw, "Drafts", tls="implicit",
                    args=["-X", "EXAMINE Drafts"]).stdout.decode()
    assert "* 1 EXISTS\r\n" in out and "[UIDNEXT 2]" in out
    uidvalidity = re.search(r"\[UIDVALIDITY (\d+)\]", out).group(1)
    got = curl_imap(srv, tmp_path, user, pw,
                    f"Drafts;UIDVALIDITY={uidvalidity};UID=1",
                    tls="implicit").stdout
    assert got == data
    out = curl_imap(srv, tmp_path, user, pw, "Drafts", tls="implicit",
                    args=["-X", "FETCH 1 FLAGS"]).stdout
    assert out == b"* 1 FETCH (FLAGS (\\Seen))\r\n"
    r = curl_imap(srv, tmp_path, user, pw,
                  f"Drafts;UIDVALIDITY={int(uidvalidity) + 1};UID=1",
                  tls="implicit", check=False)
    assert r.returncode == 78 and b"UIDVALIDITY" in r.stderr
    r = curl_imap(srv, tmp_path, user, pw, "Drafts;UID=9", tls="implicit",
                  check=False)
    assert r.returncode == 78, r


def test_curl_imap_login_refused(srv, tmp_path):
    """A wrong password is a login failure for curl (exit 67)."""
    need("curl")
    user, pw = new_user(srv)
    r = curl_imap(srv, tmp_path, user, "wrong", check=False)
    assert r.returncode == 67, r.stderr


@pytest.mark.parametrize("scheme,service", [
    ("imap", "imap"), ("pop3", "pop3"), ("smtp", "submission")])
def test_curl_no_password_in_clear(srv, tmp_path, scheme, service):
    """curl without TLS (no --ssl-reqd) on the plain ports: facteur offers
    no way to log in before STARTTLS (IMAP LOGINDISABLED and no AUTH=,
    POP3 without USER or SASL in CAPA, SMTP without AUTH and 530 on MAIL),
    so curl gives up without ever sending the password."""
    need("curl")
    user, pw = new_user(srv)
    (tmp_path / "m.eml").write_bytes(sample(1, user))
    extra = ["--mail-from", user, "--mail-rcpt", user,
             "-T", tmp_path / "m.eml"] if scheme == "smtp" else []
    r = run(["curl", "-q", "-sS", "-v", "-u", f"{user}:{pw}", *extra,
             f"{scheme}://127.0.0.1:{srv.ports[service]}/"],
            tmp_path=tmp_path, check=False)
    log = r.stderr.decode(errors="replace")
    assert r.returncode in (55, 67), log
    sent = [ln for ln in log.splitlines() if ln.startswith("> ")]
    assert sent and not any(
        re.match(r"> (\S+ )?(LOGIN|AUTHENTICATE|AUTH|USER|PASS)\b", ln)
        for ln in sent), sent
    assert pw not in log
    assert imap_messages(srv, user, pw) == {}


# ------------------------------------------------------------------ mbsync

def mbsync_rc(srv, tmp_path, user, pw, *, tls):
    maildir = tmp_path / "Mail"
    maildir.mkdir(exist_ok=True)
    rc = tmp_path / "mbsyncrc"
    port = srv.ports["imap" if tls == "starttls" else "imaps"]
    rc.write_text(
        "IMAPAccount facteur\n"
        "Host 127.0.0.1\n"
        f"Port {port}\n"
        f"User {user}\n"
        f"Pass {pw}\n"
        f"SSLType {'STARTTLS' if tls == 'starttls' else 'IMAPS'}\n"
        f"CertificateFile {srv.cert}\n"
        "SystemCertificates no\n\n"
        "IMAPStore remote\nAccount facteur\n\n"
        "MaildirStore local\n"
        f"Path {maildir}/\n"
        f"Inbox {maildir}/INBOX\n"
        "SubFolders Verbatim\n\n"
        "Channel sync\n"
        "Far :remote:\nNear :local:\n"
        "Patterns *\n"
        "Create Both\nExpunge Both\nRemove None\n"
        "SyncState *\nSync All\n")
    rc.chmod(0o600)
    return rc, maildir


def mbsync(rc, tmp_path):
    r = run(["mbsync", "-c", rc, "-D", "sync"], tmp_path=tmp_path,
            check=False, timeout=60)
    log = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0, log[-6000:]
    assert "Error" not in log and "Warning" not in log, log[-6000:]
    return log


def maildir(folder):
    """{file name without its flags: (flags str, bytes)} of a Maildir
    folder (new/ and cur/)."""
    out = {}
    for sub in ("new", "cur"):
        d = folder / sub
        if not d.exists():
            continue
        for p in d.iterdir():
            base, _, flags = p.name.partition(":2,")
            out[base] = (flags, p.read_bytes())
    return out


def untuid(data):
    """A message without the X-TUID field mbsync adds to each copy it
    makes (its way to find the copy again after a crash), CRLF."""
    return re.sub(rb"X-TUID: \S+\r\n", b"", crlf(data))


def by_subject(messages):
    return {re.search(rb"^Subject: (.*?)\r?$", m, re.M).group(1).decode():
            x for x, m in messages}


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_mbsync_two_way(srv, tmp_path, tls):
    """A full two-way sync with mbsync: the first run copies the account
    into the Maildir; then changes on both sides (a flag set locally and
    one on the server, a message deleted on each side, a message new on
    each side, a folder with a subfolder and a 1.4 MB message created
    locally) all meet after the second run, and a third run changes
    nothing."""
    need("mbsync")
    user, pw = new_user(srv)
    msgs = [sample(n, user) for n in (1, 2, 3)]
    for m in msgs:
        deliver(srv, user, m)
    rc, md = mbsync_rc(srv, tmp_path, user, pw, tls=tls)
    log = mbsync(rc, tmp_path)
    assert (">>> 1 STARTTLS" in log) == (tls == "starttls")
    local = maildir(md / "INBOX")
    assert sorted(untuid(m) for _, m in local.values()) == \
        sorted(m for _, m in imap_messages(srv, user, pw).values())
    assert {p.name for p in md.iterdir() if p.is_dir()} >= \
        {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}

    # Local changes: flag 1 \Flagged, delete 2 (mbsync: set \Deleted and
    # expunge on the server), a new local message, a new folder tree.
    files = {re.search(rb"^Subject: (.*?)\r?$", m, re.M).group(1).decode():
             base for base, (_, m) in local.items()}
    inbox = md / "INBOX"
    for p in list((inbox / "cur").iterdir()) + \
            list((inbox / "new").iterdir()):
        base = p.name.partition(":2,")[0]
        if base == files["imap message 1"]:
            flags = p.name.partition(":2,")[2]
            p.rename(inbox / "cur" / (base + ":2," + "".join(
                sorted(set(flags) | {"F", "S"}))))
        elif base == files["imap message 2"]:
            p.unlink()
    (inbox / "new" / "100.local").write_bytes(
        b"From: alice@example.test\nSubject: written locally\n\n"
        b"local body\n")
    for sub in ("Projects", "Projects/2026"):
        for d in ("cur", "new", "tmp"):
            (md / sub / d).mkdir(parents=True)
    big = b"From: alice@example.test\nSubject: big local\n\n" + b"".join(
        b"line %06d " % i + b"y" * 60 + b"\n" for i in range(20000))
    (md / "Projects/2026/cur/200.local:2,DF").write_bytes(big)

    # Server changes: flag 3 \Answered, a new message delivered, and one
    # appended with \Flagged.
    m = imap_login(srv, user, pw)
    try:
        m.select("INBOX")
        assert m.uid("STORE", "3", "+FLAGS", "(\\Answered)")[0] == "OK"
        deliver(srv, user, sample(4, user))
        assert m.append("INBOX", "(\\Flagged)", None,
                        sample(5, user))[0] == "OK"
    finally:
        m.logout()

    log = mbsync(rc, tmp_path)
    assert 'CREATE "Projects"' in log and 'CREATE "Projects/2026"' in log

    server = imap_messages(srv, user, pw)
    subj = by_subject((fl, m) for fl, m in server.values())
    assert set(subj) == {"imap message 1", "imap message 3",
                         "written locally", "imap message 4",
                         "imap message 5"}
    assert subj["imap message 1"] == {"\\Seen", "\\Flagged"}
    assert "\\Answered" in subj["imap message 3"]
    bodies = {untuid(trace_split(m)[1]) for _, m in server.values()}
    assert crlf(b"From: alice@example.test\nSubject: written locally\n\n"
                b"local body\n") in bodies
    local = maildir(inbox)
    lsubj = by_subject((fl, m) for fl, m in local.values())
    assert set(lsubj) == set(subj)
    assert "R" in lsubj["imap message 3"]
    assert "F" in lsubj["imap message 5"]
    assert sorted(untuid(m) for _, m in local.values()) == \
        sorted(untuid(m) for _, m in server.values())

    names = imap_mailboxes(srv, user, pw)
    assert "Projects" in names and "Projects/2026" in names
    far = imap_messages(srv, user, pw, "Projects/2026")
    assert len(far) == 1
    (flags, data), = far.values()
    assert flags == {"\\Draft", "\\Flagged"}
    assert untuid(data) == crlf(big)

    # Now the server deletes one and flags another; the Maildir follows.
    m = imap_login(srv, user, pw)
    try:
        m.select("INBOX")
        uid4 = [u for u, (_, d) in server.items()
                if b"imap message 4" in d][0]
        uid5 = [u for u, (_, d) in server.items()
                if b"imap message 5" in d][0]
        m.uid("STORE", str(uid4), "+FLAGS", "(\\Deleted)")
        m.expunge()
        m.uid("STORE", str(uid5), "+FLAGS", "(\\Seen)")
    finally:
        m.logout()
    mbsync(rc, tmp_path)
    lsubj = by_subject((fl, m) for fl, m in maildir(inbox).values())
    assert set(lsubj) == set(subj) - {"imap message 4"}
    assert set(lsubj["imap message 5"]) >= {"F", "S"}
    # A last run with nothing to do changes nothing on either side.
    before = (maildir(inbox), imap_messages(srv, user, pw))
    log = mbsync(rc, tmp_path)
    assert not re.search(r">>> \d+ (APPEND|UID STORE|CREATE|EXPUNGE)",
                         log), log
    assert (maildir(inbox), imap_messages(srv, user, pw)) == before


# ------------------------------------------------------------------ fetchmail

def fetched_body(data):
    assert b"\nReceived: from 127.0.0.1 [127.0.0.1]\n" in data or \
        data.startswith(b"Received: from 127.0.0.1 [127.0.0.1]\n"), \
        data[:300]
    return trace_split(crlf(data))[1]


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_fetchmail_imap(srv, tmp_path, tls):
    """fetchmail over IMAP with keep: the unseen messages reach the MDA
    intact and become \\Seen, so a second run fetches nothing; a new one
    is fetched alone. Then without keep: everything fetched is expunged."""
    need("fetchmail")
    user, pw = new_user(srv)
    # 70 KB in lines of 78 (fetchmail 6.4 garbles a single line longer
    # than its 8 KB buffer: RFC 5322 lines are at most 998).
    msgs = [sample(1, user), sample(2, user, (b"x" * 76 + b"\r\n") * 1000)]
    for m in msgs:
        deliver(srv, user, m)
    out = tmp_path / "out"
    r, got = fetchmail(srv, tmp_path, user, pw, proto="imap", tls=tls, keep=True,
                            out=out)
    log = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0, log
    if tls == "starttls":
        assert re.search(r"IMAP> A\d+ STARTTLS", log), log
        assert "upgrade to TLS succeeded" in log
    assert sorted(fetched_body(g) for g in got) == sorted(msgs)
    stored = imap_messages(srv, user, pw)
    assert [fl for fl, _ in stored.values()] == [{"\\Seen"}] * 2
    r, got = fetchmail(srv, tmp_path, user, pw, proto="imap", tls=tls, keep=True,
                            out=out)
    assert r.returncode == 1 and got == []
    msgs.append(sample(3, user))
    deliver(srv, user, msgs[-1])
    r, got = fetchmail(srv, tmp_path, user, pw, proto="imap", tls=tls, keep=False,
                            out=out)
    log = (r.stdout + r.stderr).decode(errors="replace")
    assert sorted(fetched_body(g) for g in got) == sorted(msgs[2:])
    assert "EXPUNGE" in log
    left = imap_messages(srv, user, pw)
    assert [trace_split(m)[1] for _, m in left.values()] == msgs[:2]


def test_mbsync_arrival_date_and_deleted_flag(srv, tmp_path):
    """mbsync with CopyArrivalDate appends with the file's date (APPEND
    with a date-time: INTERNALDATE keeps it); with Expunge None a message
    trashed locally (T) is only marked \\Deleted on the server, and one
    marked \\Deleted on the server becomes T locally; nothing is lost."""
    need("mbsync")
    user, pw = new_user(srv)
    deliver(srv, user, sample(1, user))
    deliver(srv, user, sample(2, user))
    rc, md = mbsync_rc(srv, tmp_path, user, pw, tls="implicit")
    rc.write_text(rc.read_text().replace(
        "Expunge Both\n", "Expunge None\nCopyArrivalDate yes\n"))
    mbsync(rc, tmp_path)
    inbox = md / "INBOX"
    local = maildir(inbox)
    assert len(local) == 2
    one = [b for b, (_, m) in local.items() if b"imap message 1" in m][0]
    for p in list((inbox / "new").iterdir()) + \
            list((inbox / "cur").iterdir()):
        if p.name.startswith(one):
            p.rename(inbox / "cur" / (one + ":2,ST"))
    old = inbox / "cur" / "300.local:2,S"
    old.write_bytes(b"From: alice@example.test\nSubject: old one\n\nold\n")
    os.utime(old, (1577934245, 1577934245))  # 2020-01-02 03:04:05 UTC
    m = imap_login(srv, user, pw)
    try:
        m.select("INBOX")
        assert m.uid("STORE", "2", "+FLAGS", "(\\Deleted)")[0] == "OK"
    finally:
        m.logout()
    log = mbsync(rc, tmp_path)
    assert re.search(r'>>> \d+ APPEND "INBOX" \(\\Seen\) '
                     r'"02-Jan-2020 03:04:05 \+0000"', log), log
    server = imap_messages(srv, user, pw)
    subj = by_subject((fl, m) for fl, m in server.values())
    assert subj == {"imap message 1": {"\\Seen", "\\Deleted"},
                    "imap message 2": {"\\Deleted"},
                    "old one": {"\\Seen"}}
    lsubj = by_subject((fl, m) for fl, m in maildir(inbox).values())
    assert lsubj == {"imap message 1": "ST", "imap message 2": "T",
                     "old one": "S"}
    m = imap_login(srv, user, pw)
    try:
        m.select("INBOX", readonly=True)
        uid = [u for u, (_, d) in server.items() if b"old one" in d][0]
        typ, data = m.uid("FETCH", str(uid), "(INTERNALDATE)")
        assert b'INTERNALDATE "02-Jan-2020 03:04:05 +0000"' in data[0]
    finally:
        m.logout()


def test_fetchmail_imap_idle(srv, tmp_path):
    """fetchmail in IDLE mode (keep idle): after its first poll it sits in
    IDLE; a message delivered over SMTP then wakes it (EXISTS during IDLE),
    it sends DONE and fetches the new message at once."""
    need("fetchmail")
    user, pw = new_user(srv)
    deliver(srv, user, sample(1, user))
    out = tmp_path / "out"
    out.mkdir()
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        f"poll 127.0.0.1 service {srv.ports['imap']} protocol imap "
        "timeout 20\n"
        f'  user "{user}" there with password "{pw}"'
        f' is "{getpass.getuser()}" here\n'
        f"  sslproto tls1.2+ sslcertck sslcertfile {srv.cert} "
        f"sslcertpath {tmp_path}\n"
        "  keep idle\n"
        f"  mda \"/bin/sh -c 'cat > {out}/msg.$$'\"\n")
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
    logf = open(tmp_path / "fetchmail.log", "wb")
    proc = subprocess.Popen(
        ["fetchmail", "-f", str(rc), "-v", "--nodetach", "--nosyslog",
         "--idfile", str(tmp_path / "fetchids"),
         "--pidfile", str(tmp_path / "fetchmail.pid")],
        stdout=logf, stderr=subprocess.STDOUT, env=env,
        stdin=subprocess.DEVNULL)
    try:
        def log():
            return (tmp_path / "fetchmail.log").read_text(errors="replace")
        wait_until(lambda: re.search(r"IMAP> A\d+ IDLE", log()), T(20),
                   "fetchmail in IDLE")
        assert len(list(out.iterdir())) == 1
        deliver(srv, user, sample(2, user))
        # Done when fetchmail has marked it \Seen, after the MDA ended.
        wait_until(lambda: len(list(out.iterdir())) == 2 and [
            fl for fl, _ in imap_messages(srv, user, pw).values()] ==
            [{"\\Seen"}] * 2, T(20),
            "the second message fetched after IDLE", interval=0.1)
        text = log()
        idle_at = text.index(re.search(r"IMAP> A\d+ IDLE", text).group(0))
        assert re.search(r"IMAP< \* 2 EXISTS", text[idle_at:]), text
        assert "IMAP> DONE" in text[idle_at:]
        bodies = sorted((p.read_bytes() for p in out.iterdir()),
                        key=lambda b: b"imap message 2" in b)
        assert fetched_body(bodies[1]) == sample(2, user)
    finally:
        proc.terminate()
        proc.wait(timeout=T(20))
        logf.close()


def test_mbsync_bad_local_folder_names(srv, tmp_path):
    """isync 1.4 sends local folder names as they are: "Caf\u00e9" in raw
    UTF-8 (no ENABLE UTF8=ACCEPT) and "R&D" with a bare '&', neither of
    them modified UTF-7. facteur answers NO [CANNOT] (valid grammar, no
    valid name), so mbsync reports those two folders and still syncs the
    others; a BAD used to make it drop the whole account."""
    need("mbsync")
    user, pw = new_user(srv)
    deliver(srv, user, sample(1, user))
    rc, md = mbsync_rc(srv, tmp_path, user, pw, tls="implicit")
    for name in ("Caf\u00e9", "R&D", "Plain"):
        for d in ("cur", "new", "tmp"):
            (md / name / d).mkdir(parents=True)
        (md / name / "new" / "1.local").write_bytes(
            f"From: alice@example.test\nSubject: in {name}\n\nx\n".encode())
    r = run(["mbsync", "-c", rc, "-D", "sync"], tmp_path=tmp_path,
            check=False, timeout=60)
    log = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 1, log[-4000:]
    assert re.search(r"\d+ NO \[CANNOT\]", log) and " BAD " not in log, \
        log[-4000:]
    names = imap_mailboxes(srv, user, pw)
    assert "Plain" in names and "Caf\u00e9" not in names
    assert [m for _, m in imap_messages(srv, user, pw, "Plain").values()
            if b"Subject: in Plain" in m]
    assert len(maildir(md / "INBOX")) == 1


def test_invalid_mailbox_name_is_no(srv):
    """The server side of the above, raw: a string that is no valid name
    gets NO [CANNOT] from CREATE, SELECT, STATUS, APPEND; a non-string
    stays BAD; a SELECT that fails so still closes the selected mailbox
    (RFC 3501 6.3.1) while a BAD one leaves it selected."""
    user, pw = new_user(srv)
    with IMAPConn(srv.ports["imaps"], tls=True) as c:
        c.ok(f'LOGIN "{user}" "{pw}"')
        for cmd in ('CREATE "Caf\u00e9"'.encode(), b'CREATE "a&b"',
                    b'STATUS "a&b" (MESSAGES)', b'DELETE "x&Jjo"',
                    b'APPEND "a&b" {1+}\r\nx'):
            st, tagged, _ = c.status(cmd)
            assert st == "NO" and b"[CANNOT]" in tagged, (cmd, tagged)
        st, tagged, _ = c.status(b"CREATE (a)")
        assert st == "BAD", tagged
        c.ok("SELECT INBOX")
        st, tagged, _ = c.status(b"SELECT (a)")
        assert st == "BAD"
        c.ok("CHECK")  # still selected
        st, tagged, _ = c.status(b'SELECT "a&b"')
        assert st == "NO" and b"[CANNOT]" in tagged
        st, _, _ = c.status("CHECK")
        assert st == "BAD"  # no mailbox selected any more


# ------------------------------------------------------------- offlineimap

def test_offlineimap_two_way(srv, tmp_path):
    """offlineimap (offlineimap3: imaplib2, its own UID bookkeeping in
    SQLite) syncs an account over imaps with the certificate checked: the
    first run copies it; then a local flag, a local deletion, a new local
    message (APPEND with its date) and a new local folder reach the
    server, and a flag set on the server comes back."""
    need("offlineimap")
    user, pw = new_user(srv)
    msgs = [sample(n, user) for n in (1, 2, 3)]
    for m in msgs:
        deliver(srv, user, m)
    mail = tmp_path / "Mail"
    rc = tmp_path / "offlineimaprc"
    rc.write_text(
        "[general]\naccounts = t\n"
        f"metadata = {tmp_path / 'meta'}\n"
        "[Account t]\nlocalrepository = L\nremoterepository = R\n"
        f"[Repository L]\ntype = Maildir\nlocalfolders = {mail}\n"
        "[Repository R]\ntype = IMAP\nremotehost = 127.0.0.1\n"
        f"remoteport = {srv.ports['imaps']}\nssl = yes\n"
        f"sslcacertfile = {srv.cert}\n"
        f"remoteuser = {user}\nremotepass = {pw}\n")

    def sync():
        r = run(["offlineimap", "-c", rc, "-o", "-u", "basic"],
                tmp_path=tmp_path, timeout=90)
        log = (r.stdout + r.stderr).decode(errors="replace")
        assert "ERROR" not in log, log[-4000:]

    sync()
    local = maildir(mail / "INBOX")
    assert sorted(crlf(m) for _, m in local.values()) == \
        sorted(m for _, m in imap_messages(srv, user, pw).values())
    inbox = mail / "INBOX"
    for p in list((inbox / "new").iterdir()):
        data = p.read_bytes()
        base = p.name.partition(":2,")[0]
        if b"imap message 1" in data:
            p.rename(inbox / "cur" / (base + ":2,FS"))
        elif b"imap message 2" in data:
            p.unlink()
    (inbox / "new" / "500.local").write_bytes(
        b"From: alice@example.test\nSubject: written locally\n\nlocal\n")
    for d in ("cur", "new", "tmp"):
        (mail / "NewBox" / d).mkdir(parents=True)
    (mail / "NewBox" / "new" / "1.local").write_bytes(
        b"From: alice@example.test\nSubject: in NewBox\n\nnb\n")
    m = imap_login(srv, user, pw)
    try:
        m.select("INBOX")
        assert m.uid("STORE", "3", "+FLAGS", "(\\Answered)")[0] == "OK"
    finally:
        m.logout()
    sync()
    server = imap_messages(srv, user, pw)
    subj = by_subject((fl, d) for fl, d in server.values())
    assert subj == {"imap message 1": {"\\Flagged", "\\Seen"},
                    "imap message 3": {"\\Answered"},
                    "written locally": set()}
    local = maildir(inbox)
    lsubj = by_subject((fl, d) for fl, d in local.values())
    assert set(lsubj) == set(subj) and "R" in lsubj["imap message 3"]
    assert "NewBox" in imap_mailboxes(srv, user, pw)
    nb = imap_messages(srv, user, pw, "NewBox")
    assert [crlf(b"From: alice@example.test\nSubject: in NewBox\n\nnb\n")] \
        == [d for _, d in nb.values()]
