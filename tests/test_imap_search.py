"""
IMAP SEARCH over real messages: flags, sets, sizes, dates, header fields
(decoded), BODY/TEXT through the full-text index, OR/NOT/parentheses,
CHARSET, UID SEARCH, ESEARCH (RETURN), and refusals.
"""
import re

import pytest

from conftest import ALICE
from test_imap_util import imap


def msg(subject, body, frm="Ann <ann@remote.test>", extra=""):
    return (f"From: {frm}\r\nTo: alice@example.test\r\n"
            f"Subject: {subject}\r\nDate: Tue, 02 Jan 2024 10:00:00 +0000\r\n"
            f"{extra}MIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
            ).encode()


@pytest.fixture(scope="module")
def box(shared_facteur):
    c = imap(shared_facteur)
    c.ok("CREATE S")
    m = [msg("Lunch on Friday", "Let's meet at the café near the station."),
         msg("=?utf-8?q?R=C3=A9union?= budget", "Quarterly numbers attached",
             frm="Bob <bob@other.test>", extra="X-Prio: high\r\n"),
         msg("hello", "zebra " * 2000),
         msg("Re: Lunch on Friday", "Sounds good, see you there!")]
    for i, data in enumerate(m):
        date = '"03-Jan-2024 10:00:00 +0000"' if i < 2 else \
            '"10-Feb-2024 10:00:00 +0000"'
        flags = "(\\Seen)" if i in (0, 3) else "()"
        c.ok(f"APPEND S {flags} {date} {{{len(data)}}}", data + b"\r\n")
    c.ok("SELECT S")
    c.ok("STORE 2 +FLAGS (\\Flagged $Work)")
    yield c
    c.close()


def search(c, keys, uid=False):
    u = c.ok(("UID " if uid else "") + "SEARCH " + keys)
    assert len(u) == 1 and u[0].startswith(b"* SEARCH"), u
    return [int(x) for x in u[0][8:].split()]


def test_flags_sets_sizes(box):
    assert search(box, "ALL") == [1, 2, 3, 4]
    assert search(box, "SEEN") == [1, 4]
    assert search(box, "UNSEEN") == [2, 3]
    assert search(box, "FLAGGED KEYWORD $Work") == [2]
    assert search(box, "2:3") == [2, 3]
    assert search(box, "UID 3:*") == [3, 4]
    assert search(box, "LARGER 5000") == [3]
    assert search(box, "SMALLER 1000") == [1, 2, 4]
    assert search(box, "1:4", uid=True) == [1, 2, 3, 4]


def test_dates(box):
    assert search(box, "BEFORE 4-Jan-2024") == [1, 2]
    assert search(box, "ON 10-Feb-2024") == [3, 4]
    assert search(box, "SINCE 1-Feb-2024") == [3, 4]
    assert search(box, "SENTON 2-Jan-2024") == [1, 2, 3, 4]
    assert search(box, "SENTSINCE 3-Jan-2024") == []


def test_strings(box):
    assert search(box, "SUBJECT lunch") == [1, 4]
    assert search(box, 'SUBJECT "réunion"') == [2]
    assert search(box, 'CHARSET UTF-8 SUBJECT "RÉUNION"') == [2]
    assert search(box, "FROM bob@other") == [2]
    assert search(box, "TO alice") == [1, 2, 3, 4]
    assert box.status("SEARCH BODY café")[0] == "BAD"  # 8-bit atom
    assert search(box, 'BODY "CAFÉ"') == [1]
    assert search(box, "BODY zebra") == [3]
    assert search(box, "TEXT Quarterly") == [2]
    assert search(box, "TEXT bob") == [2]
    assert search(box, "HEADER X-Prio high") == [2]
    assert search(box, 'HEADER X-Prio ""') == [2]
    assert search(box, "BODY nowhere-to-be-found") == []
    assert search(box, "BODY ze") == [3]


def test_logic(box):
    assert search(box, "OR FLAGGED SUBJECT hello") == [2, 3]
    assert search(box, "NOT SEEN NOT FLAGGED") == [3]
    assert search(box, "(SEEN SUBJECT re) OR 2 3") == []
    assert search(box, "(OR 1 2) UNSEEN") == [2]


def test_esearch_and_errors(box):
    u = box.ok("SEARCH RETURN (MIN MAX COUNT) SEEN")
    assert re.match(rb'\* ESEARCH \(TAG "a\d+"\) MIN 1 MAX 4 COUNT 2$',
                    u[0]), u
    u = box.ok("UID SEARCH RETURN () ALL")
    assert re.match(rb'\* ESEARCH \(TAG "a\d+"\) UID ALL 1:4$', u[0]), u
    u = box.ok("SEARCH RETURN (COUNT) SUBJECT nothing-like-this")
    assert re.match(rb'\* ESEARCH \(TAG "a\d+"\) COUNT 0$', u[0]), u
    st, tagged, _ = box.status("SEARCH CHARSET KOI8-R ALL")
    assert st == "NO" and b"[BADCHARSET" in tagged
    for bad in ("SEARCH", "SEARCH FOO", "SEARCH 9", "SEARCH OR SEEN",
                "SEARCH RETURN (BOGUS) ALL", "SEARCH (SEEN",
                "SEARCH BEFORE 1-Foo-2024"):
        assert box.status(bad)[0] == "BAD", bad


def test_modseq_search(box):
    u = box.ok("SEARCH MODSEQ 1")
    m = re.match(rb"\* SEARCH 1 2 3 4 \(MODSEQ (\d+)\)$", u[0])
    assert m, u


def test_uid_range_bounds_and_empty_sets(box):
    assert search(box, "UID 2:3 UNSEEN") == [2, 3]
    assert search(box, "2:4 UID 1:3") == [2, 3]
    assert search(box, "UID 100:200") == []
    assert search(box, "UID 3 4") == []
    assert search(box, "NOT UID 2:3") == [1, 4]
    assert search(box, "OR UID 1 UID 4") == [1, 4]
