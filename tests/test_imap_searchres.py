"""
SEARCHRES (RFC 5182), ESORT (RFC 5267) and the date keys of SEARCH
(RFC 3501 §6.4.4: the sent date as written in Date:, the internal date's
day in its own zone): "$" as a search key and as the sequence set of FETCH, STORE, COPY,
MOVE, UID EXPUNGE and their UID forms; "$" emptied by SELECT/EXAMINE, by
CLOSE/UNSELECT and by a failed SEARCH with SAVE; expunged messages leave
it; RETURN (SAVE) with MIN/MAX; SORT RETURN answered with ESEARCH.

Each test ends with LOGOUT.
"""
import re

import pytest

from conftest import ALICE
from test_imap_util import imap


def msg(subject, date, frm="Ann <ann@remote.test>", pad=0):
    return (f"From: {frm}\r\nTo: alice@example.test\r\n"
            f"Subject: {subject}\r\nDate: {date}\r\n\r\n"
            f"body {subject}\r\n" + "x" * pad).encode()


# (subject, Date:, internal date, flags)
MESSAGES = [
    ("one", "Mon, 1 Jan 2024 23:30:00 -0500", "01-Jan-2024 10:00:00 +0000",
     "(\\Seen)"),
    ("two", "Tue, 2 Jan 2024 00:30:00 +0200", "02-Jan-2024 23:59:59 +0000",
     "()"),
    ("three", "1 Jan 2024 08:00:00 +0000", "02-Jan-2024 23:30:00 -0500",
     "(\\Flagged)"),
    ("four", "Wed, 3 Jan 24 12:00:00 GMT", "03-Jan-2024 00:00:00 +0000",
     "(\\Seen \\Flagged)"),
    ("five", "garbage", "05-Jan-2024 12:00:00 +0000", "()"),
]


def fill(c, box):
    c.ok(f"CREATE {box}")
    for i, (subj, date, idate, flags) in enumerate(MESSAGES):
        data = msg(subj, date, pad=100 * (len(MESSAGES) - i))
        c.ok(f'APPEND {box} {flags} "{idate}" {{{len(data)}}}', data + b"\r\n")
    c.ok(f"SELECT {box}")


@pytest.fixture
def sess(shared_facteur, request):
    c = imap(shared_facteur)
    c.box = "R" + request.node.name[5:]
    fill(c, c.box)
    yield c
    try:
        c.cmd("LOGOUT")
    finally:
        c.close()


def search(c, keys, uid=False):
    u = c.ok(("UID " if uid else "") + "SEARCH " + keys)
    assert len(u) == 1 and u[0].startswith(b"* SEARCH"), u
    return [int(x) for x in u[0][8:].split()]


def fetch_seqs(c, text):
    u = c.ok(text)
    return [int(re.match(rb"\* (\d+) FETCH", r).group(1)) for r in u
            if re.match(rb"\* \d+ FETCH", r)]


def test_capabilities(shared_facteur):
    with imap(shared_facteur) as c:
        caps = c.ok("CAPABILITY")[0].split()
        assert b"SEARCHRES" in caps and b"ESORT" in caps
        # RFC 5267 §4 too (tests/test_imap_context.py)
        assert b"CONTEXT=SEARCH" in caps and b"CONTEXT=SORT" in caps
        c.cmd("LOGOUT")


def test_save_then_use_everywhere(sess):
    c = sess
    u, tagged = c.cmd("SEARCH RETURN (SAVE) FLAGGED")
    assert u == [] and b"OK" in tagged  # SAVE alone: no ESEARCH
    assert search(c, "$") == [3, 4]
    assert search(c, "UID $") == [3, 4]
    assert search(c, "$ SEEN") == [4]
    assert search(c, "NOT $") == [1, 2, 5]
    assert search(c, "OR $ 1") == [1, 3, 4]
    assert fetch_seqs(c, "FETCH $ (FLAGS)") == [3, 4]
    u = c.ok("UID FETCH $ (FLAGS)")
    assert [re.search(rb"UID (\d+)", r).group(1) for r in u] == [b"3", b"4"]
    u = c.ok("STORE $ +FLAGS (\\Answered)")
    assert len(u) == 2 and all(b"\\Answered" in r for r in u)
    assert search(c, "ANSWERED") == [3, 4]
    c.ok("UID STORE $ -FLAGS.SILENT (\\Answered)")
    assert search(c, "ANSWERED") == []
    c.ok("CREATE Rcopy")
    _, tagged = c.cmd("COPY $ Rcopy")
    assert re.search(rb"\[COPYUID \d+ 3:4 1:2\]", tagged), tagged
    _, tagged = c.cmd("UID COPY $ Rcopy")
    assert re.search(rb"\[COPYUID \d+ 3:4 3:4\]", tagged), tagged
    assert c.ok("STATUS Rcopy (MESSAGES)") == [
        b"* STATUS Rcopy (MESSAGES 4)"]
    c.ok("DELETE Rcopy")


def test_expunge_removes_from_saved(sess):
    c = sess
    c.ok("SEARCH RETURN (SAVE) 2:4")
    c.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")
    u = c.ok("EXPUNGE")
    assert u == [b"* 3 EXPUNGE"]
    # 2 and what was 4 (now 3) remain
    assert search(c, "$") == [2, 3]
    assert fetch_seqs(c, "FETCH $ UID") == [2, 3]
    # MOVE $ takes them away; "$" then matches nothing
    c.ok("CREATE Rmoved")
    u = c.ok("MOVE $ Rmoved")
    assert b"* 3 EXPUNGE" in u and b"* 2 EXPUNGE" in u
    assert search(c, "$") == []
    assert c.ok("FETCH $ FLAGS") == []
    assert c.ok("UID FETCH $ FLAGS") == []
    assert c.status("FETCH $ (BOGUS)")[0] == "BAD"
    assert c.status("FETCH $")[0] == "BAD"
    assert c.ok("STORE $ +FLAGS (\\Seen)") == []
    c.ok("COPY $ Rmoved")
    c.ok("DELETE Rmoved")


def test_uid_expunge_saved(sess):
    c = sess
    c.ok("STORE 1:5 +FLAGS.SILENT (\\Deleted)")
    c.ok("UID SEARCH RETURN (SAVE) UID 2,4")
    u = c.ok("UID EXPUNGE $")
    assert u == [b"* 4 EXPUNGE", b"* 2 EXPUNGE"]
    # an empty "$" (and a UID set naming no message) expunges nothing
    c.ok("SEARCH RETURN (SAVE) SUBJECT nothing-matches-this")
    assert c.ok("UID EXPUNGE $") == []
    assert c.ok("UID EXPUNGE 999") == []
    assert search(c, "ALL") == [1, 2, 3]


def test_save_with_min_max_and_esearch(sess):
    c = sess
    u = c.ok("SEARCH RETURN (SAVE MIN) UNSEEN")
    assert re.match(rb'\* ESEARCH \(TAG "a\d+"\) MIN 2$', u[0]), u
    assert search(c, "$") == [2]
    u = c.ok("SEARCH RETURN (MAX SAVE MIN) UNSEEN")
    assert re.match(rb'\* ESEARCH \(TAG "a\d+"\) MIN 2 MAX 5$', u[0]), u
    assert search(c, "$") == [2, 5]
    u = c.ok("UID SEARCH RETURN (SAVE MIN COUNT) NOT SEEN")
    assert re.match(rb'\* ESEARCH \(TAG "a\d+"\) UID MIN 2 COUNT 3$',
                    u[0]), u
    assert search(c, "$") == [2, 3, 5]
    # a search without SAVE leaves "$" alone
    search(c, "SEEN")
    assert search(c, "$") == [2, 3, 5]
    # the result of a search on "$" itself can be saved
    c.ok("SEARCH RETURN (SAVE) $ FLAGGED")
    assert search(c, "$") == [3]


def test_failed_save_empties(sess):
    c = sess
    c.ok("SEARCH RETURN (SAVE) ALL")
    assert c.status("SEARCH RETURN (SAVE) 99")[0] == "BAD"
    assert search(c, "$") == []
    c.ok("SEARCH RETURN (SAVE) ALL")
    assert c.status("SEARCH RETURN (SAVE) CHARSET KOI8-R ALL")[0] == "NO"
    assert search(c, "$") == []
    # a failed search without SAVE keeps it
    c.ok("SEARCH RETURN (SAVE) 1")
    assert c.status("SEARCH BOGUS")[0] == "BAD"
    assert search(c, "$") == [1]


def test_reset_on_select_close_unselect(sess):
    c = sess
    name = c.box
    c.ok("SEARCH RETURN (SAVE) ALL")
    c.ok(f"EXAMINE {name}")
    assert search(c, "$") == []
    c.ok("SEARCH RETURN (SAVE) ALL")
    c.ok("UNSELECT")
    c.ok(f"SELECT {name}")
    assert search(c, "$") == []
    c.ok("SEARCH RETURN (SAVE) ALL")
    c.ok("CLOSE")
    assert c.status("FETCH $ FLAGS")[0] == "BAD"  # no mailbox
    c.ok(f"SELECT {name}")
    assert fetch_seqs(c, "FETCH $ FLAGS") == []


def test_saved_survives_idle_view(sess):
    """The view is given back while the session is idle; "$" stays."""
    c = sess
    c.ok("SEARCH RETURN (SAVE) 2,4")
    c.send(b"i1 IDLE\r\n")
    assert c.response().startswith(b"+")
    c.send(b"DONE\r\n")
    _, tagged = c.until_tagged("i1")
    assert tagged.startswith(b"i1 OK")
    assert fetch_seqs(c, "FETCH $ FLAGS") == [2, 4]


def test_dollar_syntax(sess):
    c = sess
    c.ok("SEARCH RETURN (SAVE) 1")
    for bad in ("FETCH $,1 FLAGS", "FETCH 1:$ FLAGS", "SEARCH $$",
                "SEARCH UID $1"):
        assert c.status(bad)[0] == "BAD", bad


def test_esort(sess):
    c = sess
    # sizes shrink with the position: SIZE sorts 5,4,3,2,1
    u = c.ok("SORT RETURN (ALL) (SIZE) UTF-8 ALL")
    assert re.match(rb'\* ESEARCH \(TAG "a\d+"\) ALL 5,4,3,2,1$', u[0]), u
    u = c.ok("SORT RETURN (MIN MAX COUNT) (SIZE) UTF-8 NOT 3")
    assert re.match(rb'\* ESEARCH \(TAG "a\d+"\) MIN 5 MAX 1 COUNT 4$',
                    u[0]), u
    u = c.ok("UID SORT RETURN () (REVERSE SIZE) UTF-8 ALL")
    assert re.match(rb'\* ESEARCH \(TAG "a\d+"\) UID ALL 1:5$', u[0]), u
    u = c.ok("SORT RETURN (COUNT) (SIZE) UTF-8 SUBJECT nothing-here")
    assert re.match(rb'\* ESEARCH \(TAG "a\d+"\) COUNT 0$', u[0]), u
    u, tagged = c.cmd("SORT RETURN (SAVE) (SIZE) UTF-8 FLAGGED")
    assert u == [] and b"OK" in tagged
    assert search(c, "$") == [3, 4]
    u = c.ok("SORT RETURN (SAVE MIN) (SIZE) UTF-8 ALL")
    assert re.match(rb'\* ESEARCH \(TAG "a\d+"\) MIN 5$', u[0]), u
    assert search(c, "$") == [5]
    # plain SORT unchanged
    assert c.ok("SORT (SIZE) UTF-8 ALL") == [b"* SORT 5 4 3 2 1"]
    for bad in ("SORT RETURN (BOGUS) (SIZE) UTF-8 ALL",
                "SORT RETURN (ALL) UTF-8 ALL", "SORT RETURN ALL (SIZE) "
                "UTF-8 ALL"):
        assert c.status(bad)[0] == "BAD", bad


def test_sent_dates_in_their_own_zone(sess):
    c = sess
    # "one" is 1 Jan 23:30 -0500 (2 Jan in UTC); "two" 2 Jan 00:30 +0200
    # (1 Jan in UTC); "four" has a two-digit year; "five" no date
    assert search(c, "SENTON 1-Jan-2024") == [1, 3]
    assert search(c, "SENTON 2-Jan-2024") == [2]
    assert search(c, "SENTON 3-Jan-2024") == [4]
    assert search(c, "SENTBEFORE 2-Jan-2024") == [1, 3]
    assert search(c, "SENTSINCE 2-Jan-2024") == [2, 4]
    assert search(c, "NOT SENTSINCE 1-Jan-1990") == [5]


def test_internal_dates_own_day(sess):
    c = sess
    # internal dates keep their zone: "three" was appended as 02-Jan
    # 23:30 -0500 (03-Jan 04:30 UTC), shown so and searched as 2-Jan
    u = c.ok("FETCH 3 INTERNALDATE")
    assert b'"02-Jan-2024 23:30:00 -0500"' in u[0], u
    assert search(c, "ON 2-Jan-2024") == [2, 3]
    assert search(c, "ON 3-Jan-2024") == [4]
    assert search(c, "BEFORE 3-Jan-2024") == [1, 2, 3]
    assert search(c, "SINCE 3-Jan-2024") == [4, 5]


def test_rev2_search_and_saved(shared_facteur):
    """IMAP4rev2 has SEARCHRES in its base: SEARCH answers ESEARCH,
    RETURN (SAVE) alone answers nothing, "$" works the same."""
    c = imap(shared_facteur)
    try:
        c.ok("ENABLE IMAP4rev2")
        fill(c, "Rrev2")
        u = c.ok("SEARCH FLAGGED")
        assert re.match(rb'\* ESEARCH \(TAG "a\d+"\) ALL 3:4$', u[0]), u
        assert c.ok("SEARCH RETURN (SAVE) UNSEEN") == []
        u = c.ok("UID SEARCH $")
        assert re.match(rb'\* ESEARCH \(TAG "a\d+"\) UID ALL 2:3,5$',
                        u[0]), u
        u = c.ok("SEARCH SUBJECT nothing-here")
        assert re.match(rb'\* ESEARCH \(TAG "a\d+"\)$', u[0]), u
        # no \Recent in IMAP4rev2
        assert all(b"\\Recent" not in r for r in c.ok("FETCH 1:* FLAGS"))
    finally:
        c.cmd("LOGOUT")
        c.close()


def peak_rss_kb(f):
    with open(f"/proc/{f.proc.pid}/status") as st:
        for ln in st:
            if ln.startswith("VmHWM:"):
                return int(ln.split()[1])
    return 0


def test_many_dollars_cost_no_copies(make_facteur):
    """Each "$" of a SEARCH uses the saved result where it is, not a copy
    of it: 30,000 "$" on a line (60 KB) against a result of 1,024 ranges
    would otherwise take 240 MB."""
    f = make_facteur()
    with imap(f) as c:
        c.ok("CREATE Many")
        data = b"Subject: x\r\n\r\nx\r\n"
        c.ok(f"APPEND Many {{{len(data)}}}", data + b"\r\n")
        c.ok("SELECT Many")
        for _ in range(11):
            c.ok("COPY 1:* Many")
        assert c.ok("STATUS Many (MESSAGES)") == [
            b"* STATUS Many (MESSAGES 2048)"]
        odd = ",".join(str(i) for i in range(1, 2048, 2))
        c.ok(f"SEARCH RETURN (SAVE) {odd}")
        before = peak_rss_kb(f)
        u = c.ok("SEARCH" + " $" * 30000)
        assert u[0] == b"* SEARCH " + odd.replace(",", " ").encode()
        grown = peak_rss_kb(f) - before
        assert grown < 64 * 1024, f"{grown} KB more at the peak"
        c.cmd("LOGOUT")
