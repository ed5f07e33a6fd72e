"""
Mail received on port 25 ends up in the recipients' stores, byte for byte:
8-bit bodies, a 5 MB attachment, several recipients (one copy per account),
aliases with several targets, the catch-all, plus-addressing, exact
dot-unstuffing, BDAT, the trace fields the server adds, and mailboxes over
their quota (552 5.2.2, bounces, quota_storage reloaded on SIGHUP).
"""
import base64
import os
import re
import smtplib
import socket

import pytest

from conftest import (ALICE, BOB, HOSTNAME, T, assert_stored_intact,
                      dot_stuff, expect, expect_queued, make_message,
                      send_message, split_trace, store_problems, wait_until)

SENDER = "sender@remote.test"


def test_8bit_utf8_message_stored_intact(facteur):
    body = ("Grüße aus Köln — café, naïve, 日本語のテキスト, emoji 📬.\r\n"
            "Une ligne en français : « élève ».\r\n")
    msg = make_message(SENDER, ALICE, subject="=?utf-8?q?Gr=C3=BC=C3=9Fe?=",
                       body=body, headers=["MIME-Version: 1.0",
                                           "Content-Type: text/plain; "
                                           "charset=utf-8",
                                           "Content-Transfer-Encoding: 8bit"])
    with facteur.smtp() as c:
        c.ehlo()
        assert c.has_ext("8BITMIME")
        expect_queued(send_message(c, SENDER, ALICE, msg,
                                   params="BODY=8BITMIME"))
        expect(c.cmd("QUIT"), 221)
    (uid, stored), = facteur.wait_messages(ALICE, 1)
    assert_stored_intact(stored, msg, sender=SENDER)
    assert facteur.mailbox(BOB) == []
    assert store_problems(facteur.data_dir) == []


def test_received_and_return_path(facteur):
    msg = make_message(SENDER, ALICE)
    with facteur.smtp() as c:
        c.ehlo("client.example")
        expect_queued(send_message(c, SENDER, ALICE, msg))
    (_, stored), = facteur.wait_messages(ALICE, 1)
    fields, rest = split_trace(stored)
    assert rest == msg
    assert fields[0] == f"Return-Path: <{SENDER}>\r\n".encode()
    received = [f for f in fields if f.lower().startswith(b"received:")]
    assert len(received) == 1, fields
    r = re.sub(rb"\r\n[ \t]+", b" ", received[0]).decode()
    assert "from client.example" in r, r
    assert "127.0.0.1" in r, r
    assert f"by {HOSTNAME}" in r, r
    assert re.search(r"\bwith ESMTP\b", r), r
    assert "for <alice@example.test>" in r, r
    assert re.search(r";\s*\w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d "
                     r"[+-]\d{4}\s*$", r), r


def test_null_sender_and_queued_id_in_received(facteur):
    """A bounce (MAIL FROM:<>) is accepted; Return-Path: <>; the id of
    the 250 reply is the id written in Received:."""
    msg = make_message("", ALICE, subject="bounce")
    with facteur.smtp() as c:
        c.ehlo()
        r = expect_queued(send_message(c, "", ALICE, msg))
    qid = r.lines[-1].split("queued as", 1)[1].strip()
    (_, stored), = facteur.wait_messages(ALICE, 1)
    fields, rest = split_trace(stored)
    assert rest == msg
    assert fields[0] == b"Return-Path: <>\r\n"
    assert re.search(rb"\bid " + re.escape(qid.encode()) + rb"\b",
                     b"".join(fields)), (qid, fields)


def test_5mb_attachment_smtplib(facteur):
    payload = os.urandom(5 * 1024 * 1024)
    b64 = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    body = (b"This is a multi-part message.\r\n"
            b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            b"Voil\xc3\xa0 le fichier.\r\n"
            b"--b1\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=\"big.bin\"\r\n\r\n"
            + b64 + b"--b1--\r\n")
    msg = make_message(SENDER, BOB, subject="big", body=body,
                       headers=["MIME-Version: 1.0",
                                "Content-Type: multipart/mixed; "
                                "boundary=\"b1\""])
    assert len(msg) > 5 * 1024 * 1024
    with smtplib.SMTP("127.0.0.1", facteur.ports["smtp"],
                      timeout=60) as s:
        s.ehlo("client.test")
        # smtplib adds SIZE= itself
        refused = s.sendmail(SENDER, [BOB], msg,
                             mail_options=["BODY=8BITMIME"])
        assert refused == {}
    (_, stored), = facteur.wait_messages(BOB, 1)
    assert_stored_intact(stored, msg, sender=SENDER)
    assert store_problems(facteur.data_dir) == []


def test_several_recipients_one_copy_per_account(facteur):
    msg = make_message(SENDER, ALICE, subject="to many")
    with facteur.smtp() as c:
        c.ehlo()
        # alice three ways (plain, other case, +tag): one copy for her
        expect_queued(send_message(
            c, SENDER, [ALICE, BOB, "Alice@EXAMPLE.test",
                        "alice+tag@example.test"], msg))
    (_, a), = facteur.wait_messages(ALICE, 1)
    (_, b), = facteur.wait_messages(BOB, 1)
    assert_stored_intact(a, msg, sender=SENDER)
    assert_stored_intact(b, msg, sender=SENDER)
    assert len(facteur.mailbox(ALICE)) == 1


def test_alias_with_several_targets(facteur):
    facteur.cli("alias", "add", "team@example.test", ALICE)
    facteur.cli("alias", "add", "team@example.test", BOB)
    lst = facteur.cli("alias", "list").stdout
    assert "team@example.test" in lst and ALICE in lst and BOB in lst, lst
    msg = make_message(SENDER, "team@example.test", subject="team")
    with facteur.smtp() as c:
        c.ehlo()
        # the alias and one of its targets: still one copy each
        expect_queued(send_message(c, SENDER, ["team@example.test", BOB],
                                   msg))
    (_, a), = facteur.wait_messages(ALICE, 1)
    (_, b), = facteur.wait_messages(BOB, 1)
    assert_stored_intact(a, msg)
    assert_stored_intact(b, msg)
    assert len(facteur.mailbox(BOB)) == 1


def test_alias_chain(facteur):
    """An alias may point to another alias (followed recursively)."""
    facteur.cli("alias", "add", "info@example.test", "sales@example.test")
    facteur.cli("alias", "add", "sales@example.test", BOB)
    msg = make_message(SENDER, "info@example.test")
    with facteur.smtp() as c:
        c.ehlo()
        expect_queued(send_message(c, SENDER, "info@example.test", msg))
    (_, b), = facteur.wait_messages(BOB, 1)
    assert_stored_intact(b, msg)
    assert facteur.mailbox(ALICE) == []


def test_catch_all(facteur):
    facteur.cli("alias", "add", "@example.test", BOB)
    msg1 = make_message(SENDER, "whoever@example.test", subject="caught")
    msg2 = make_message(SENDER, ALICE, subject="for alice")
    with facteur.smtp() as c:
        c.ehlo()
        expect_queued(send_message(c, SENDER, "whoever@example.test", msg1))
        # an existing user is not caught
        expect_queued(send_message(c, SENDER, ALICE, msg2))
        # other domains are still not relayed
        expect(c.cmd("MAIL FROM:<x@remote.test>"), 250)
        expect(c.cmd("RCPT TO:<whoever@elsewhere.test>"), 554, "5.7.1")
        expect(c.cmd("RSET"), 250)
    (_, b), = facteur.wait_messages(BOB, 1)
    (_, a), = facteur.wait_messages(ALICE, 1)
    assert_stored_intact(b, msg1)
    assert_stored_intact(a, msg2)


def test_plus_addressing(facteur):
    msg = make_message(SENDER, "alice+lists@example.test")
    with facteur.smtp() as c:
        c.ehlo()
        expect_queued(send_message(c, SENDER, "alice+lists@example.test",
                                   msg))
        expect(c.cmd("MAIL FROM:<x@remote.test>"), 250)
        expect(c.cmd("RCPT TO:<nobody+lists@example.test>"), 550, "5.1.1")
    (_, a), = facteur.wait_messages(ALICE, 1)
    assert_stored_intact(a, msg)


def test_dot_unstuffing_exact(facteur):
    body = (b".\r\n"
            b"..\r\n"
            b"...three\r\n"
            b". space\r\n"
            b"a line with a . inside\r\n"
            b".\r\n"
            b" .\r\n"
            b".x\r\n"
            b"last line\r\n")
    msg = make_message(SENDER, ALICE, body=body)
    stuffed = (msg.replace(b"\r\n.", b"\r\n..") + b".\r\n")
    with facteur.smtp() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<sender@remote.test>"), 250)
        expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
        expect(c.cmd("DATA"), 354)
        c.send(stuffed)
        expect_queued(c.reply())
    (_, a), = facteur.wait_messages(ALICE, 1)
    assert_stored_intact(a, msg)


def test_data_in_small_pieces(facteur):
    """The end of data split over several writes (even <CR><LF>.<CR><LF>
    one byte at a time) is still found, and nothing else is lost."""
    msg = make_message(SENDER, ALICE, body="line 1\r\n.dot\r\nline 3\r\n")
    data = msg.replace(b"\r\n.", b"\r\n..") + b".\r\n"
    with facteur.smtp() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<sender@remote.test>"), 250)
        expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
        expect(c.cmd("DATA"), 354)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(data) - 8, 7):
            c.send(data[i:i + 7])
        for i in range(i + 7, len(data)):
            c.send(data[i:i + 1])
        expect_queued(c.reply())
    (_, a), = facteur.wait_messages(ALICE, 1)
    assert_stored_intact(a, msg)


def test_bdat_chunks(facteur):
    """CHUNKING (RFC 3030): the stored message is the exact concatenation
    of the chunks; no dot-unstuffing, and <CRLF>.<CRLF> inside a chunk is
    just data."""
    msg = make_message(SENDER, BOB, body=b"first\r\n.\r\n..second\r\n"
                       b"8-bit: \xc3\xa9\xc3\xa8\r\nend\r\n")
    chunks = [msg[:10], msg[10:11], msg[11:len(msg) - 5], msg[len(msg) - 5:]]
    with facteur.smtp() as c:
        c.ehlo()
        assert c.has_ext("CHUNKING")
        expect(c.cmd(f"MAIL FROM:<{SENDER}> BODY=8BITMIME"), 250)
        expect(c.cmd(f"RCPT TO:<{BOB}>"), 250)
        for i, chunk in enumerate(chunks):
            last = " LAST" if i == len(chunks) - 1 else ""
            c.send(f"BDAT {len(chunk)}{last}\r\n".encode() + chunk)
            r = c.reply()
            if last:
                expect_queued(r)
            else:
                expect(r, 250)
        # a second transaction: all chunks pipelined, then BDAT 0 LAST
        msg2 = make_message(SENDER, BOB, subject="second")
        expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
        expect(c.cmd(f"RCPT TO:<{BOB}>"), 250)
        c.send(f"BDAT {len(msg2) - 3}\r\n".encode() + msg2[:-3] +
               b"BDAT 3\r\n" + msg2[-3:] + b"BDAT 0 LAST\r\n")
        expect(c.reply(), 250)
        expect(c.reply(), 250)
        expect_queued(c.reply())
    got = facteur.wait_messages(BOB, 2)
    assert_stored_intact(got[0][1], msg)
    assert_stored_intact(got[1][1], msg2)


def test_smtputf8_address(facteur):
    sender = "jérôme@exemple.fr"
    msg = make_message(sender, ALICE, subject="SMTPUTF8")
    with facteur.smtp() as c:
        c.ehlo()
        assert c.has_ext("SMTPUTF8")
        # without the SMTPUTF8 parameter, a UTF-8 address is refused
        r = c.cmd(f"MAIL FROM:<{sender}>")
        assert 500 <= r.code < 600, r
        expect_queued(send_message(c, sender, ALICE, msg,
                                   params="SMTPUTF8 BODY=8BITMIME"))
    (_, a), = facteur.wait_messages(ALICE, 1)
    assert_stored_intact(a, msg)
    fields, _ = split_trace(a)
    assert fields[0] == f"Return-Path: <{sender}>\r\n".encode("utf-8")
    assert b"UTF8SMTP" in b"".join(fields), fields


def test_message_over_actual_size_refused(make_facteur):
    f = make_facteur(config={"smtp_max_message_size": "64K"})
    big = make_message(SENDER, ALICE, body=("x" * 76 + "\r\n") * 1000)
    assert len(big) > 64 * 1024
    with f.smtp() as c:
        c.ehlo()
        assert "SIZE 65536" in c.extensions, c.extensions
        # declared size over the limit
        expect(c.cmd(f"MAIL FROM:<{SENDER}> SIZE={len(big)}"), 552, "5.3.4")
        # not declared, but the data is too big: refused at the end
        r = send_message(c, SENDER, ALICE, big)
        expect(r, 552, "5.3.4")
        # the session goes on, and a small message passes
        small = make_message(SENDER, ALICE, subject="small")
        expect_queued(send_message(c, SENDER, ALICE, small))
        # BDAT over the limit
        expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
        expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
        c.send(f"BDAT {len(big)} LAST\r\n".encode() + big)
        expect(c.reply(), 552, "5.3.4")
        expect(c.cmd("RSET"), 250)
        # BDAT chunks that pass the limit only together
        expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
        expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
        half = big[:40000]
        c.send(f"BDAT {len(half)}\r\n".encode() + half)
        expect(c.reply(), 250)
        c.send(f"BDAT {len(half)} LAST\r\n".encode() + half)
        expect(c.reply(), 552, "5.3.4")
        expect(c.cmd("RSET"), 250)
        expect(c.cmd("NOOP"), 250)
    got = f.wait_messages(ALICE, 1)
    assert len(got) == 1
    assert_stored_intact(got[0][1], small)
    assert store_problems(f.data_dir) == []


def test_too_many_recipients(make_facteur):
    f = make_facteur(config={"smtp_max_recipients": "100"})
    with f.smtp() as c:
        c.ehlo()
        cmds = f"MAIL FROM:<{SENDER}>\r\n" + "".join(
            f"RCPT TO:<alice+{i}@example.test>\r\n" for i in range(101))
        c.send(cmds)
        expect(c.reply(), 250)
        for i in range(100):
            expect(c.reply(), 250)
        expect(c.reply(), 452, "4.5.3")
        # the transaction goes on with the first 100
        msg = make_message(SENDER, ALICE)
        expect(c.cmd("DATA"), 354)
        c.send(dot_stuff_end(msg))
        expect_queued(c.reply())
    assert len(f.wait_messages(ALICE, 1)) == 1


def dot_stuff_end(msg):
    return msg.replace(b"\r\n.", b"\r\n..") + b".\r\n"


def test_size_limit_boundary(make_facteur):
    """A message of exactly smtp_max_message_size bytes passes; one byte
    more does not (the size is the message as sent, after unstuffing)."""
    f = make_facteur(config={"smtp_max_message_size": "64K"})
    head = make_message(SENDER, ALICE, body="")
    # lines of dots: dot-stuffing makes the data on the wire longer than
    # the message, and only the message counts (RFC 1870)
    filler = 64 * 1024 - len(head)
    body = (b"." * 76 + b"\r\n") * (filler // 78)
    rem = filler % 78
    if rem >= 2:
        body += b"." * (rem - 2) + b"\r\n"
    elif rem == 1:
        body = body[:-2] + b".\r\n"
    exact = head + body
    assert len(exact) == 64 * 1024, len(exact)
    over = exact[:-2] + b"x\r\n"
    with f.smtp() as c:
        c.ehlo()
        expect_queued(send_message(c, SENDER, ALICE, exact))
        expect(send_message(c, SENDER, ALICE, over), 552, "5.3.4")
        c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{ALICE}>\r\n"
               f"BDAT {len(exact)} LAST\r\n".encode() + exact)
        expect(c.reply(), 250)
        expect(c.reply(), 250)
        expect_queued(c.reply())
    got = f.wait_messages(ALICE, 2)
    assert len(got) == 2
    assert_stored_intact(got[0][1], exact)
    assert_stored_intact(got[1][1], exact)


def test_postmaster_always_accepted(facteur):
    """RFC 5321 4.5.1: <postmaster> (no domain) and postmaster@domain
    are accepted; with an alias they reach its target."""
    facteur.cli("alias", "add", "postmaster@example.test", BOB)
    msg = make_message(SENDER, "postmaster")
    with facteur.smtp() as c:
        c.ehlo()
        expect_queued(send_message(c, SENDER, ["postmaster"], msg))
        expect_queued(send_message(c, SENDER, ["Postmaster@Example.Test"],
                                   msg))
    got = facteur.wait_messages(BOB, 2)
    assert_stored_intact(got[0][1], msg)
    assert_stored_intact(got[1][1], msg)


def test_vrfy_when_enabled(make_facteur):
    f = make_facteur(config={"smtp_vrfy": "yes"})
    with f.smtp() as c:
        c.ehlo()
        expect(c.cmd(f"VRFY {ALICE}"), 250)
        expect(c.cmd("VRFY nobody@example.test"), 550, "5.1.1")
        expect(c.cmd("VRFY someone@elsewhere.test"), (551, 550, 252))


def test_long_line_in_body(facteur):
    """Body lines are not command lines: a 100,000-byte line in DATA is
    stored as it came, or refused with a 5xx; never cut or split."""
    msg = make_message(SENDER, ALICE, body=b"y" * 100000 + b"\r\nend\r\n")
    with facteur.smtp() as c:
        c.ehlo()
        r = send_message(c, SENDER, ALICE, msg)
        if r.code == 250:
            (_, a), = facteur.wait_messages(ALICE, 1)
            assert_stored_intact(a, msg)
        else:
            assert 500 <= r.code < 600, r
            assert facteur.mailbox(ALICE) == []
        expect(c.cmd("NOOP"), 250)


def test_mail_loop_refused(facteur):
    hops = [f"Received: from hop{i}.test by hop{i + 1}.test; "
            "Mon, 01 Jan 2024 00:00:00 +0000" for i in range(60)]
    msg = ("\r\n".join(hops) + "\r\n").encode() + \
        make_message(SENDER, ALICE)
    with facteur.smtp() as c:
        c.ehlo()
        r = send_message(c, SENDER, ALICE, msg)
        expect(r, 554, "5.4.6")
        # 20 hops are fine
        msg = ("\r\n".join(hops[:20]) + "\r\n").encode() + \
            make_message(SENDER, ALICE)
        expect_queued(send_message(c, SENDER, ALICE, msg))
    (_, a), = facteur.wait_messages(ALICE, 1)
    assert a.endswith(msg)


def test_smtp_max_line_configured(make_facteur):
    f = make_facteur(config={"smtp_max_line": "512"})
    with f.smtp() as c:
        c.ehlo()
        expect(c.cmd("NOOP " + "x" * 500), 250)
        expect(c.cmd("NOOP " + "x" * 600), 500, "5.5.2")
        expect(c.cmd("NOOP"), 250)


def test_trace_fields_do_not_reveal_other_recipients(facteur):
    """With several recipients, a copy's Received: must not name the
    others (a Bcc recipient would be revealed)."""
    msg = make_message(SENDER, ALICE, subject="bcc")
    with facteur.smtp() as c:
        c.ehlo()
        expect_queued(send_message(c, SENDER, [ALICE, BOB], msg))
    (_, a), = facteur.wait_messages(ALICE, 1)
    (_, b), = facteur.wait_messages(BOB, 1)
    fa, _ = split_trace(a)
    fb, _ = split_trace(b)
    assert BOB.encode() not in b"".join(fa), fa
    assert ALICE.encode() not in b"".join(fb), fb


def test_ipv6_loopback(make_facteur):
    """A listener on [::1] works; Received: writes the client address as
    an RFC 5321 IPv6 address literal."""
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    from conftest import SMTPConn, free_ports
    p6 = free_ports(1)[0]
    f = make_facteur(start=False)
    f.write_config(smtp_listen=f"127.0.0.1:{f.ports['smtp']} [::1]:{p6}")
    f.start()
    msg = make_message(SENDER, ALICE)
    with SMTPConn(p6, host="::1") as c:
        c.ehlo()
        expect_queued(send_message(c, SENDER, ALICE, msg))
    (_, a), = f.wait_messages(ALICE, 1)
    assert_stored_intact(a, msg)
    assert b"[IPv6:::1]" in b"".join(split_trace(a)[0])


# ------------------------------------------------------------ quota

QUOTA_BODY = "q" * 2900 + "\r\n"  # stored, about 3.2 KB with the trace


def test_over_quota_552(make_facteur):
    """RFC 9208 quota_storage: a recipient whose mailbox cannot take the
    message gets 552 5.2.2 (RFC 3463 "mailbox full"): at RCPT when the
    mailbox is full already or SIZE= says it will be, else at the end of
    DATA or BDAT when the message is for that recipient alone."""
    f = make_facteur(config={"quota_storage": "4K"})
    with f.smtp() as c:
        c.ehlo()
        expect_queued(send_message(c, SENDER, ALICE,
                                   make_message(SENDER, ALICE,
                                                body=QUOTA_BODY)))
        # SIZE= tells at RCPT; the other recipient is not concerned
        expect(c.cmd(f"MAIL FROM:<{SENDER}> SIZE=3000"), 250)
        r = expect(c.cmd(f"RCPT TO:<{ALICE}>"), 552, "5.2.2")
        assert ALICE in r.text
        expect(c.cmd(f"RCPT TO:<{BOB}>"), 250)
        expect(c.cmd("RSET"), 250)
        # without SIZE= the 800 bytes left let RCPT pass: DATA tells
        expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
        expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
        expect(c.cmd("DATA"), 354)
        c.send(dot_stuff(make_message(SENDER, ALICE, body=QUOTA_BODY))
               + b".\r\n")
        expect(c.reply(), 552, "5.2.2")
        # and BDAT LAST the same way
        msg = make_message(SENDER, ALICE, body=QUOTA_BODY)
        expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
        expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250)
        c.send(f"BDAT {len(msg)} LAST\r\n".encode() + msg)
        expect(c.reply(), 552, "5.2.2")
        # a small message still fits
        expect_queued(send_message(c, SENDER, ALICE,
                                   make_message(SENDER, ALICE, body="hi")))
        # an alias to a full mailbox only is refused; one that also leads
        # to a mailbox with room is accepted
        f.cli("alias", "add", "full@example.test", ALICE)
        f.cli("alias", "add", "team@example.test", ALICE)
        f.cli("alias", "add", "team@example.test", BOB)
        expect(c.cmd(f"MAIL FROM:<{SENDER}> SIZE=3000"), 250)
        expect(c.cmd("RCPT TO:<full@example.test>"), 552, "5.2.2")
        expect(c.cmd("RCPT TO:<team@example.test>"), 250)
        expect(c.cmd("RSET"), 250)
    assert len(f.mailbox(ALICE)) == 2
    assert f.mailbox(BOB) == []
    assert "reason=over-quota" in f.log()


def test_over_quota_among_several_recipients(make_facteur):
    """One reply for several recipients: the copies that fit are stored,
    the reply is 250, and the sender gets a bounce (DSN, status 5.2.2) for
    the recipient over quota — unless it said NOTIFY=NEVER."""
    # room for 4 such messages and the bounces for bob
    f = make_facteur(config={"quota_storage": "15K"})
    big = make_message(BOB, ALICE, subject="big", body=QUOTA_BODY)
    with f.smtp() as c:
        c.ehlo()
        for _ in range(4):
            expect_queued(send_message(c, SENDER, ALICE, big))
        # alice has less than 3 KB left: RCPT passes, the store refuses
        expect_queued(send_message(c, BOB, [ALICE, BOB], big))
        bounce = [m for _, m in f.wait_messages(BOB, 2)
                  if b"Action: failed" in m]
        assert len(bounce) == 1, f.mailbox(BOB)
        assert b"Status: 5.2.2" in bounce[0]
        assert b"Final-Recipient: rfc822; " + ALICE.encode() in bounce[0]
        assert len(f.mailbox(ALICE)) == 4
        # NOTIFY=NEVER: stored for bob, no bounce
        c.send(f"MAIL FROM:<{BOB}>\r\n"
               f"RCPT TO:<{ALICE}> NOTIFY=NEVER\r\n"
               f"RCPT TO:<{BOB}>\r\nDATA\r\n")
        for code in (250, 250, 250, 354):
            expect(c.reply(), code)
        c.send(dot_stuff(big) + b".\r\n")
        expect_queued(c.reply())
        # the null sender gets no bounce either
        expect_queued(send_message(c, "", [ALICE, BOB], big))
    assert len(f.wait_messages(BOB, 4)) == 4
    assert len(f.log().split("action=failed")) == 2
    assert len(f.mailbox(ALICE)) == 4


def test_quota_storage_reloaded_on_sighup(make_facteur):
    """quota_storage takes effect on SIGHUP, for SMTP and IMAP alike."""
    from test_imap_util import imap
    f = make_facteur()
    with f.smtp() as c:
        c.ehlo()
        expect_queued(send_message(c, SENDER, ALICE,
                                   make_message(SENDER, ALICE,
                                                body=QUOTA_BODY)))

    def reload(value):
        n = f.log().count("event=reload status=ok")
        f.write_config(quota_storage=value)
        f.sighup()
        wait_until(lambda: f.log().count("event=reload status=ok") > n,
                   T(10), "the reload")

    reload("2K")
    with f.smtp() as c:
        c.ehlo()
        # alice uses more than 2K: full, whatever the size
        expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
        expect(c.cmd(f"RCPT TO:<{ALICE}>"), 552, "5.2.2")
        expect(c.cmd(f"RCPT TO:<{BOB}>"), 250)
    i = imap(f)
    u = i.ok("GETQUOTAROOT INBOX")
    assert re.match(rb'\* QUOTA "" \(STORAGE \d+ 2\)', u[1]), u
    i.close()
    reload("0")
    with f.smtp() as c:
        c.ehlo()
        expect_queued(send_message(c, SENDER, ALICE,
                                   make_message(SENDER, ALICE,
                                                body=QUOTA_BODY),
                                   params="SIZE=3000"))
    assert len(f.mailbox(ALICE)) == 2
