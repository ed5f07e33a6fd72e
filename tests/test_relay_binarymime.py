"""
BINARYMIME relayed to next hops that cannot take it (RFC 3030 §4), black
box. Fred submits with BDAT and BODY=BINARYMIME a message with binary
parts (NULs, bare CR and LF, a line of 2,500 octets, a message/rfc822
part holding binary content); smtp.truc.fr relays it to three fake next
hops (relay_fakes.FakeSMTP), found through a DNS server on loopback:

  - huit.fr: 8BITMIME and CHUNKING but no BINARYMIME (as Postfix): the
    binary parts arrive in base64, the 8-bit text as it was, with DATA and
    BODY=8BITMIME;
  - sept.fr: no extension at all: everything 7-bit (the 8-bit text in
    quoted-printable), no BODY parameter;
  - binaire.fr: BINARYMIME and CHUNKING: the original bytes, unchanged,
    with BDAT and BODY=BINARYMIME.

In every case what arrives decodes to exactly the bytes that were sent.
A message without MIME gets MIME header fields and a base64 body; a
binary part signed by multipart/signed cannot be converted and bounces
with 5.6.3.
"""
import email
import email.policy
import re

import pytest

from conftest import T, expect, expect_queued, make_message, wait_until
from dns_server import DNSServer
from relay_fakes import FakeSMTP
from test_relay import RELAY_CONFIG, PASSWORD, RelayFacteur, relay_port

FRED = "fred@truc.fr"
TRUC_IP = "127.0.0.40"
HUIT_IP = "127.0.0.41"      # fake: 8BITMIME, CHUNKING, no BINARYMIME
SEPT_IP = "127.0.0.42"      # fake: no ESMTP extension
BINAIRE_IP = "127.0.0.43"   # fake: BINARYMIME and CHUNKING

TEXT = "Voil\u00e0 le fichier, d\u00e9j\u00e0 vu.\r\n.une ligne avec " \
       "un point\r\nFrom the start".encode()
BLOB = (bytes(range(256)) * 8 + b"\r\n.\r\n" + b"\x00" * 10 +
        b"L" * 2500 + b"\r" + b"\n\n" + bytes(range(255, -1, -1)))
INNER = b"\x00inner\rbinary\n" * 5 + b"end"


def binary_message(to, subject="binaire"):
    head = make_message(FRED, to, subject=subject, body="")[:-2]
    return head.replace(b"\r\n\r\n", b"\r\n") + (
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=\"frontiere\"\r\n"
        b"\r\n"
        b"--frontiere\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n" + TEXT + b"\r\n"
        b"--frontiere\r\n"
        b"Content-Type: application/octet-stream; name=\"data.bin\"\r\n"
        b"Content-Disposition: attachment; filename=\"data.bin\"\r\n"
        b"Content-Transfer-Encoding: binary\r\n"
        b"\r\n" + BLOB + b"\r\n"
        b"--frontiere\r\n"
        b"Content-Type: message/rfc822\r\n"
        b"Content-Transfer-Encoding: binary\r\n"
        b"\r\n"
        b"Subject: inner\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: application/x-inner\r\n"
        b"Content-Transfer-Encoding: binary\r\n"
        b"\r\n" + INNER + b"\r\n"
        b"--frontiere--\r\n")


class World:
    def __init__(self, tmp, tls_pair):
        self.port = relay_port([TRUC_IP, HUIT_IP, SEPT_IP, BINAIRE_IP])
        self.dns = DNSServer().start()
        self.dns.add_mx("truc.fr", "mx.truc.fr", TRUC_IP)
        self.dns.add_mx("huit.fr", "mx.huit.fr", HUIT_IP)
        self.dns.add_mx("sept.fr", "mx.sept.fr", SEPT_IP)
        self.dns.add_mx("binaire.fr", "mx.binaire.fr", BINAIRE_IP)
        self.fakes = []
        base = ["PIPELINING", "ENHANCEDSTATUSCODES", "SIZE 50000000"]
        self.huit = self.fake(HUIT_IP, base + ["8BITMIME", "CHUNKING"])
        self.sept = self.fake(SEPT_IP, [])
        self.binaire = self.fake(BINAIRE_IP, base + [
            "8BITMIME", "CHUNKING", "BINARYMIME"])
        conf = dict(RELAY_CONFIG)
        conf.update({"hostname": "mx.truc.fr",
                     "dns_resolver": self.dns.address,
                     "relay_port": str(self.port)})
        self.truc = RelayFacteur(tmp.mktemp("binarymime"), TRUC_IP,
                                 self.port, conf)
        self.truc.install_cert(tls_pair)
        self.truc.cli("domain", "add", "truc.fr")
        self.truc.add_user(FRED, PASSWORD)
        self.truc.start()

    def fake(self, ip, exts):
        f = FakeSMTP(ip, self.port, exts=exts).start()
        self.fakes.append(f)
        return f

    def close(self):
        for f in self.fakes:
            f.stop()
        self.dns.stop()
        self.truc.finish()


@pytest.fixture(scope="module")
def world(tmp_path_factory, tls_pair):
    w = World(tmp_path_factory, tls_pair)
    yield w
    w.close()


def submit_bdat(f, rcpts, raw):
    """BODY=BINARYMIME with the message in two BDAT chunks."""
    with f.submission_as(FRED) as c:
        expect(c.cmd(f"MAIL FROM:<{FRED}> BODY=BINARYMIME"), 250)
        for r in rcpts:
            expect(c.cmd(f"RCPT TO:<{r}>"), 250)
        cut = len(raw) // 3
        c.send(f"BDAT {cut}\r\n".encode() + raw[:cut])
        expect(c.reply(), 250)
        c.send(f"BDAT {len(raw) - cut} LAST\r\n".encode() + raw[cut:])
        expect_queued(c.reply())


def received(fake, rcpt):
    def got():
        return [t for t in fake.transactions if t["rcpts"] == [rcpt]]
    (t,) = wait_until(got, T(15), f"the message for {rcpt}")
    return t


def assert_8bitmime_valid(data):
    assert b"\0" not in data
    assert not re.search(rb"\r(?!\n)|(?<!\r)\n", data), "bare CR or LF"
    assert max(len(ln) for ln in data.split(b"\r\n")) <= 998


def leaves(data):
    """(content type, decoded bytes) of every leaf, message/rfc822 parts
    entered."""
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    out = []
    for part in msg.walk():
        if part.is_multipart() or \
                part.get_content_type() == "message/rfc822":
            continue
        out.append((part.get_content_type(), part.get_payload(decode=True),
                    part.get("Content-Transfer-Encoding", "").lower()))
    return out


def check_decodes_to_original(data):
    (text, ttype, tcte), (blob, btype, bcte), (inner, itype, icte) = \
        [(p, t, c) for t, p, c in leaves(data)]
    assert ttype == "text/plain"
    assert text.replace(b"\r\n", b"\n").rstrip(b"\n") == \
        TEXT.replace(b"\r\n", b"\n")
    assert (btype, bcte) == ("application/octet-stream", "base64")
    assert blob == BLOB
    assert (itype, icte) == ("application/x-inner", "base64")
    assert inner == INNER
    return tcte


def test_one_binary_message_three_next_hops(world):
    rcpts = ["a@huit.fr", "b@sept.fr", "c@binaire.fr"]
    raw = binary_message(", ".join(rcpts))
    submit_bdat(world.truc, rcpts, raw)

    # 8BITMIME without BINARYMIME: base64 for the binary parts, DATA
    t = received(world.huit, "a@huit.fr")
    assert not t.get("bdat"), "BDAT to a server without BINARYMIME"
    assert "BODY=8BITMIME" in t["params"].upper()
    data = t["data"]
    assert data.endswith(b"\r\n") and data.startswith(b"Received: ")
    assert_8bitmime_valid(data)
    assert max(data) >= 128, "the 8-bit text part was kept as it was"
    assert check_decodes_to_original(data) == "8bit"
    # the text part byte for byte; the other fields of the attachment kept
    assert b"Content-Transfer-Encoding: 8bit\r\n\r\n" + TEXT + \
        b"\r\n--frontiere\r\n" in data
    assert b"Content-Disposition: attachment; filename=\"data.bin\"\r\n" \
        b"Content-Transfer-Encoding: base64\r\n\r\n" in data
    assert b"Content-Type: message/rfc822\r\n" \
        b"Content-Transfer-Encoding: 8bit\r\n" in data
    assert not re.search(rb"(?i)Content-Transfer-Encoding: *binary", data)
    assert data.endswith(b"--frontiere--\r\n")

    # no extension at all: everything 7-bit
    t = received(world.sept, "b@sept.fr")
    assert not t.get("bdat")
    assert "BODY=" not in t["params"].upper()
    data = t["data"]
    assert_8bitmime_valid(data)
    assert max(data) < 128, "8-bit bytes to a 7-bit server"
    assert check_decodes_to_original(data) == "quoted-printable"
    assert b"Voil=C3=A0 le fichier" in data

    # BINARYMIME and CHUNKING: the original bytes, with BDAT
    t = received(world.binaire, "c@binaire.fr")
    assert t.get("bdat")
    assert "BODY=BINARYMIME" in t["params"].upper()
    assert t["data"].endswith(raw), "the binary message changed"
    assert t["data"][:-len(raw)].startswith(b"Received: ")

    log = world.truc.log()
    assert re.search(r"event=binary-convert queue_id=\S+ size=\d+ "
                     r"converted=\d+", log)
    assert re.search(r"event=downgrade queue_id=", log)
    assert not [m for _, m in world.truc.mailbox(FRED)
                if b"Undelivered" in m or b"Status: 5." in m]


def test_binary_message_without_mime(world):
    """No MIME at all: the body goes base64, under MIME header fields."""
    body = b"\x7fELF\x02\x01\x01\x00\x00\r\n\x00\x00" + b"z" * 1200 + \
        b"\r\n"
    raw = make_message(FRED, "d@sept.fr", subject="sans mime",
                       body="")[:-2] + body
    for rcpt, fake in (("d@sept.fr", world.sept), ("d@huit.fr", world.huit)):
        submit_bdat(world.truc, [rcpt], raw)
        data = received(fake, rcpt)["data"]
        assert_8bitmime_valid(data)
        assert max(data) < 128
        hdr, sep, rest = data.partition(b"\r\n\r\n")
        assert b"\r\nSubject: sans mime\r\n" in hdr
        assert b"\r\nMIME-Version: 1.0\r\n" \
            b"Content-Type: application/octet-stream\r\n" \
            b"Content-Transfer-Encoding: base64" in hdr + b"\r\n"
        msg = email.message_from_bytes(data, policy=email.policy.compat32)
        assert msg.get_payload(decode=True) == body


def test_signed_binary_part_bounces(world):
    """The first part of a multipart/signed is signed byte for byte: it is
    not converted; the recipient bounces with 5.6.3 and the reason."""
    head = make_message(FRED, "e@huit.fr", subject="signe binaire",
                        body="")[:-2]
    raw = head.replace(b"\r\n\r\n", b"\r\n") + (
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/signed; boundary=s; "
        b"protocol=\"application/pgp-signature\"; micalg=pgp-sha256\r\n"
        b"\r\n"
        b"--s\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: binary\r\n"
        b"\r\n" + BLOB + b"\r\n"
        b"--s\r\n"
        b"Content-Type: application/pgp-signature\r\n"
        b"\r\n"
        b"-----BEGIN PGP SIGNATURE-----\r\nxyz\r\n"
        b"-----END PGP SIGNATURE-----\r\n"
        b"--s--\r\n")
    submit_bdat(world.truc, ["e@huit.fr"], raw)

    def bounce():
        return [m for _, m in world.truc.mailbox(FRED)
                if b"e@huit.fr" in m and b"Status: 5.6.3" in m]
    (dsn,) = wait_until(bounce, T(15), "the bounce")
    assert b"BINARYMIME" in dsn
    assert b"would break the signature" in dsn
    assert not [t for t in world.huit.transactions
                if "e@huit.fr" in t["rcpts"]]
    assert re.search(r"event=binary-convert-failed queue_id=\S+ "
                     r"reason=\"a NUL byte in the signed part",
                     world.truc.log())
