"""
IMAP APPEND beyond tests/test_imap_msg.py: what an OK promises (the
message is stored and intact after a kill -9 that follows it, even in the
middle of a stream of APPENDs), pipelined APPENDs with LITERAL+ (answered
in order, UIDs in order, a refusal in the middle leaves the others alone),
a LITERAL+ literal over APPENDLIMIT (the synchronising one is in
test_imap_msg.py), and the store left clean: message
files made ahead of need (store_spare.c) are gone after a stop, and the
full-text index is filled once the commit thread is idle.
"""
import re
import sqlite3

from conftest import ALICE, T, make_message, store_problems, wait_until
from test_imap_util import imap, parse_fetch

APPENDUID = re.compile(rb"^(\S+) OK \[APPENDUID (\d+) (\d+)\]")


def literal_plus(tag, mailbox, msg, flags=""):
    flags = f" ({flags})" if flags else ""
    return (f"{tag} APPEND {mailbox}{flags} {{{len(msg)}+}}\r\n".encode() +
            msg + b"\r\n")


def fetch_bodies(c, mailbox="INBOX"):
    """{uid: body} of every message of `mailbox`."""
    c.ok(f"SELECT {mailbox}")
    out = {}
    for r in c.ok("UID FETCH 1:* (UID BODY.PEEK[])"):
        if b" FETCH " not in r:
            continue
        _, it = parse_fetch(r)
        out[int(it["UID"])] = it["BODY[]"]
    return out


def test_appended_messages_survive_kill9(make_facteur):
    """Every APPEND answered OK is there, byte for byte, after a kill -9;
    the last one, killed in flight, is either whole or absent."""
    f = make_facteur()
    acked = {}
    with imap(f) as c:
        for i in range(40):
            msg = make_message(subject=f"durable {i}",
                               body=f"line {i} of a body\r\n" * (20 + 50 * i))
            c.send(literal_plus(f"d{i}", "INBOX", msg))
            r = c.response()
            m = APPENDUID.match(r)
            assert m and m.group(1) == f"d{i}".encode(), r
            acked[int(m.group(3))] = msg
        # one more, and the kill before its answer
        c.send(literal_plus("last", "INBOX",
                            make_message(subject="in flight")))
        f.kill9()
    f.restart()
    assert store_problems(f.data_dir, orphans_ok=True, tmp_ok=True) == []
    with imap(f) as c:
        stored = fetch_bodies(c)
    for uid, msg in acked.items():
        assert stored.get(uid) == msg, f"UID {uid} lost or damaged"
    extra = set(stored) - set(acked)
    assert len(extra) <= 1, extra
    for uid in extra:
        assert b"in flight" in stored[uid]


def test_pipelined_appends_answered_in_order(facteur):
    """Twenty APPENDs with LITERAL+ in one write: twenty OKs in the order
    sent, consecutive UIDs, the messages in that order; one to a missing
    mailbox in the middle is refused alone."""
    msgs = [make_message(subject=f"pipelined {i}") for i in range(20)]
    data = b"".join(literal_plus(f"p{i}", "INBOX" if i != 7 else "Nowhere",
                                 m, "\\Seen" if i % 2 else "")
                    for i, m in enumerate(msgs))
    with imap(facteur) as c:
        c.send(data + b"p99 NOOP\r\n")
        tags, uids = [], []
        while True:
            r = c.response()
            if r.startswith(b"*"):
                continue
            tags.append(r.split(b" ", 1)[0])
            if r.startswith(b"p7 "):
                assert b" NO [TRYCREATE]" in r, r
            elif not r.startswith(b"p99 "):
                m = APPENDUID.match(r)
                assert m, r
                uids.append(int(m.group(3)))
            if r.startswith(b"p99 "):
                assert b" OK" in r, r
                break
        assert tags == [f"p{i}".encode() for i in range(20)] + [b"p99"]
        assert uids == list(range(uids[0], uids[0] + 19)), uids
        stored = fetch_bodies(c)
        kept = [m for i, m in enumerate(msgs) if i != 7]
        assert [stored[u] for u in uids] == kept
        seq, it = parse_fetch(c.ok(f"UID FETCH {uids[1]} FLAGS")[-1])
        assert b"\\Seen" in it["FLAGS"]


def test_literal_plus_over_appendlimit(make_facteur):
    """A LITERAL+ message over APPENDLIMIT cannot be refused before it is
    sent: the server says why and closes the connection (RFC 7888 allows
    it), never taking the literal's bytes for commands, and stores
    nothing; the next connection is served."""
    f = make_facteur(config={"imap_max_message_size": "2K"})
    with imap(f) as c:
        big = b"x1 CREATE Injected\r\n" * 200  # 4,000 bytes of commands
        c.send(b"t1 APPEND INBOX {%d+}\r\n" % len(big) + big + b"\r\n")
        said = []
        while True:
            r = c.response_or_eof()
            if r is None:
                break
            said.append(r)
        assert said and said[-1].startswith(b"* BYE"), said
        assert not any(r.startswith(b"x1 ") for r in said), said
    with imap(f) as c:
        assert c.ok("LIST \"\" Injected") == []
        assert c.ok("STATUS INBOX (MESSAGES)") == [
            b"* STATUS INBOX (MESSAGES 0)"]
        small = make_message(subject="fits")
        c.send(literal_plus("t2", "INBOX", small))
        assert APPENDUID.match(c.response())
        assert list(fetch_bodies(c).values()) == [small]


def test_store_clean_after_stop_and_text_indexed(facteur):
    """After a run of APPENDs: once the commit thread is idle the text is
    in the full-text index (not only scanned), SEARCH finds it either way,
    and a clean stop leaves no spare file in tmp/."""
    f = facteur
    with imap(f) as c:
        for i in range(12):
            msg = make_message(subject=f"idx {i}",
                               body=f"quokka{i:02d} lives here\r\n")
            c.send(literal_plus(f"i{i}", "INBOX", msg))
            assert APPENDUID.match(c.response())
        c.ok("SELECT INBOX")
        assert c.ok("SEARCH BODY quokka07") == [b"* SEARCH 8"]
        db = f.data_dir / "mail" / ALICE / "index.db"

        def indexed():
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                left = con.execute("SELECT count(*) FROM fts_text "
                                   "WHERE indexed = 0").fetchone()[0]
                done = con.execute("SELECT count(*) FROM fts_text "
                                   "WHERE indexed = 1").fetchone()[0]
            finally:
                con.close()
            return left == 0 and done >= 12

        wait_until(indexed, T(10), "the text of 12 messages indexed")
        assert c.ok("SEARCH BODY quokka07") == [b"* SEARCH 8"]
        assert c.ok("SEARCH BODY quokka") == [
            b"* SEARCH " + b" ".join(b"%d" % i for i in range(1, 13))]
    f.stop()
    assert store_problems(f.data_dir) == []
