"""
Black-box test harness for facteur: starts the real binary on free loopback
ports with a temporary data directory, and gives the tests a raw SMTP client,
message builders and one reader of the mail store.

Only the standard library and pytest are used. The binary is $FACTEUR_BIN,
else ../build/facteur relative to this directory. When the binary is built
with AddressSanitizer every time bound is multiplied (SCALE), and every
server's log is searched for sanitizer reports when it stops.

The store is read in one place, mailbox() and store_problems() below: when
IMAP exists, they are what changes.
"""
import functools
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from clients import LineConn, b64, client_tls_context  # noqa: F401 (tests)

TESTS_DIR = Path(__file__).resolve().parent
DATA_DIR = TESTS_DIR / "data"
FACTEUR_BIN = os.environ.get("FACTEUR_BIN") or str(
    TESTS_DIR.parent / "build" / "facteur")

HOSTNAME = "mx.example.test"
DOMAIN = "example.test"
ALICE = "alice@example.test"
BOB = "bob@example.test"
PASSWORDS = {ALICE: "alice-pass-1", BOB: "bob-pass-1"}
MAX_SIZE = 10 * 1024 * 1024  # smtp_max_message_size of the base config

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer")


@functools.lru_cache(maxsize=None)
def sanitized():
    """True when the binary under test was built with ASan."""
    try:
        with open(FACTEUR_BIN, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"__asan_init" in data


def scale():
    env = os.environ.get("FACTEUR_TIMEOUT_SCALE")
    if env:
        return float(env)
    return 3.0 if sanitized() else 1.0


def T(seconds):
    """A time bound, stretched for sanitizer builds."""
    return seconds * scale()


def wait_until(cond, timeout, what="condition", interval=0.02):
    """Polls cond() until it returns a true value, which is returned; fails
    the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting "
                                 f"for {what}")
        time.sleep(interval)


# Ports are picked below the kernel's ephemeral range
# (net.ipv4.ip_local_port_range, 32768-60999 by default). A port the kernel
# hands out for binding to port 0 is in that range, and between the test
# finding it free and the server binding it, an outgoing connection could
# take it as its source port: a server then failed to start now and then
# (EADDRINUSE). Below the range only the tests' own servers bind.
_PORT_LOW, _PORT_HIGH = 20000, 32700


def free_ports(n):
    """n distinct TCP ports, each free on 127.0.0.1 just now."""
    ports = []
    while len(ports) < n:
        port = random.randrange(_PORT_LOW, _PORT_HIGH)
        if port in ports:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        ports.append(port)
    return ports


# ------------------------------------------------------------------ replies

_REPLY_LINE = re.compile(rb"^([2-5]\d\d)([ -]|$)")
_ENHANCED = re.compile(r"^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})(?: |$)")


class Reply:
    """One SMTP reply: its lines (str, without CRLF) and code."""

    def __init__(self, lines):
        self.lines = lines
        self.code = int(lines[-1][:3])

    @property
    def enhanced(self):
        m = _ENHANCED.match(self.lines[-1])
        return m.group(1) if m else None

    @property
    def text(self):
        return "\n".join(self.lines)

    def __repr__(self):
        return f"Reply({self.text!r})"


def expect(reply, code, enhanced=None):
    """Asserts a reply's code (an int, or a tuple of allowed codes) and,
    when given, its enhanced status code."""
    codes = code if isinstance(code, tuple) else (code,)
    assert reply is not None, f"expected {code}, the server closed"
    assert reply.code in codes, f"expected {code} {enhanced or ''}, " \
        f"got {reply.text!r}"
    if enhanced is not None:
        assert reply.enhanced == enhanced, \
            f"expected {code} {enhanced}, got {reply.text!r}"
    return reply


class SMTPConn(LineConn):
    """A raw SMTP client: bytes in, replies out, nothing hidden."""

    max_line = 65536

    def __init__(self, port, *, tls=False, timeout=None, greeting=True,
                 host="127.0.0.1"):
        super().__init__(port, tls=tls,
                         timeout=timeout if timeout is not None else T(20),
                         server_hostname=HOSTNAME, host=host)
        self.greeting = None
        if greeting:
            self.greeting = expect(self.reply(), 220)

    def reply(self):
        lines = []
        while True:
            raw = self.readline()
            m = _REPLY_LINE.match(raw)
            assert m, f"malformed reply line {raw!r} (after {lines!r})"
            text = raw.decode("utf-8", "replace")
            if lines:
                assert text[:3] == lines[0][:3], \
                    f"code changes inside a reply: {lines + [text]!r}"
            lines.append(text)
            if m.group(2) != b"-":
                return Reply(lines)

    def reply_or_eof(self):
        """The next reply, or None if the server closed first."""
        try:
            return self.reply()
        except (EOFError, ConnectionResetError):
            return None

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def ehlo(self, name="client.test"):
        r = expect(self.cmd(f"EHLO {name}"), 250)
        self.extensions = [ln[4:].upper() for ln in r.lines[1:]]
        return r

    def has_ext(self, keyword):
        return any(e.split(" ")[0] == keyword.upper()
                   for e in self.extensions)

    def starttls(self):
        expect(self.cmd("STARTTLS"), 220)
        assert self.buf == b"", \
            f"plaintext after the 220 of STARTTLS: {self.buf!r}"
        self._wrap()

    def auth_plain(self, user, password):
        token = b64(f"\0{user}\0{password}")
        return self.cmd(f"AUTH PLAIN {token}")


def send_message(conn, sender, rcpts, message, *, params=""):
    """One pipelined transaction (MAIL, RCPT..., DATA in one write, as RFC
    2920 allows), asserting each step is accepted; returns the reply to the
    end of the data."""
    if isinstance(rcpts, str):
        rcpts = [rcpts]
    cmds = f"MAIL FROM:<{sender}>{' ' + params if params else ''}\r\n"
    cmds += "".join(f"RCPT TO:<{r}>\r\n" for r in rcpts)
    conn.send(cmds + "DATA\r\n")
    expect(conn.reply(), 250)
    for r in rcpts:
        expect(conn.reply(), 250)
    expect(conn.reply(), 354)
    conn.send(dot_stuff(message) + b".\r\n")
    return conn.reply()


QUEUED = re.compile(r"^250 2\.0\.0 OK: queued as \S+", re.I)


def expect_queued(reply):
    assert reply is not None, "no reply to the end of data"
    assert QUEUED.match(reply.lines[-1]), \
        f"expected '250 2.0.0 OK: queued as <id>', got {reply.text!r}"
    return reply


# ------------------------------------------------------------------ messages

def make_message(sender="sender@remote.test", to=ALICE, subject="test",
                 body="Hello.\r\n", msgid=None, headers=()):
    """An RFC 5322 message (bytes, CRLF line ends, ending with CRLF)."""
    msgid = msgid or f"<{uuid.uuid4().hex}@client.test>"
    lines = [f"From: <{sender}>", f"To: <{to}>", f"Subject: {subject}",
             f"Message-ID: {msgid}",
             "Date: Mon, 01 Jan 2024 00:00:00 +0000"]
    lines += list(headers)
    if isinstance(body, str):
        body = body.encode("utf-8")
    body = re.sub(rb"\r?\n", b"\r\n", body)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def dot_stuff(message):
    assert message.endswith(b"\r\n")
    return re.sub(rb"(?m)^\.", b"..", message)


def message_id(message):
    m = re.search(rb"(?im)^Message-ID:\s*(<[^>\r\n]+>)", message)
    return m.group(1).decode() if m else None


_TRACE = re.compile(rb"(?:Return-Path|Received):[^\r\n]*\r\n"
                    rb"(?:[ \t][^\r\n]*\r\n)*", re.I)


def split_trace(stored):
    """Splits a stored message into the trace fields the server put on top
    (Return-Path:, Received:) and the rest."""
    fields, pos = [], 0
    while True:
        m = _TRACE.match(stored, pos)
        if not m:
            return fields, stored[pos:]
        fields.append(m.group(0))
        pos = m.end()


def assert_stored_intact(stored, sent, sender=None):
    """The stored copy is the sent message with Return-Path: and
    Received: on top, and nothing else changed."""
    fields, rest = split_trace(stored)
    assert fields, f"no trace fields on top: {stored[:300]!r}"
    assert fields[0].lower().startswith(b"return-path:"), \
        f"first field is not Return-Path: {fields[0]!r}"
    if sender is not None:
        assert fields[0] == f"Return-Path: <{sender}>\r\n".encode(), fields[0]
    assert any(f.lower().startswith(b"received:") for f in fields), fields
    if rest != sent:
        i = next((k for k in range(min(len(rest), len(sent)))
                  if rest[k] != sent[k]), min(len(rest), len(sent)))
        raise AssertionError(
            f"stored message differs from the sent one at byte {i} "
            f"(stored {len(rest)} bytes, sent {len(sent)}): "
            f"stored {rest[max(0, i - 40):i + 40]!r} "
            f"sent {sent[max(0, i - 40):i + 40]!r}")


# ------------------------------------------------------------------ store

def _open_ro(path):
    try:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    except sqlite3.OperationalError:
        return sqlite3.connect(str(path), timeout=10)


_BLOB_HEADER = re.compile(rb"^facteur-blob 1 (.*)\n$")


def _blob_meta(line):
    m = _BLOB_HEADER.match(line)
    if not m:
        return None
    meta = {}
    for item in m.group(1).decode("utf-8", "replace").split(" "):
        k, _, v = item.partition("=")
        meta[k] = v
    return meta


def mailbox(data_dir, account, name="INBOX"):
    """The messages of one mailbox: a list of (uid, message bytes) in UID
    order, read from mail/<account>/index.db and the blob files. Every
    indexed message must have its blob with the right size and metadata."""
    acct_dir = Path(data_dir) / "mail" / account.lower()
    db_path = acct_dir / "index.db"
    assert db_path.exists(), f"no index for {account}: {db_path}"
    db = _open_ro(db_path)
    try:
        rows = db.execute(
            "SELECT mm.uid, m.blob, m.header_offset, m.size"
            " FROM mailbox_messages mm"
            " JOIN messages m ON m.id = mm.message_id"
            " JOIN mailboxes b ON b.id = mm.mailbox_id"
            " WHERE b.name = ? ORDER BY mm.uid", (name,)).fetchall()
    finally:
        db.close()
    out = []
    for uid, blob, offset, size in rows:
        path = acct_dir / "blobs" / blob
        assert path.exists(), f"{account} uid {uid}: blob {blob} missing"
        data = path.read_bytes()
        line = data[:offset]
        meta = _blob_meta(line)
        assert meta is not None, \
            f"{account} uid {uid}: bad metadata line {line[:200]!r}"
        assert meta.get("id") == blob, (blob, meta)
        assert len(data) - offset == size, \
            f"{account} uid {uid}: blob holds {len(data) - offset} " \
            f"bytes, index says {size}"
        out.append((uid, data[offset:]))
    return out


def store_problems(data_dir, *, orphans_ok=False, tmp_ok=False):
    """Everything that would be a half-stored message: index rows without
    their blob or with the wrong size, blobs without index row (unless
    orphans_ok: a kill -9 between the rename and the commit may leave one),
    files left in tmp/ (unless tmp_ok). Returns a list of strings."""
    problems = []
    mail = Path(data_dir) / "mail"
    if not mail.exists():
        return problems
    for acct_dir in sorted(p for p in mail.iterdir() if p.is_dir()):
        db_path = acct_dir / "index.db"
        if not db_path.exists():
            problems.append(f"{acct_dir.name}: no index.db")
            continue
        db = _open_ro(db_path)
        try:
            rows = db.execute("SELECT blob, header_offset, size"
                              " FROM messages").fetchall()
            dangling = db.execute(
                "SELECT count(*) FROM mailbox_messages mm"
                " LEFT JOIN messages m ON m.id = mm.message_id"
                " WHERE m.id IS NULL").fetchone()[0]
            uids = db.execute(
                "SELECT b.name, max(mm.uid), b.uidnext FROM mailboxes b"
                " JOIN mailbox_messages mm ON mm.mailbox_id = b.id"
                " GROUP BY b.id").fetchall()
        finally:
            db.close()
        if dangling:
            problems.append(f"{acct_dir.name}: {dangling} mailbox rows "
                            "without message")
        for name, maxuid, uidnext in uids:
            if maxuid >= uidnext:
                problems.append(f"{acct_dir.name}/{name}: uid {maxuid} "
                                f">= uidnext {uidnext}")
        indexed = set()
        for blob, offset, size in rows:
            indexed.add(blob)
            path = acct_dir / "blobs" / blob
            if not path.exists():
                problems.append(f"{acct_dir.name}: blob {blob} missing")
                continue
            st = path.stat().st_size
            if st != offset + size:
                problems.append(f"{acct_dir.name}: blob {blob} has "
                                f"{st} bytes, index says {offset}+{size}")
            with open(path, "rb") as f:
                meta = _blob_meta(f.read(offset))
            if meta is None or meta.get("id") != blob \
                    or meta.get("size") != str(size):
                problems.append(f"{acct_dir.name}: blob {blob}: bad "
                                f"metadata {meta!r}")
        blobs_dir = acct_dir / "blobs"
        if blobs_dir.exists() and not orphans_ok:
            for p in blobs_dir.iterdir():
                if p.name not in indexed:
                    problems.append(f"{acct_dir.name}: blob {p.name} "
                                    "is in no index row")
        tmp = acct_dir / "tmp"
        if tmp.exists() and not tmp_ok:
            left = sorted(p.name for p in tmp.iterdir())
            if left:
                problems.append(f"{acct_dir.name}: files left in tmp/: "
                                f"{left[:5]}")
    return problems


# ------------------------------------------------------------------ server

BASE_CONFIG = {
    "hostname": HOSTNAME,
    "run_user": "",
    "io_threads": "2",
    "log_level": "info",
    "max_connections": "2000",
    "max_connections_per_ip": "1000",
    "shutdown_timeout": "5s",
    "tls_cert": "tls/cert.pem",
    "tls_key": "tls/key.pem",
    "tls_self_signed": "yes",
    "auth_plaintext_loopback": "no",
    "auth_max_failures": "3",
    "auth_failure_delay": "0s",
    "smtp_max_message_size": "10M",
    # Never the system's resolver in tests: nothing answers on port 9, so a
    # lookup fails at once (the relay tests run their own DNS server).
    "dns_resolver": "127.0.0.1:9",
}


class Facteur:
    """One facteur server: its configuration, data directory, ports,
    process and log."""

    ip = "127.0.0.1"  # where it listens (a subclass may use another)

    def __init__(self, workdir, config=None, data_dir=None):
        self.dir = Path(workdir)
        self.data_dir = Path(data_dir) if data_dir else self.dir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.dir / "facteur.conf"
        self.log_path = self.dir / "facteur.log"
        p = free_ports(7)
        self.ports = {"smtp": p[0], "submission": p[1], "submissions": p[2],
                      "imap": p[3], "imaps": p[4], "pop3": p[5],
                      "pop3s": p[6]}
        self.config = dict(BASE_CONFIG)
        self.config.update({
            "data_dir": str(self.data_dir),
            "smtp_listen": f"127.0.0.1:{p[0]}",
            "submission_listen": f"127.0.0.1:{p[1]}",
            "submissions_listen": f"127.0.0.1:{p[2]}",
            "imap_listen": f"127.0.0.1:{p[3]}",
            "imaps_listen": f"127.0.0.1:{p[4]}",
            "pop3_listen": f"127.0.0.1:{p[5]}",
            "pop3s_listen": f"127.0.0.1:{p[6]}",
        })
        self.config.update(config or {})
        self.write_config()
        self.proc = None
        self.exits = []  # (returncode, how it was stopped)
        self._logf = None

    def write_config(self, **changes):
        self.config.update(changes)
        text = "# written by tests/conftest.py\n" + "".join(
            f"{k} = {v}\n" for k, v in self.config.items())
        self.config_path.write_text(text)

    def cli(self, *args, input=None, check=True):
        r = subprocess.run([FACTEUR_BIN, "-c", str(self.config_path),
                            *args], input=input, capture_output=True,
                           text=True, timeout=T(60))
        if check and r.returncode != 0:
            raise AssertionError(f"facteur {' '.join(args)} exited "
                                 f"{r.returncode}: {r.stderr.strip()}")
        return r

    def setup_accounts(self):
        self.cli("domain", "add", DOMAIN)
        for user, password in PASSWORDS.items():
            self.cli("user", "add", user, input=password + "\n")

    def install_cert(self, pair):
        tls = self.data_dir / "tls"
        tls.mkdir(exist_ok=True)
        shutil.copy(pair[0], tls / "cert.pem")
        shutil.copy(pair[1], tls / "key.pem")
        os.chmod(tls / "key.pem", 0o600)

    def start(self, wait=True):
        assert self.proc is None or self.proc.poll() is not None
        if self._logf is None:
            self._logf = open(self.log_path, "ab")
        self._log_start = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            [FACTEUR_BIN, "-c", str(self.config_path), "serve"],
            stdin=subprocess.DEVNULL, stdout=self._logf,
            stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()

    def wait_ready(self):
        deadline = time.monotonic() + T(20)
        probes = 0
        for port in self.ports.values():
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"facteur exited with {self.proc.returncode} "
                        f"while starting:\n{self.log_tail()}")
                try:
                    socket.create_connection((self.ip, port),
                                             timeout=1).close()
                    probes += 1
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise AssertionError(
                            f"port {port} not open after {T(20)}s:\n"
                            f"{self.log_tail()}")
                    time.sleep(0.02)
        # Each probe the server accepted holds a slot of
        # max_connections_per_ip until the server has seen it close, and a
        # probe may still wait in the listen queue: wait until every probe
        # is logged as closed or refused (a slot is given back before its
        # close is logged).
        def probes_done():
            with open(self.log_path, "rb") as f:
                f.seek(self._log_start)
                text = f.read()
            return len(re.findall(rb"conn id=\d+ event=close", text)) + \
                len(re.findall(rb"conn event=refused", text)) >= probes
        while not probes_done() and time.monotonic() < deadline:
            time.sleep(0.02)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=None):
        """SIGTERM, then waits; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout or T(25))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.exits.append((None, "SIGTERM: did not stop in time"))
                return None
        self.exits.append((self.proc.returncode, "SIGTERM"))
        return self.proc.returncode

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.exits.append((self.proc.returncode, "SIGKILL"))

    def restart(self):
        self.start()

    def sighup(self):
        self.proc.send_signal(signal.SIGHUP)

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=150):
        return "\n".join(self.log().splitlines()[-n:])

    def sanitizer_reports(self):
        return [ln for ln in self.log().splitlines()
                if any(m in ln for m in SANITIZER_MARKERS)]

    def smtp(self, service="smtp", **kw):
        kw.setdefault("host", self.ip)
        return SMTPConn(self.ports[service], tls=service == "submissions",
                        **kw)

    def submission(self, user=ALICE, password=None, service="submission",
                   auth=True):
        """A session on the submission port, after STARTTLS (or on 465)
        and, unless auth is False, AUTH PLAIN as `user`."""
        c = self.smtp(service)
        c.ehlo()
        if service == "submission":
            c.starttls()
            c.ehlo()
        if auth:
            expect(c.auth_plain(user, password or PASSWORDS[user]), 235,
                   "2.7.0")
        return c

    def mailbox(self, account, name="INBOX"):
        return mailbox(self.data_dir, account, name)

    def wait_messages(self, account, count, name="INBOX", timeout=None):
        """The acknowledged messages are durable, so they are there at
        once; this only allows for a reader racing the index commit."""
        return wait_until(
            lambda: (lambda m: m if len(m) >= count else None)(
                self.mailbox(account, name)),
            timeout or T(10), f"{count} message(s) in {account}/{name}")

    def finish(self):
        """Stops the server; returns the problems found (unclean exits,
        sanitizer reports)."""
        problems = []
        if self.running():
            self.stop()
        for code, how in self.exits:
            if how == "SIGKILL":
                continue
            if code != 0:
                problems.append(f"facteur did not exit cleanly after {how}: "
                                f"status {code}")
        reports = self.sanitizer_reports()
        if reports:
            problems.append("sanitizer reports in the log:\n  " +
                            "\n  ".join(reports[:20]))
        if self._logf is not None:
            self._logf.close()
            self._logf = None
        return problems


@pytest.fixture(scope="session")
def tls_pair(tmp_path_factory):
    """A certificate and key made once with the openssl tool (if present),
    copied into each data directory so that each start does not create a
    new one. None: each server creates its own (tls_self_signed)."""
    if shutil.which("openssl") is None:
        return None
    d = tmp_path_factory.mktemp("tls")
    r = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
         "-subj", f"/CN={HOSTNAME}", "-keyout", str(d / "key.pem"),
         "-out", str(d / "cert.pem")], capture_output=True, timeout=60)
    if r.returncode != 0:
        return None
    return (d / "cert.pem", d / "key.pem")


def _new_facteur(tmp_path_factory, tls_pair, made, config=None,
                 accounts=True, start=True, data_dir=None, own_cert=False):
    assert os.access(FACTEUR_BIN, os.X_OK), \
        f"no facteur binary at {FACTEUR_BIN} (set FACTEUR_BIN)"
    f = Facteur(tmp_path_factory.mktemp("facteur"), config, data_dir)
    made.append(f)
    if tls_pair is not None and not own_cert:
        f.install_cert(tls_pair)
    if accounts:
        f.setup_accounts()
    if start:
        f.start()
    return f


def _finish_all(made):
    problems = []
    for f in made:
        problems += f.finish()
        print(f"----- facteur log {f.log_path} (last lines) -----")
        print(f.log_tail(300))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def make_facteur(tmp_path_factory, tls_pair):
    """make_facteur(config={...}, accounts=True, start=True, data_dir=None,
    own_cert=False) -> Facteur. Every server made is stopped at teardown,
    which fails if it did not exit 0 or if a sanitizer spoke; its log is
    printed (pytest shows it when the test failed)."""
    made = []
    yield functools.partial(_new_facteur, tmp_path_factory, tls_pair, made)
    _finish_all(made)


@pytest.fixture
def facteur(make_facteur):
    """A running facteur with domain example.test and users alice and
    bob."""
    return make_facteur()


@pytest.fixture(scope="module")
def shared_facteur(tmp_path_factory, tls_pair):
    """One running facteur for the tests of a module that neither break
    nor reconfigure it (same accounts as `facteur`)."""
    made = []
    yield _new_facteur(tmp_path_factory, tls_pair, made)
    _finish_all(made)
