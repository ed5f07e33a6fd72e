"""
Several sessions on one mailbox (RFC 3501 §5.2, §7.4.1): new messages,
flag changes and expunges by others are told at the next command, never
an EXPUNGE during FETCH, STORE or SEARCH; IDLE hears of an SMTP delivery
within a second; UIDs stay.
"""
import re
import time

from conftest import ALICE, T, expect_queued, make_message, send_message
from test_imap_util import imap


def append(c, mbox="INBOX", subject="x"):
    m = make_message(subject=subject)
    return c.ok(f"APPEND {mbox} {{{len(m)}}}", m + b"\r\n")


def test_new_messages_and_flags_at_next_command(facteur):
    a = imap(facteur)
    b = imap(facteur)
    append(a, subject="first")
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    u = append(b, subject="second")
    # B sees the message first (at its APPEND's end): \Recent is B's
    assert u == [b"* 2 EXISTS", b"* 1 RECENT"], u
    u = a.ok("NOOP")
    # A's \Recent is message 1, appended before A selected first
    assert u == [b"* 2 EXISTS", b"* 1 RECENT"], u
    b.ok("STORE 1 +FLAGS (\\Answered)")
    u = a.ok("NOOP")
    assert u == [b"* 1 FETCH (FLAGS (\\Answered \\Recent))"], u
    # a keyword new to the mailbox comes with FLAGS and PERMANENTFLAGS
    b.ok("STORE 2 +FLAGS (NewKw)")
    u = a.ok("NOOP")
    assert any(r.startswith(b"* FLAGS (") and b"NewKw" in r for r in u), u
    assert any(b"PERMANENTFLAGS" in r and b"NewKw" in r for r in u), u
    a.close()
    b.close()


def test_no_expunge_during_fetch_store_search(facteur):
    a = imap(facteur)
    b = imap(facteur)
    for i in range(3):
        append(a, subject=f"m{i}")
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    assert b.ok("EXPUNGE") == [b"* 2 EXPUNGE"]
    # message 2 is gone, but A still numbers it 2 until told
    u = a.ok("FETCH 3 UID")
    assert u[-1] == b"* 3 FETCH (UID 3)" and \
        not any(b"EXPUNGE" in r for r in u), u
    u = a.ok("SEARCH ALL")
    assert u[-1] == b"* SEARCH 1 3" and not any(b"EXPUNGE" in r for r in u)
    u = a.ok("STORE 3 +FLAGS (\\Seen)")
    assert not any(b"EXPUNGE" in r for r in u), u
    st, tagged, u = a.status("FETCH 2 BODY.PEEK[]")
    assert not any(b"EXPUNGE" in r for r in u), u
    assert st == "OK" or b"EXPUNGEISSUED" in tagged, tagged
    # UID commands may say it; NOOP must
    u = a.ok("NOOP")
    assert u == [b"* 2 EXPUNGE"], u
    assert a.ok("FETCH 2 UID") == [b"* 2 FETCH (UID 3)"]
    a.close()
    b.close()


def test_uid_fetch_may_expunge(facteur):
    a = imap(facteur)
    b = imap(facteur)
    for i in range(2):
        append(a, subject=f"u{i}")
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    u = a.ok("UID FETCH 2 FLAGS")
    assert b"* 1 EXPUNGE" in u, u
    a.close()
    b.close()


def test_idle_wakes_on_smtp_delivery(facteur):
    a = imap(facteur)
    a.ok("SELECT INBOX")
    a.send("i1 IDLE\r\n")
    assert a.response() == b"+ idling"
    t0 = time.monotonic()
    with facteur.smtp() as c:
        c.ehlo()
        expect_queued(send_message(c, "s@remote.test", ALICE,
                                   make_message(subject="wake")))
    r = a.response()
    elapsed = time.monotonic() - t0
    assert r == b"* 1 EXISTS", r
    assert elapsed < T(1.5), elapsed
    assert a.response() == b"* 1 RECENT"
    # flag changes by another session come during IDLE too
    b = imap(facteur)
    b.ok("SELECT INBOX")
    b.ok("STORE 1 +FLAGS (\\Flagged)")
    r = a.response()
    assert r == b"* 1 FETCH (FLAGS (\\Flagged \\Recent))", r
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    r = a.response()
    assert r in (b"* 1 FETCH (FLAGS (\\Flagged \\Deleted \\Recent))",
                 b"* 1 EXPUNGE"), r
    if r != b"* 1 EXPUNGE":
        assert a.response() == b"* 1 EXPUNGE"
    a.send("DONE\r\n")
    assert a.response() == b"i1 OK IDLE terminated"
    a.send("i2 IDLE\r\n")
    assert a.response() == b"+ idling"
    a.send("NOTDONE\r\n")
    assert a.response().startswith(b"i2 BAD")
    a.close()
    b.close()


def test_idle_in_authenticated_state(facteur):
    a = imap(facteur)
    a.send("i1 IDLE\r\n")
    assert a.response() == b"+ idling"
    a.send("done\r\n")
    assert a.response() == b"i1 OK IDLE terminated"
    a.close()


def test_selected_mailbox_deleted_by_other(facteur):
    a = imap(facteur)
    b = imap(facteur)
    a.ok("CREATE Doomed")
    a.ok("SELECT Doomed")
    b.ok("DELETE Doomed")
    a.send("x NOOP\r\n")
    rest = a.expect_eof()
    assert b"* BYE" in rest, rest
    b.close()


def test_uids_stable_across_sessions(facteur):
    a = imap(facteur)
    for i in range(4):
        append(a, subject=f"k{i}")
    a.ok("SELECT INBOX")
    a.ok("STORE 1,3 +FLAGS.SILENT (\\Deleted)")
    a.ok("EXPUNGE")
    before = a.ok("FETCH 1:* UID")
    a.close()
    b = imap(facteur)
    b.ok("SELECT INBOX")
    assert b.ok("FETCH 1:* UID") == before == [b"* 1 FETCH (UID 2)",
                                               b"* 2 FETCH (UID 4)"]
    b.close()


def test_quiet_session_gives_back_and_reopens_store_handle(facteur):
    """A session silent for a while closes its store handle (memory) and
    opens it again at its next command; changes made meanwhile are
    told."""
    a = imap(facteur)
    b = imap(facteur)
    append(a, subject="before")
    a.ok("SELECT INBOX")
    time.sleep(11)  # past IMAP_ACCT_IDLE_SEC
    append(b, subject="meanwhile")
    u = a.ok("NOOP")
    assert b"* 2 EXISTS" in u, u
    assert a.ok("FETCH 2 UID") == [b"* 2 FETCH (UID 2)"]
    a.close()
    b.close()


def test_pending_news_kept_across_view_rebuild(facteur):
    """An EXPUNGE held back during FETCH, a flag change and \\Recent survive
    the session's message array being given back while it is quiet, and
    the numbering the client knows is kept."""
    a = imap(facteur)
    b = imap(facteur)
    for i in range(4):
        append(b, subject=f"v{i}")
    # A selects first: the four messages are \Recent to A
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    u = a.ok("FETCH 3 UID")  # no EXPUNGE during FETCH: 2 is pending
    assert u == [b"* 3 FETCH (UID 3)"], u
    b.ok("STORE 2 +FLAGS (\\Flagged)")  # B's 2 is UID 3: A's 3
    time.sleep(11)  # A's view is given back
    append(b, subject="late")
    b.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")  # UID 4
    b.ok("EXPUNGE")
    u = a.ok("NOOP")
    assert u[:2] == [b"* 4 EXPUNGE", b"* 2 EXPUNGE"], u
    assert b"* 3 EXISTS" in u, u
    assert b"* 2 FETCH (FLAGS (\\Flagged \\Recent))" in u, u
    assert a.ok("FETCH 1:* (UID FLAGS)") == [
        b"* 1 FETCH (UID 1 FLAGS (\\Recent))",
        b"* 2 FETCH (UID 3 FLAGS (\\Flagged \\Recent))",
        b"* 3 FETCH (UID 5 FLAGS ())"]  # B saw UID 5 first
    a.close()
    b.close()


def test_idle_view_rebuilt_for_each_change(facteur):
    """During IDLE the view is rebuilt for each change: several changes in
    a row are told with the right numbers."""
    a = imap(facteur)
    b = imap(facteur)
    for i in range(5):
        append(b, subject=f"w{i}")
    a.ok("SELECT INBOX")
    a.send("i IDLE\r\n")
    assert a.response() == b"+ idling"
    b.ok("SELECT INBOX")
    b.ok("STORE 1,3 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    # the \Deleted flags may be told first, as they were set first
    got = []
    while len([r for r in got if r.endswith(b"EXPUNGE")]) < 2:
        got.append(a.response())
    assert [r for r in got if r.endswith(b"EXPUNGE")] == \
        [b"* 3 EXPUNGE", b"* 1 EXPUNGE"], got
    # A selected first: the five messages are \Recent to A
    assert all(r.endswith(b"EXPUNGE") or
               r in (b"* 1 FETCH (FLAGS (\\Deleted \\Recent))",
                     b"* 3 FETCH (FLAGS (\\Deleted \\Recent))")
               for r in got), got
    append(b, subject="new")
    assert a.response() == b"* 4 EXISTS"
    # \Recent goes to whichever session is told first (RFC 3501 §2.3.2):
    # A wakes on the delivery while B waits for its APPEND to finish, so
    # either may win, but never both and never neither (A has 3 already).
    a_recent = a.response()
    assert a_recent in (b"* 3 RECENT", b"* 4 RECENT"), a_recent
    b_recent = b.ok("SEARCH RECENT")
    assert (b_recent == [b"* SEARCH 4"]) == (a_recent == b"* 3 RECENT"), \
        (a_recent, b_recent)
    b.ok("STORE 4 +FLAGS (\\Seen)")  # the new one, UID 6
    r = a.response()
    assert r.startswith(b"* 4 FETCH (FLAGS (\\Seen"), r
    a.send("DONE\r\n")
    assert a.response() == b"i OK IDLE terminated"
    assert a.ok("FETCH 1:* UID") == [b"* 1 FETCH (UID 2)",
                                     b"* 2 FETCH (UID 4)",
                                     b"* 3 FETCH (UID 5)",
                                     b"* 4 FETCH (UID 6)"]
    a.close()
    b.close()
