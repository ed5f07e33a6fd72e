"""
Relay between domains (issue 5), black-box: the textbook's example with
real processes. A DNS server on loopback (tests/dns_server.py) serves the
zones; facteur instances for truc.fr (127.0.0.2) and machin.com
(127.0.0.3) listen on the same SMTP port of their own address, which the
other reaches through relay_port. Fred (fred@truc.fr) submits to smtp.truc.fr
and Marc (marc@machin.com) finds the message in his store with the Received:
fields of both hops. Small Python SMTP servers (relay_fakes.py) play the
far ends that misbehave: 4xx then accept, no STARTTLS, a smarthost with
AUTH.

Schedules are shortened (first retry 1 s, at most 2 s) so that the whole
file runs in well under a minute.
"""
import email
import email.policy
import re
import socket
import subprocess
import time

import pytest

from conftest import (FACTEUR_BIN, Facteur, SMTPConn, T, expect,
                      expect_queued, free_ports, make_message,
                      send_message, wait_until, _finish_all)
from dns_server import DNSServer
from relay_fakes import FakeSMTP

FRED = "fred@truc.fr"
FRED2 = "fred2@truc.fr"
MARC = "marc@machin.com"
BOB_SANS = "bob@sansmx.org"
ALICE_DEUX = "alice@deux.net"
PASSWORD = "secret-pass-1"

TRUC_IP, MACHIN_IP = "127.0.0.2", "127.0.0.3"
DOWN_IP = "127.0.0.4"     # nothing listens there
LENT_IP = "127.0.0.6"     # fake: 4xx first, then accepts
CLAIR_IP = "127.0.0.7"    # fake: no STARTTLS
REFUS_IP = "127.0.0.8"    # fake: STARTTLS answered 454
PETIT_IP = "127.0.0.9"    # a third facteur that uses a smarthost
COURT_IP = "127.0.0.10"   # a facteur with a short queue lifetime
LIMIT_IP = "127.0.0.12"   # a facteur with small connection limits
SOURCE_IP = "127.0.0.14"  # its relay_source_address
FEW_IP = "127.0.0.15"     # fake: takes many messages
OLD_IP = "127.0.0.13"     # fake: no ESMTP extension at all
ARRET_IP = "127.0.0.16"   # a facteur stopped during a transaction
SLOW_IP = "127.0.0.17"    # fake: answers the end of data after 1.5 s
HUP_IP = "127.0.0.18"     # a facteur whose resolver changes (SIGHUP)
DNS_A_IP = "127.0.0.19"   # fake: the MX the first DNS server gives
DNS_B_IP = "127.0.0.20"   # fake: the MX the second DNS server gives

RELAY_CONFIG = {
    "queue_retry_first": "1s",
    "queue_retry_max": "2s",
    "queue_max_lifetime": "1h",
    "relay_timeout": "10s",
    "relay_connect_timeout": "3s",
    "relay_connection_cache_time": "1s",
    "dns_timeout": "2s",
}


def relay_port(ips=None):
    """A TCP port free on every address the tests use (or on `ips`)."""
    ips = ips or [TRUC_IP, MACHIN_IP, LENT_IP, CLAIR_IP, REFUS_IP, PETIT_IP,
                  COURT_IP, LIMIT_IP, FEW_IP, OLD_IP, "127.0.0.11",
                  ARRET_IP, SLOW_IP, HUP_IP, DNS_A_IP, DNS_B_IP]
    for _ in range(100):
        port = free_ports(1)[0]
        ok = True
        for ip in ips:
            t = socket.socket()
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                t.bind((ip, port))
            except OSError:
                ok = False
            finally:
                t.close()
        if ok:
            return port
    raise RuntimeError("no common free port")


class RelayFacteur(Facteur):
    """A facteur whose services listen on their own loopback address, the
    SMTP one on the shared relay port."""

    def __init__(self, workdir, ip, port, config):
        super().__init__(workdir, config)
        self.ip = ip
        listen = {k: f"{ip}:{v}" for k, v in self.ports.items()}
        listen["smtp"] = f"{ip}:{port}"
        self.ports["smtp"] = port
        self.write_config(**{f"{k}_listen": v for k, v in listen.items()})

    def wait_ready(self):
        deadline = time.monotonic() + T(20)
        for port in self.ports.values():
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"facteur exited with {self.proc.returncode} "
                        f"while starting:\n{self.log_tail()}")
                try:
                    socket.create_connection((self.ip, port),
                                             timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise AssertionError(
                            f"port {port} not open:\n{self.log_tail()}")
                    time.sleep(0.02)

    def smtp(self, service="smtp", **kw):
        return SMTPConn(self.ports[service], tls=service == "submissions",
                        host=self.ip, **kw)

    def add_user(self, address, password=PASSWORD):
        self.cli("user", "add", address, input=password + "\n")

    def submission_as(self, user, password=PASSWORD):
        c = self.smtp("submission")
        c.ehlo()
        c.starttls()
        c.ehlo()
        expect(c.auth_plain(user, password), 235, "2.7.0")
        return c

    def queue_ids(self):
        out = self.cli("queue", "list").stdout
        return re.findall(r"(?m)^([0-9A-Za-z]+)  \d+  ", out)

    def log_count(self, pattern):
        return len(re.findall(pattern, self.log()))


class World:
    def __init__(self, tmp_path_factory, tls_pair):
        self.made = []
        self.fakes = []
        self.tmp = tmp_path_factory
        self.tls_pair = tls_pair
        self.port = relay_port()
        self.dns = DNSServer().start()
        d = self.dns
        d.add_mx("truc.fr", "mx.truc.fr", TRUC_IP)
        d.add_mx("machin.com", "mx.machin.com", MACHIN_IP)
        # two exchangers, the preferred one down
        d.add_mx("deux.net", "mx1.deux.net", DOWN_IP, pref=5)
        d.add_mx("deux.net", "mx.machin.com", None, pref=20)
        # no MX at all: the domain's own address (implicit MX)
        d.add("sansmx.org", "A", MACHIN_IP)
        # RFC 7505 null MX
        d.add("nullmx.org", "MX", ".", pref=0)
        d.add_mx("injoignable.net", "mx.injoignable.net", DOWN_IP)
        d.add_mx("attente.net", "mx.attente.net", DOWN_IP)
        d.add_mx("lent.fr", "mx.lent.fr", LENT_IP)
        d.add_mx("clair.fr", "mx.clair.fr", CLAIR_IP)
        d.add_mx("refus.fr", "mx.refus.fr", REFUS_IP)
        d.add_mx("court.fr", "mx.court.fr", COURT_IP)
        d.add_mx("petit.fr", "mx.petit.fr", PETIT_IP)
        d.add_mx("beaucoup.fr", "mx.beaucoup.fr", FEW_IP)
        d.add_mx("vieux.fr", "mx.vieux.fr", OLD_IP)
        self.truc = self.facteur(TRUC_IP, "mx.truc.fr", ["truc.fr"],
                                 [FRED, FRED2], {
                                     "relay_require_tls_domains":
                                         "clair.fr refus.fr"})
        self.machin = self.facteur(MACHIN_IP, "mx.machin.com",
                                   ["machin.com", "sansmx.org", "deux.net"],
                                   [MARC, BOB_SANS, ALICE_DEUX])

    def facteur(self, ip, hostname, domains, users, config=None,
                start=True):
        conf = dict(RELAY_CONFIG)
        conf.update({"hostname": hostname,
                     "dns_resolver": self.dns.address,
                     "relay_port": str(self.port)})
        conf.update(config or {})
        f = RelayFacteur(self.tmp.mktemp("relay"), ip, self.port, conf)
        self.made.append(f)
        if self.tls_pair is not None:
            f.install_cert(self.tls_pair)
        for dom in domains:
            f.cli("domain", "add", dom)
        for u in users:
            f.add_user(u)
        if start:
            f.start()
        return f

    def fake(self, ip, **kw):
        s = FakeSMTP(ip, self.port, tls_pair=self.tls_pair, **kw).start()
        self.fakes.append(s)
        return s

    def close(self):
        for s in self.fakes:
            s.stop()
        self.dns.stop()
        _finish_all(self.made)


@pytest.fixture(scope="module")
def world(tmp_path_factory, tls_pair):
    w = World(tmp_path_factory, tls_pair)
    yield w
    w.close()


def received_fields(stored):
    return re.findall(rb"(?ms)^Received:.*?(?=^\S)", stored)


def messages_with(f, account, needle, count=1, timeout=None):
    """Waits until `count` messages of account's INBOX contain needle."""
    def found():
        msgs = [m for _, m in f.mailbox(account) if needle in m]
        return msgs if len(msgs) >= count else None
    try:
        return wait_until(found, timeout or T(15),
                          f"{count} message(s) with {needle!r} for "
                          f"{account}")
    except AssertionError:
        print(f.log_tail(80))
        raise


def submit(f, user, rcpts, msg, params=""):
    with f.submission_as(user) as c:
        return expect_queued(send_message(c, user, rcpts, msg,
                                          params=params))


# ------------------------------------------------------------------ tests

def test_fred_writes_to_marc(world):
    """The textbook's example: submission at truc.fr, MX lookup, relay to
    machin.com, Marc's mailbox, the trace of both hops."""
    msg = make_message(FRED, MARC, subject="Bonjour Marc",
                       body="Salut Marc,\r\n.point au debut\r\nFred\r\n")
    submit(world.truc, FRED, MARC, msg)
    (stored,) = messages_with(world.machin, MARC, b"Subject: Bonjour Marc")
    assert stored.startswith(b"Return-Path: <fred@truc.fr>\r\n")
    rec = received_fields(stored)
    assert len(rec) == 2, rec
    # the newest first: machin.com got it from truc.fr, over TLS
    assert b"by mx.machin.com" in rec[0] and b"from mx.truc.fr" in rec[0]
    assert b"ESMTPS" in rec[0]
    assert b"by mx.truc.fr" in rec[1] and b"ESMTPSA" in rec[1]
    assert stored.endswith(msg), "the message changed on the way"
    # (the far end stores before it answers: the log line may lag a bit)
    wait_until(lambda: re.search(
        r"event=sent from=<fred@truc.fr> to=<marc@machin.com> "
        r"relay=mx.machin.com\[127\.0\.0\.3\] status=2\.\d\.\d "
        r"reply=\"250 ", world.truc.log()), T(5), "the log of the relay")
    wait_until(lambda: world.truc.queue_ids() == [], T(5), "empty queue")


def test_several_domains_in_one_message(world):
    """One message: a local recipient, a remote one, a domain without MX
    (implicit MX), a domain whose first MX is down. One 250; everybody
    gets it once."""
    rcpts = [FRED2, MARC, BOB_SANS, ALICE_DEUX]
    msg = make_message(FRED, MARC, subject="A tous")
    submit(world.truc, FRED, rcpts, msg)
    for f, account in ((world.truc, FRED2), (world.machin, MARC),
                       (world.machin, BOB_SANS), (world.machin, ALICE_DEUX)):
        (stored,) = messages_with(f, account, b"Subject: A tous")
        assert stored.endswith(msg)
    wait_until(lambda: world.truc.log_count(
        r"event=sent from=<fred@truc.fr> to=<(alice@deux.net|bob@sansmx.org)"
    ) == 2, T(5), "the log of the relay")
    log = world.truc.log()
    # deux.net: the preferred MX was tried first and refused
    assert re.search(r"event=connect-failed dest=deux.net "
                     r"remote=mx1.deux.net\[127\.0\.0\.4\]", log)
    assert re.search(r"event=sent from=<fred@truc.fr> to=<alice@deux.net> "
                     r"relay=mx.machin.com\[127\.0\.0\.3\]", log)
    # sansmx.org has no MX: its own address
    assert re.search(r"event=sent from=<fred@truc.fr> to=<bob@sansmx.org> "
                     r"relay=sansmx.org\[127\.0\.0\.3\]", log)
    assert ("sansmx.org", "MX") in world.dns.queries


def dsn_parts(stored):
    """The three parts of a multipart/report DSN, as bytes."""
    m = re.search(rb'boundary="([^"]+)"', stored)
    assert m, stored[:600]
    b = m.group(1)
    parts = stored.split(b"--" + b)[1:-1]
    assert len(parts) == 3, parts
    return parts


def test_bounces_null_mx_nxdomain_unknown_user(world):
    """Three recipients fail in three ways: null MX (at once, 5.1.10),
    NXDOMAIN (5.1.2), unknown at the far end (the far end's 550). Fred
    gets one report per attempt with the far end's text."""
    msg = make_message(FRED, MARC, subject="Perdu")
    submit(world.truc, FRED,
           ["x@nullmx.org", "y@nexistepas.test", "nobody@machin.com"], msg)
    bounces = messages_with(world.truc, FRED, b"Subject: Undelivered Mail")
    text = b"".join(bounces)
    human, status, headers = (b"", b"", b"")
    for stored in bounces:
        h, s, o = dsn_parts(stored)
        human += h
        status += s
        headers += o
        assert stored.startswith(b"Return-Path: <>\r\n")
        assert b"report-type=delivery-status" in stored
        assert b"Content-Type: text/rfc822-headers" in o
        assert b"Subject: Perdu" in o
        assert b"Salut" not in o  # headers only (no RET=FULL)
    assert b"Final-Recipient: rfc822; x@nullmx.org" in status
    assert re.search(rb"Status: 5\.1\.10", status)
    assert b"Final-Recipient: rfc822; y@nexistepas.test" in status
    assert re.search(rb"Status: 5\.1\.2", status)
    assert b"Final-Recipient: rfc822; nobody@machin.com" in status
    assert b"Remote-MTA: dns; mx.machin.com" in status
    assert re.search(rb"Diagnostic-Code: smtp; 550 5\.1\.1 "
                     rb"<nobody@machin.com>: Recipient address rejected",
                     status)
    assert status.count(b"Action: failed") == 3
    assert b"Reporting-MTA: dns; mx.truc.fr" in status
    # the human part quotes the far end
    assert b"host mx.machin.com[127.0.0.3] said: 550 5.1.1" in human
    # each failure is reported once
    time.sleep(T(1.5))
    again = [m for _, m in world.truc.mailbox(FRED)
             if b"Subject: Undelivered Mail" in m and b"Perdu" in m]
    assert len(again) == len(bounces)
    assert text.count(b"x@nullmx.org") >= 1


def test_4xx_then_accepted(world):
    """A far end that answers 451 first: the message waits, is retried on
    the (shortened) schedule, and arrives once."""
    fake = world.fake(LENT_IP, rcpt_reply=lambda n, rcpt:
                      "451 4.3.0 try again later" if fake.attempts <= 1
                      else None)
    msg = make_message(FRED, "paul@lent.fr", subject="Patience")
    submit(world.truc, FRED, "paul@lent.fr", msg)
    wait_until(lambda: fake.transactions, T(15), "the retry")
    assert len(fake.transactions) == 1
    txn = fake.transactions[0]
    assert txn["rcpts"] == ["paul@lent.fr"] and txn["from"] == FRED
    assert txn["data"].endswith(msg) and txn["tls"]
    log = world.truc.log()
    assert re.search(r"event=deferred from=<fred@truc.fr> to=<paul@lent.fr> "
                     r"relay=mx.lent.fr\[127\.0\.0\.6\] status=4\.3\.0 "
                     r"reply=\"451 4\.3\.0 try again later\" attempts=1 "
                     r"next=\"", log), world.truc.log_tail(30)
    wait_until(lambda: re.search(r"event=sent from=<fred@truc.fr> "
                                 r"to=<paul@lent.fr> .* attempts=2",
                                 world.truc.log()), T(5), "the sent line")
    time.sleep(T(2.5))
    assert len(fake.transactions) == 1, "delivered twice"
    # no bounce, no notice
    assert not [m for _, m in world.truc.mailbox(FRED)
                if b"Patience" in m and b"MAILER-DAEMON" in m]


def test_starttls_required_and_refused(world):
    """relay_require_tls_domains: a far end without STARTTLS, and one that
    refuses it, never see the message in clear; it waits in the queue."""
    clair = world.fake(CLAIR_IP, starttls=False)
    refus = world.fake(REFUS_IP, starttls=True,
                       starttls_reply="454 4.7.0 TLS not available now")
    msg = make_message(FRED, "a@clair.fr", subject="Secret")
    submit(world.truc, FRED, ["a@clair.fr", "b@refus.fr"], msg)
    wait_until(lambda: world.truc.log_count(
        r"event=deferred .*to=<a@clair.fr>.*TLS is required") >= 2,
        T(15), "two deferrals for clair.fr")
    wait_until(lambda: world.truc.log_count(
        r"event=deferred .*to=<b@refus.fr>.*STARTTLS refused") >= 1,
        T(15), "a deferral for refus.fr")
    assert clair.attempts == 0 and refus.attempts == 0
    assert not any(ln.upper().startswith(("MAIL", "RCPT", "DATA"))
                   for ln in clair.lines + refus.lines)
    (qid,) = [i for i in world.truc.queue_ids()
              if "clair.fr" in world.truc.cli("queue", "show", i).stdout]
    world.truc.cli("queue", "delete", qid)
    assert qid not in world.truc.queue_ids()


def test_queue_commands_on_a_running_server(world):
    """list, show, hold, release, flush, delete while the server runs."""
    t = world.truc
    msg = make_message(FRED, "z@attente.net", subject="En attente")
    reply = submit(t, FRED, "z@attente.net", msg)
    qid = reply.lines[-1].split()[-1]
    wait_until(lambda: re.search(r"attempts=1", t.cli("queue", "list")
                                 .stdout), T(10), "a first attempt")
    out = t.cli("queue", "list").stdout
    assert qid in out and "<fred@truc.fr>" in out
    assert re.search(r"pending +<z@attente.net>  attempts=\d+", out)
    show = t.cli("queue", "show", qid).stdout
    assert "sender: <fred@truc.fr>" in show
    assert "recipient: <z@attente.net> state=pending" in show
    assert "Subject: En attente" in show
    assert "Connection refused" in show
    # hold: no more attempts
    t.cli("queue", "hold", qid)
    assert "held" in t.cli("queue", "list").stdout
    n = t.log_count(rf"queue id={qid} event=deferred")
    time.sleep(T(2.5))
    assert t.log_count(rf"queue id={qid} event=deferred") == n
    # release: tried again at once
    t.cli("queue", "release", qid)
    wait_until(lambda: t.log_count(rf"queue id={qid} event=deferred") > n,
               T(5), "an attempt after release")
    # flush: one more at once
    n = t.log_count(rf"queue id={qid} event=deferred")
    t.cli("queue", "flush", qid)
    wait_until(lambda: t.log_count(rf"queue id={qid} event=deferred") > n,
               T(3), "an attempt after flush")
    t.cli("queue", "flush")
    # delete: gone, files too, no bounce
    t.cli("queue", "delete", qid)
    assert qid not in t.queue_ids()
    assert not list((t.data_dir / "queue").glob(f"{qid}.*"))
    r = t.cli("queue", "show", qid, check=False)
    assert r.returncode != 0 and "no message" in r.stderr
    r = t.cli("queue", "hold", "nonexistent", check=False)
    assert r.returncode != 0


def test_sendmail_t(world):
    """sendmail -t: recipients from To:, Cc:, Bcc: (which goes away); the
    local one is stored, the remote one relayed."""
    text = ("To: Marc <marc@machin.com>\n"
            "Cc: fred2@truc.fr\n"
            "Bcc: bob@sansmx.org\n"
            "Subject: par sendmail\n"
            "\n"
            "Envoye par un script.\n"
            ".\n"
            "encore une ligne\n")
    r = subprocess.run([FACTEUR_BIN, "-c", str(world.truc.config_path),
                        "sendmail", "-t", "-i", "-f", FRED],
                       input=text.encode(), capture_output=True,
                       timeout=T(20))
    assert r.returncode == 0, r.stderr
    for f, account in ((world.machin, MARC), (world.truc, FRED2),
                       (world.machin, BOB_SANS)):
        (stored,) = messages_with(f, account, b"Subject: par sendmail")
        assert b"Bcc:" not in stored
        assert b"\r\n.\r\nencore une ligne\r\n" in stored  # -i
        assert stored.startswith(b"Return-Path: <fred@truc.fr>\r\n")
        assert b"(facteur sendmail, from userid 0)" in stored
        assert re.search(rb"(?m)^Message-ID: <", stored)
        assert re.search(rb"(?m)^Date: ", stored)
    # without -i a lone dot ends the message; arguments as recipients
    r = subprocess.run([FACTEUR_BIN, "-c", str(world.truc.config_path),
                        "sendmail", "-f", FRED, MARC],
                       input=b"Subject: point\n\navant\n.\napres\n",
                       capture_output=True, timeout=T(20))
    assert r.returncode == 0, r.stderr
    (stored,) = messages_with(world.machin, MARC, b"Subject: point")
    assert b"avant" in stored and b"apres" not in stored
    r = subprocess.run([FACTEUR_BIN, "-c", str(world.truc.config_path),
                        "sendmail", "-f", FRED], input=b"x\n",
                       capture_output=True, timeout=T(20))
    assert r.returncode == 64 and b"no recipients" in r.stderr
    # -F: the full name of the From: it adds; -oi; -- before recipients
    r = subprocess.run([FACTEUR_BIN, "-c", str(world.truc.config_path),
                        "sendmail", "-oi", "-F", "Fred Dupont", "-f" + FRED,
                        "--", MARC],
                       input=b"Subject: sans from\n\n.\nfin\n",
                       capture_output=True, timeout=T(20))
    assert r.returncode == 0, r.stderr
    (stored,) = messages_with(world.machin, MARC, b"Subject: sans from")
    assert b'From: "Fred Dupont" <fred@truc.fr>\r\n' in stored
    assert b"\r\n.\r\nfin\r\n" in stored


def test_dsn_parameters(world):
    """DSN (RFC 3461): advertised; NOTIFY=SUCCESS to a next hop without
    DSN gives a "relayed" notice with ORCPT and ENVID; NOTIFY=NEVER
    suppresses the bounce; to a next hop with DSN the parameters go on."""
    with world.truc.submission_as(FRED) as c:
        assert c.has_ext("DSN")
    fake = world.fake("127.0.0.11", dsn=False)
    world.dns.add_mx("nodsn.fr", "mx.nodsn.fr", "127.0.0.11")
    msg = make_message(FRED, "k@nodsn.fr", subject="Avec accuse")
    with world.truc.submission_as(FRED) as c:
        expect(c.cmd(f"MAIL FROM:<{FRED}> RET=HDRS ENVID=QQ+2B314"), 250)
        expect(c.cmd("RCPT TO:<k@nodsn.fr> NOTIFY=SUCCESS,FAILURE "
                     "ORCPT=rfc822;k+2Balias@nodsn.fr"), 250)
        expect(c.cmd("RCPT TO:<ghost@nullmx.org> NOTIFY=NEVER"), 250)
        expect(c.cmd("DATA"), 354)
        from conftest import dot_stuff
        c.send(dot_stuff(msg) + b".\r\n")
        expect_queued(c.reply())
    (notice,) = messages_with(world.truc, FRED, b"Avec accuse")
    human, status, hdrs = dsn_parts(notice)
    assert b"Subject: Successful Mail Delivery Report" in notice
    assert b"Action: relayed" in status
    assert b"Original-Recipient: rfc822; k+alias@nodsn.fr" in status
    assert b"Original-Envelope-Id: QQ+314" in status
    assert b"ghost@nullmx.org" not in notice   # NOTIFY=NEVER
    # no DSN at the far end: nothing of it sent there
    assert "RET=" not in fake.transactions[0]["params"]
    assert "ENVID=" not in fake.transactions[0]["params"]
    assert fake.transactions[0]["rcpt_params"] == [""]
    wait_until(lambda: world.truc.log_count(
        r"event=bounced .*to=<ghost@nullmx.org>"), T(5), "ghost bounced")
    # machin.com offers DSN: the parameters are passed on
    with world.truc.submission_as(FRED) as c:
        expect(c.cmd(f"MAIL FROM:<{FRED}> RET=FULL ENVID=abc"), 250)
        expect(c.cmd(f"RCPT TO:<{MARC}> NOTIFY=SUCCESS"), 250)
        expect(c.cmd("DATA"), 354)
        c.send(dot_stuff(make_message(FRED, MARC, subject="dsn passe"))
               + b".\r\n")
        expect_queued(c.reply())
    messages_with(world.machin, MARC, b"Subject: dsn passe")
    # machin delivered it locally: machin sends the "delivered" notice
    (notice,) = messages_with(world.truc, FRED, b"dsn passe")
    assert b"Action: delivered" in notice
    assert b"Reporting-MTA: dns; mx.machin.com" in notice
    assert b"Original-Envelope-Id: abc" in notice
    assert b"Content-Type: message/rfc822" in notice  # RET=FULL


def test_smarthost_with_auth(world):
    """petit.fr sends everything through a smarthost that wants STARTTLS
    and AUTH (truc.fr's submission port, as Fred): two hops to Marc."""
    pw = world.tmp.mktemp("pw") / "password"
    pw.write_text(PASSWORD + "\n")
    petit = world.facteur(PETIT_IP, "mx.petit.fr", ["petit.fr"], [], {
        "smarthost": f"{TRUC_IP}:{world.truc.ports['submission']}",
        "smarthost_tls": "starttls",
        "smarthost_user": FRED,
        "smarthost_password_file": str(pw)})
    r = subprocess.run([FACTEUR_BIN, "-c", str(petit.config_path),
                        "sendmail", "-f", FRED, MARC],
                       input=b"Subject: via smarthost\n\nbonjour\n",
                       capture_output=True, timeout=T(20))
    assert r.returncode == 0, r.stderr
    (stored,) = messages_with(world.machin, MARC,
                              b"Subject: via smarthost")
    rec = received_fields(stored)
    assert len(rec) == 3, rec
    assert b"by mx.truc.fr" in rec[1] and b"ESMTPSA" in rec[1]
    assert b"by mx.petit.fr" in rec[2]
    log = petit.log()
    assert "event=auth remote=" in log and f"user={FRED}" in log
    assert re.search(r"event=sent .*relay=127\.0\.0\.2\[127\.0\.0\.2\]",
                     log), petit.log_tail(30)
    # the smarthost is an address: petit.fr looked nothing up
    assert "event=route dest=[smarthost] hosts=1" in log


def test_restart_with_messages_in_the_queue(world):
    """machin.com is down; two messages wait at truc.fr; truc.fr stops,
    machin.com comes back, truc.fr starts: they go out, once."""
    world.machin.stop()
    msgs = [make_message(FRED, MARC, subject=f"Redemarrage {i}")
            for i in range(2)]
    for m in msgs:
        submit(world.truc, FRED, MARC, m)
    wait_until(lambda: world.truc.log_count(
        r"event=deferred .*to=<marc@machin.com>.*Connection refused") >= 2,
        T(10), "the deferrals")
    assert len(world.truc.queue_ids()) == 2
    # kill -9: what was acknowledged is on disk
    world.truc.kill9()
    # the queue can be read and edited with no server running
    ids = world.truc.queue_ids()
    assert len(ids) == 2
    r = world.truc.cli("queue", "flush")
    assert "not running" in r.stdout
    world.truc.cli("queue", "hold", ids[0])
    assert "held" in world.truc.cli("queue", "list").stdout
    world.truc.cli("queue", "release", ids[0])
    world.machin.start()
    world.truc.start()
    for i in range(2):
        messages_with(world.machin, MARC, f"Subject: Redemarrage {i}"
                      .encode())
    wait_until(lambda: world.truc.queue_ids() == [], T(10), "empty queue")
    time.sleep(T(1))
    for i in range(2):
        got = [m for _, m in world.machin.mailbox(MARC)
               if f"Subject: Redemarrage {i}".encode() in m]
        assert len(got) == 1, f"message {i} arrived {len(got)} times"


def test_expiry_delay_notice_and_loop(world):
    """A domain that never answers: a delay notice after
    queue_delay_warning, then the bounce at queue_max_lifetime. A message
    with too many Received: fields is bounced, not relayed."""
    court = world.facteur(COURT_IP, "mx.court.fr", ["court.fr"], [
        "paul@court.fr"], {"queue_max_lifetime": "4s",
                           "queue_delay_warning": "2s"})
    r = subprocess.run([FACTEUR_BIN, "-c", str(court.config_path),
                        "sendmail", "-f", "paul@court.fr",
                        "q@injoignable.net"],
                       input=b"Subject: jamais\n\nhello\n",
                       capture_output=True, timeout=T(20))
    assert r.returncode == 0, r.stderr
    (delayed,) = messages_with(court, "paul@court.fr",
                               b"Subject: Delayed Mail", timeout=T(15))
    assert b"Action: delayed" in delayed and b"Will-Retry-Until:" in delayed
    (bounce,) = messages_with(court, "paul@court.fr",
                              b"Subject: Undelivered Mail", timeout=T(15))
    assert b"Action: failed" in bounce and b"Status: 4.4.7" in bounce
    assert b"Connection refused" in bounce
    wait_until(lambda: court.queue_ids() == [], T(5), "empty queue")
    # loop: 51 Received fields
    hops = "".join(f"Received: from h{i} by h{i + 1}; "
                   f"Mon, 1 Jan 2024 00:00:00 +0000\n" for i in range(51))
    r = subprocess.run([FACTEUR_BIN, "-c", str(court.config_path),
                        "sendmail", "-f", "paul@court.fr", MARC],
                       input=(hops + "Subject: boucle\n\nx\n").encode(),
                       capture_output=True, timeout=T(20))
    assert r.returncode == 0, r.stderr
    (bounce,) = messages_with(court, "paul@court.fr", b"Subject: boucle")
    assert b"Status: 5.4.6" in bounce
    assert not [m for _, m in world.machin.mailbox(MARC)
                if b"Subject: boucle" in m]
    # a bounce that cannot be delivered is dropped, not bounced again
    r = subprocess.run([FACTEUR_BIN, "-c", str(court.config_path),
                        "sendmail", "-f", "", "x@nullmx.org"],
                       input=b"Subject: rien\n\nx\n", capture_output=True,
                       timeout=T(20))
    assert r.returncode == 0, r.stderr
    wait_until(lambda: court.log_count(r"event=bounce-dropped "
                                       r"to=<x@nullmx.org>"), T(10),
               "the dropped bounce")


def test_limits_reuse_helo_and_source(world):
    """relay_max_per_destination: never more connections at once to one
    destination; a connection carries several messages; the configured
    HELO name and source address are used."""
    fake = world.fake(FEW_IP)
    limit = world.facteur(LIMIT_IP, "mx.limit.test", ["limit.test"],
                          ["lou@limit.test"], {
                              "relay_max_per_destination": "2",
                              "relay_connection_cache_time": "3s",
                              "relay_helo_name": "helo.limit.test",
                              "relay_source_address": SOURCE_IP})
    procs = [subprocess.Popen([FACTEUR_BIN, "-c", str(limit.config_path),
                               "sendmail", "-f", "lou@limit.test",
                               f"r{i}@beaucoup.fr"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for i in range(8)]
    for i, p in enumerate(procs):
        p.communicate(f"Subject: lot {i}\n\nx\n".encode(), timeout=T(20))
        assert p.returncode == 0
    wait_until(lambda: len(fake.transactions) >= 8, T(15), "8 messages")
    time.sleep(T(0.5))
    assert len(fake.transactions) == 8
    assert sorted(t["rcpts"][0] for t in fake.transactions) == \
        sorted(f"r{i}@beaucoup.fr" for i in range(8))
    assert fake.max_active <= 2, fake.max_active
    assert fake.connections < 8, "no connection was reused"
    assert set(fake.helos) == {"helo.limit.test"}
    assert set(fake.peers) == {SOURCE_IP}


def test_dns_failure_then_recovery(world):
    """SERVFAIL is temporary: the message waits; once the zone answers
    again it goes out."""
    fake = world.fake("127.0.0.11") if not any(
        f.host == "127.0.0.11" for f in world.fakes) else \
        [f for f in world.fakes if f.host == "127.0.0.11"][0]
    world.dns.servfail("panne.fr")
    msg = make_message(FRED, "p@panne.fr", subject="Panne DNS")
    submit(world.truc, FRED, "p@panne.fr", msg)
    wait_until(lambda: world.truc.log_count(
        r"event=deferred .*to=<p@panne.fr> relay=none status=4\.4\.3 "
        r"reply=\"MX lookup for panne.fr failed: [^\"]*SERVFAIL"), T(15),
        "a deferral for SERVFAIL")
    world.dns.servfail("panne.fr", on=False)
    world.dns.add_mx("panne.fr", "mx.panne.fr", "127.0.0.11")
    world.truc.cli("queue", "flush")
    wait_until(lambda: [t for t in fake.transactions
                        if t["rcpts"] == ["p@panne.fr"]], T(15),
               "delivery after the DNS came back")
    assert not [m for _, m in world.truc.mailbox(FRED)
                if b"Panne DNS" in m and b"MAILER-DAEMON" in m]


def leaves(raw):
    """(type, decoded content) of every leaf of a message, line ends
    made LF (Python's quoted-printable decoder gives LFs)."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    out = []
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() == "message":
            continue
        data = part.get_payload(decode=True)
        out.append((part.get_content_type(), data.replace(b"\r\n", b"\n")))
    return out


EIGHT_MULTIPART = (
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"frontiere\"\r\n"
    "\r\n"
    "--frontiere\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "\u00c7a a march\u00e9 : d\u00e9j\u00e0 vu, \u00bd \u20ac. " + "\u00e9" * 90 +
    "\r\n"
    "From here, a line with trailing blanks \r\n"
    ".a dot first\r\n"
    "--frontiere\r\n"
    "Content-Type: application/octet-stream\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n").encode() + bytes(range(128, 256)) + (
    "\r\n"
    "--frontiere\r\n"
    "Content-Type: message/rfc822\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Subject: inner\r\n"
    "\r\n"
    "Gr\u00fc\u00dfe\r\n"
    "--frontiere--\r\n").encode()


def test_what_the_far_end_cannot_take(world):
    """A far end without ESMTP extensions: an 8-bit message declared
    8BITMIME is converted to 7 bits (RFC 6152 §3: quoted-printable or
    base64) and decodes to what was sent; one with 8-bit header fields
    cannot be and is bounced (5.6.3); a UTF-8 address is bounced (5.6.7);
    a 7-bit message goes out without pipelining (HELO). To machin.com,
    which offers CHUNKING and BINARYMIME, a binary message goes with
    BDAT."""
    old = world.fake(OLD_IP, exts=[], starttls=False)
    plain = make_message(FRED, "a@vieux.fr", subject="huit bits",
                         body="d\u00e9j\u00e0 vu\r\n")
    multi = make_message(FRED, "c@vieux.fr", subject="multipart huit bits",
                         body="")[:-4] + EIGHT_MULTIPART
    with world.truc.submission_as(FRED) as c:
        expect_queued(send_message(c, FRED, "a@vieux.fr", plain,
                                   params="BODY=8BITMIME"))
        expect_queued(send_message(c, FRED, "c@vieux.fr", multi,
                                   params="BODY=8BITMIME"))
        head = make_message(FRED, "d@vieux.fr",
                            subject="en-t\u00eate \u00e0 8 bits")
        expect_queued(send_message(c, FRED, "d@vieux.fr", head,
                                   params="BODY=8BITMIME"))
        # SMTPUTF8 allows an 8-bit body without BODY=8BITMIME
        smtputf8 = make_message(FRED, "e@vieux.fr", subject="smtputf8",
                                body="\u00e9t\u00e9\r\n")
        expect_queued(send_message(c, FRED, "e@vieux.fr", smtputf8,
                                   params="SMTPUTF8"))
        utf = make_message(FRED, "a@vieux.fr", subject="adresse utf8")
        expect_queued(send_message(c, FRED, ["andr\u00e9@vieux.fr",
                                             "b@vieux.fr"], utf,
                                   params="SMTPUTF8"))
    for rcpt in ("a@vieux.fr", "c@vieux.fr", "e@vieux.fr"):
        wait_until(lambda: [t for t in old.transactions
                            if t["rcpts"] == [rcpt]], T(10), rcpt)
    for rcpt, sent in (("a@vieux.fr", plain), ("c@vieux.fr", multi),
                       ("e@vieux.fr", smtputf8)):
        (t,) = [t for t in old.transactions if t["rcpts"] == [rcpt]]
        assert max(t["data"]) < 128, "8-bit bytes went to a 7-bit server"
        assert "BODY=" not in t["params"].upper()
        got = t["data"][t["data"].index(b"From: "):]
        body = got[got.index(b"\r\n\r\n"):]
        assert max(len(ln) for ln in body.split(b"\r\n")) <= 76
        assert got != sent
        assert leaves(got) == leaves(sent), got
        hdr = got[:got.index(b"\r\n\r\n")]
        assert b"MIME-Version: 1.0" in hdr
    (t,) = [t for t in old.transactions if t["rcpts"] == ["a@vieux.fr"]]
    assert b"Content-Type: text/plain; charset=utf-8\r\n" \
        b"Content-Transfer-Encoding: quoted-printable\r\n" in t["data"]
    assert t["data"].endswith(b"\r\n\r\nd=C3=A9j=C3=A0 vu\r\n")
    (t,) = [t for t in old.transactions if t["rcpts"] == ["c@vieux.fr"]]
    assert b"Content-Transfer-Encoding: base64" in t["data"]
    assert b"=46rom here, a line with trailing blanks=20\r\n" in t["data"]
    assert world.truc.log_count(r"event=downgrade queue_id=") >= 3
    wait_until(lambda: len([m for _, m in world.truc.mailbox(FRED)
                            if b"vieux.fr" in m and b"Undelivered" in m])
               >= 2, T(10), "two bounces")
    text = b"".join(m for _, m in world.truc.mailbox(FRED)
                    if b"vieux.fr" in m)
    assert b"Status: 5.6.3" in text and b"8BITMIME" in text
    assert b"cannot convert to 7 bits: 8-bit bytes in a header" in text
    assert b"Status: 5.6.7" in text
    assert not [t for t in old.transactions if "d@vieux.fr" in t["rcpts"]]
    # b@vieux.fr of the same message went out, in one plain session
    wait_until(lambda: [t for t in old.transactions
                        if t["rcpts"] == ["b@vieux.fr"]], T(10), "b")
    assert any(h == "mx.truc.fr" for h in old.helos)
    assert not any(ln.upper().startswith("EHLO") is False and
                   ln.upper().startswith("STARTTLS") for ln in old.lines)
    # BINARYMIME over BDAT to a facteur peer
    with world.truc.submission_as(FRED) as c:
        raw = make_message(FRED, MARC, subject="binaire",
                           body="bin\x00aire\r\n")
        expect(c.cmd(f"MAIL FROM:<{FRED}> BODY=BINARYMIME"), 250)
        expect(c.cmd(f"RCPT TO:<{MARC}>"), 250)
        c.send(f"BDAT {len(raw)} LAST\r\n".encode() + raw)
        expect_queued(c.reply())
    (stored,) = messages_with(world.machin, MARC, b"Subject: binaire")
    assert stored.endswith(raw)


def test_alias_that_points_outside(world):
    """An alias of machin.com whose target is at truc.fr: the MX takes the
    message for the alias and forwards it (issue 5: a local alias that
    points outside); local targets of the same alias get their copy."""
    world.machin.cli("alias", "add", "renvoi@machin.com", FRED2)
    world.machin.cli("alias", "add", "renvoi@machin.com", MARC)
    msg = make_message(FRED, "renvoi@machin.com", subject="Faire suivre")
    submit(world.truc, FRED, "renvoi@machin.com", msg)
    (fwd,) = messages_with(world.truc, FRED2, b"Subject: Faire suivre")
    (local,) = messages_with(world.machin, MARC, b"Subject: Faire suivre")
    # truc -> machin -> truc: three hops in the trace
    assert len(received_fields(fwd)) == 3
    assert fwd.endswith(msg) and local.endswith(msg)
    assert fwd.startswith(b"Return-Path: <fred@truc.fr>\r\n")


def sendmail(f, sender, rcpt, text):
    r = subprocess.run([FACTEUR_BIN, "-c", str(f.config_path), "sendmail",
                        "-f", sender, rcpt], input=text,
                       capture_output=True, timeout=T(20))
    assert r.returncode == 0, r.stderr


def test_sigterm_while_the_final_reply_is_awaited(world):
    """RFC 1047: SIGTERM when the far end has the whole message but has
    not answered yet. facteur waits for the reply (within
    shutdown_timeout), writes the result, exits; restarted, it does not
    send the message again."""
    slow = world.fake(SLOW_IP, data_delay=1.5)
    world.dns.add_mx("lent-final.fr", "mx.lent-final.fr", SLOW_IP)
    arret = world.facteur(ARRET_IP, "mx.arret.test", ["arret.test"],
                          ["ana@arret.test"])
    sendmail(arret, "ana@arret.test", "x@lent-final.fr",
             b"Subject: une seule fois\n\nx\n")
    assert slow.data_seen.wait(T(15)), arret.log_tail(40)
    assert arret.stop() == 0
    log = arret.log()
    assert len(slow.transactions) == 1
    assert re.search(r"queue event=drain connections=1 ", log), \
        arret.log_tail(40)
    assert re.search(r"event=sent .*to=<x@lent-final.fr> "
                     r"relay=mx.lent-final.fr\[127\.0\.0\.17\]", log), \
        arret.log_tail(40)
    assert "drain-timeout" not in log
    arret.start()
    assert arret.queue_ids() == []
    time.sleep(T(3))  # more than the first retry delay
    assert len(slow.transactions) == 1, "sent twice"
    # the deadline bounds the wait: a far end slower than
    # shutdown_timeout is cut off, and the message stays queued
    slow.data_seen.clear()
    slow.data_delay = 8
    arret.write_config(shutdown_timeout="1s")
    arret.stop()
    arret.start()
    sendmail(arret, "ana@arret.test", "x@lent-final.fr",
             b"Subject: trop lent\n\nx\n")
    assert slow.data_seen.wait(T(15)), arret.log_tail(40)
    t0 = time.monotonic()
    assert arret.stop() == 0
    assert time.monotonic() - t0 < T(5)
    assert "queue event=drain-timeout connections=1" in arret.log()
    assert len(arret.queue_ids()) == 1
    slow.data_delay = 0


def test_sighup_applies_a_new_resolver(world):
    """dns_resolver changed in the file and SIGHUP: the next lookups go to
    the new DNS server, also for a domain whose route was cached."""
    first = world.fake(DNS_A_IP)
    second = world.fake(DNS_B_IP)
    world.dns.add_mx("bascule.fr", "mx.bascule.fr", DNS_A_IP)
    other = DNSServer().start()
    try:
        other.add_mx("bascule.fr", "mx.bascule.fr", DNS_B_IP)
        hup = world.facteur(HUP_IP, "mx.hup.test", ["hup.test"],
                            ["hugo@hup.test"])
        sendmail(hup, "hugo@hup.test", "y@bascule.fr",
                 b"Subject: avant\n\nx\n")
        wait_until(lambda: first.transactions, T(15), "the first message")
        wait_until(lambda: first.active == 0, T(10), "the session's end")
        assert not other.queries
        hup.write_config(dns_resolver=other.address)
        hup.sighup()
        wait_until(lambda: f"queue event=dns-reload resolver="
                   f"{other.address}" in hup.log(), T(10), "the reload")
        sendmail(hup, "hugo@hup.test", "y@bascule.fr",
                 b"Subject: apres\n\nx\n")
        wait_until(lambda: second.transactions, T(15),
                   "the message through the new resolver")
        assert len(first.transactions) == 1
        assert other.queries[("bascule.fr", "MX")] >= 1
        # a resolver that answers nothing: deferred, then back
        wait_until(lambda: second.active == 0, T(10), "the session's end")
        hup.write_config(dns_resolver="127.0.0.1:9")
        hup.sighup()
        wait_until(lambda: "event=dns-reload resolver=127.0.0.1:9"
                   in hup.log(), T(10), "the second reload")
        sendmail(hup, "hugo@hup.test", "y@bascule.fr",
                 b"Subject: sans dns\n\nx\n")
        wait_until(lambda: hup.log_count(
            r"event=deferred .*to=<y@bascule.fr> relay=none "
            r"status=4\.4\.3"), T(20), "a deferral")
        hup.write_config(dns_resolver=other.address)
        hup.sighup()
        wait_until(lambda: len(second.transactions) == 2, T(20),
                   "delivery once the resolver is back")
        assert len(first.transactions) == 1
    finally:
        other.stop()
