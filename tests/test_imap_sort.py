"""
IMAP SORT and THREAD (RFC 5256) over real messages: criteria with
REVERSE, base subjects, UID forms, ORDEREDSUBJECT and REFERENCES.
"""
import pytest

from test_imap_util import imap


def msg(subject, frm, date, msgid, refs=None, size_pad=0):
    h = (f"From: {frm}\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
         f"Date: {date}\r\nMessage-ID: {msgid}\r\n")
    if refs:
        h += f"References: {refs}\r\nIn-Reply-To: {refs.split()[-1]}\r\n"
    return (h + "\r\n" + "body\r\n" + "x" * size_pad).encode()


@pytest.fixture(scope="module")
def box(shared_facteur):
    c = imap(shared_facteur)
    c.ok("CREATE T")
    msgs = [
        msg("Plans", "Zoe <zoe@x.test>", "Mon, 01 Jan 2024 10:00:00 +0000",
            "<p1@x>", size_pad=300),
        msg("Re: Plans", "adam@x.test", "Mon, 01 Jan 2024 12:00:00 +0000",
            "<p2@x>", "<p1@x>", size_pad=10),
        msg("Another topic", "Bea <bea@x.test>",
            "Sun, 31 Dec 2023 09:00:00 +0000", "<a1@x>", size_pad=100),
        msg("Re: Re: Plans", "Carl <carl@x.test>",
            "Tue, 02 Jan 2024 08:00:00 +0000", "<p3@x>", "<p1@x> <p2@x>"),
        msg("[team] Fwd: Another topic", "dan@x.test",
            "Wed, 03 Jan 2024 08:00:00 +0000", "<a2@x>", size_pad=50),
    ]
    for m in msgs:
        c.ok(f"APPEND T {{{len(m)}}}", m + b"\r\n")
    c.ok("SELECT T")
    yield c
    c.close()


def sort(c, text, uid=False):
    u = c.ok(("UID " if uid else "") + "SORT " + text)
    assert len(u) == 1 and u[0].startswith(b"* SORT"), u
    return [int(x) for x in u[0][6:].split()]


def test_sort_criteria(box):
    assert sort(box, "(DATE) UTF-8 ALL") == [3, 1, 2, 4, 5]
    assert sort(box, "(REVERSE DATE) UTF-8 ALL") == [5, 4, 2, 1, 3]
    assert sort(box, "(ARRIVAL) UTF-8 ALL") == [1, 2, 3, 4, 5]
    assert sort(box, "(SUBJECT DATE) UTF-8 ALL") == [3, 5, 1, 2, 4]
    assert sort(box, "(FROM) UTF-8 ALL") == [2, 3, 4, 5, 1]
    assert sort(box, "(DISPLAYFROM) UTF-8 ALL") == [2, 3, 4, 5, 1]
    assert sort(box, "(SIZE) UTF-8 ALL") == [2, 4, 5, 3, 1]
    assert sort(box, "(REVERSE SIZE) UTF-8 SUBJECT plans") == [1, 4, 2]
    assert sort(box, "(DATE) UTF-8 ALL", uid=True) == [3, 1, 2, 4, 5]
    assert box.status("SORT DATE UTF-8 ALL")[0] == "BAD"
    assert box.status("SORT (BOGUS) UTF-8 ALL")[0] == "BAD"
    st, tagged, _ = box.status("SORT (DATE) KOI8-R ALL")
    assert st == "NO" and b"BADCHARSET" in tagged


def test_thread(box):
    u = box.ok("THREAD ORDEREDSUBJECT UTF-8 ALL")
    assert u == [b"* THREAD (3 5)(1 (2)(4))"], u
    u = box.ok("THREAD REFERENCES UTF-8 ALL")
    assert u == [b"* THREAD (3 5)(1 2 4)"], u
    u = box.ok("UID THREAD REFERENCES US-ASCII 1:2")
    assert u == [b"* THREAD (1 2)"], u
    u = box.ok("THREAD REFERENCES UTF-8 SUBJECT nothing-matches")
    assert u == [b"* THREAD"], u
    assert box.status("THREAD BOGUS UTF-8 ALL")[0] == "BAD"
