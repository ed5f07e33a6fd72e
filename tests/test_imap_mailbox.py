"""
IMAP mailbox commands: SELECT and EXAMINE responses, CREATE (with USE),
DELETE, RENAME (hierarchies and INBOX), SUBSCRIBE/UNSUBSCRIBE, LIST and
LSUB (patterns, CHILDREN, SPECIAL-USE, LIST-EXTENDED, LIST-STATUS),
STATUS, NAMESPACE, modified UTF-7 names and UTF8=ACCEPT.
"""
import re

import pytest

from conftest import ALICE, BOB, make_message, expect_queued, send_message
from test_imap_util import IMAPConn, imap


def deliver(f, n=1, to=ALICE, subject="test"):
    with f.smtp() as c:
        c.ehlo()
        for i in range(n):
            expect_queued(send_message(c, "sender@remote.test", to,
                                       make_message(to=to,
                                                    subject=f"{subject} {i}")))


def names(untagged, kind="LIST"):
    out = {}
    for r in untagged:
        m = re.match(rb"\* " + kind.encode() +
                     rb" \(([^)]*)\) \"/\" (.*)$", r)
        if m:
            name = m.group(2)
            if name.startswith(b'"'):
                name = name[1:-1]
            out[name.decode()] = m.group(1).decode().split()
    return out


def test_select_examine_responses(facteur):
    deliver(facteur, 3)
    with imap(facteur) as c:
        untagged, tagged = c.cmd("SELECT INBOX")
        assert tagged == b"a2 OK [READ-WRITE] SELECT completed"
        text = b"\n".join(untagged)
        assert b"* 3 EXISTS" in untagged
        assert b"* 0 RECENT" in untagged or b"* 3 RECENT" in untagged
        assert re.search(rb"\* FLAGS \(\\Answered \\Flagged \\Deleted "
                         rb"\\Seen \\Draft\)", text)
        assert b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted " \
               b"\\Seen \\Draft \\*)] Flags permitted" in untagged
        assert b"* OK [UNSEEN 1] First unseen" in untagged
        assert re.search(rb"\* OK \[UIDVALIDITY \d+\]", text)
        assert b"* OK [UIDNEXT 4] Predicted next UID" in untagged
        untagged, tagged = c.cmd("EXAMINE inbox")
        assert tagged == b"a3 OK [READ-ONLY] EXAMINE completed"
        assert b"* OK [PERMANENTFLAGS ()] Read-only mailbox" in untagged
        st, tagged, _ = c.status("SELECT nosuch")
        assert st == "NO" and b"[NONEXISTENT]" in tagged
        # a failed SELECT leaves no mailbox selected
        assert c.cmd("FETCH 1 FLAGS")[1].startswith(b"a5 BAD")


def test_create_delete_rename(shared_facteur):
    with imap(shared_facteur, BOB) as c:
        c.ok("CREATE Projets/2024/")
        c.ok('CREATE "Projets/2024/Q1"')
        st, tagged, _ = c.status("CREATE Projets")
        assert st == "NO" and b"[ALREADYEXISTS]" in tagged
        st, tagged, _ = c.status("CREATE INBOX")
        assert st == "NO" and b"[ALREADYEXISTS]" in tagged
        lst = names(c.ok('LIST "" "Projets*"'))
        assert lst == {"Projets": ["\\HasChildren"],
                       "Projets/2024": ["\\HasChildren"],
                       "Projets/2024/Q1": ["\\HasNoChildren"]}
        c.ok("RENAME Projets Work")
        lst = names(c.ok('LIST "" *'))
        assert "Work/2024/Q1" in lst and "Projets" not in lst
        st, tagged, _ = c.status("RENAME Work INBOX")
        assert st == "NO"
        st, tagged, _ = c.status("RENAME nosuch other")
        assert st == "NO" and b"[NONEXISTENT]" in tagged
        # a parent with children loses its messages, becomes \Noselect
        c.ok("DELETE Work")
        lst = names(c.ok('LIST "" "Work*"'))
        assert "\\Noselect" in lst["Work"]
        # RFC 9051 §6.3.5: a \Noselect name with children cannot go
        st, tagged, _ = c.status("DELETE Work")
        assert st == "NO" and b"[HASCHILDREN]" in tagged, tagged
        c.ok("DELETE Work/2024/Q1")
        c.ok("DELETE Work/2024")
        lst = names(c.ok('LIST "" "Work*"'))
        assert lst == {}
        st, tagged, _ = c.status("DELETE INBOX")
        assert st == "NO" and b"[CANNOT]" in tagged
        st, tagged, _ = c.status("DELETE nosuch")
        assert st == "NO" and b"[NONEXISTENT]" in tagged
        assert c.status('CREATE "bad*name"')[0] == "NO"
        assert c.status("CREATE bad*name")[0] == "BAD"


def test_rename_inbox_moves_messages(facteur):
    deliver(facteur, 2)
    with imap(facteur) as c:
        c.ok("RENAME INBOX Old")
        u = c.ok("STATUS Old (MESSAGES)")
        assert u == [b"* STATUS Old (MESSAGES 2)"]
        u = c.ok("STATUS INBOX (MESSAGES)")
        assert u == [b"* STATUS INBOX (MESSAGES 0)"]


def test_mailbox_renamed_by_another_session_is_followed(facteur):
    """A session whose selected mailbox another session renames goes on
    in it under the new name (same UIDVALIDITY, same UIDs), hears of what
    happens there, and only a DELETE ends it with BYE (RFC 3501 §7.1.5)."""
    deliver(facteur, 2)
    with imap(facteur) as c, imap(facteur) as other:
        c.ok("CREATE Work")
        c.ok("SELECT INBOX")
        c.ok("COPY 1:2 Work")
        u = c.ok("SELECT Work")
        uv = [r for r in u if b"UIDVALIDITY" in r][0]
        other.ok("RENAME Work Projects/2026")
        u = c.ok("NOOP")
        assert not any(r.startswith(b"* BYE") for r in u), u
        assert c.ok("UID FETCH 1:* (UID)") == [b"* 1 FETCH (UID 1)",
                                               b"* 2 FETCH (UID 2)"]
        c.ok("STORE 1 +FLAGS (\\Flagged)")
        u = other.ok("EXAMINE Projects/2026")
        assert uv.split(b"]")[0] in b"".join(u), (uv, u)
        assert other.ok("SEARCH FLAGGED") == [b"* SEARCH 1"]
        other.ok("SELECT INBOX")
        other.ok("COPY 1 Projects/2026")
        assert b"* 3 EXISTS" in c.ok("NOOP")
        other.ok("UNSELECT")
        other.ok("DELETE Projects/2026")
        c.send("n NOOP\r\n")
        assert c.response().startswith(b"* BYE")


def test_rename_inbox_while_selected(facteur):
    """RENAME INBOX with INBOX selected here and in another session: both
    hear EXPUNGEs and keep an empty INBOX with the same UIDVALIDITY; the
    new mailbox holds the messages, flags and dates kept."""
    deliver(facteur, 3)
    with imap(facteur) as c, imap(facteur) as other:
        u = c.ok("SELECT INBOX")
        uv = [r for r in u if b"UIDVALIDITY" in r]
        other.ok("SELECT INBOX")
        c.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
        u, tagged = c.cmd("RENAME INBOX Archive/2024")
        assert tagged.endswith(b"OK RENAME completed"), tagged
        assert u == [b"* 3 EXPUNGE", b"* 2 EXPUNGE", b"* 1 EXPUNGE"], u
        # the other session: EXPUNGEs at its next command, no BYE
        u = other.ok("NOOP")
        assert u == [b"* 3 EXPUNGE", b"* 2 EXPUNGE", b"* 1 EXPUNGE"], u
        assert other.status("FETCH 1 FLAGS")[0] == "BAD"
        assert other.ok("SEARCH ALL") == [b"* SEARCH"]
        u = c.ok("STATUS INBOX (MESSAGES UIDVALIDITY)")
        assert re.search(rb"MESSAGES 0 UIDVALIDITY (\d+)", u[0])
        assert re.search(rb"UIDVALIDITY (\d+)", u[0]).group(1) in uv[0]
        # INBOX goes on receiving mail
        deliver(facteur, 1)
        u = c.ok("NOOP")
        assert b"* 1 EXISTS" in u, u
        assert b"* 1 EXISTS" in other.ok("NOOP")
        c.ok("EXAMINE Archive/2024")
        u = c.ok("FETCH 1:* (FLAGS)")
        assert len(u) == 3 and b"\\Flagged" in u[1], u
        # INBOX cannot be the target, even renaming INBOX
        st, tagged, _ = c.status("RENAME INBOX inbox")
        assert st == "NO" and b"[ALREADYEXISTS]" in tagged
        st, tagged, _ = c.status("RENAME INBOX Archive/2024")
        assert st == "NO" and b"[ALREADYEXISTS]" in tagged
        c.ok("LOGOUT")
        other.ok("LOGOUT")


def test_rename_selected_mailbox(facteur):
    """Renaming the selected mailbox (or a parent of it) keeps it selected
    under its new name, same UIDVALIDITY and UIDs."""
    with imap(facteur) as c:
        c.ok("CREATE top/box")
        data = b"Subject: x\r\n\r\nbody\r\n"
        c.ok(f"APPEND top/box {{{len(data)}}}", data + b"\r\n")
        u = c.ok("SELECT top/box")
        uv = [r for r in u if b"UIDVALIDITY" in r][0]
        c.ok("RENAME top/box top/moved")
        assert c.ok("UID FETCH 1 FLAGS") != []
        c.ok("RENAME top other")
        u = c.ok("STORE 1 +FLAGS (\\Seen)")
        assert b"\\Seen" in u[0]
        u = c.ok("STATUS other/moved (MESSAGES UIDVALIDITY UNSEEN)")
        assert re.search(rb"UIDVALIDITY (\d+)", u[0]).group(1) in uv
        assert b"UNSEEN 0" in u[0]
        u = c.ok("APPEND other/moved {%d}" % len(data), data + b"\r\n")
        assert b"* 2 EXISTS" in u + c.ok("NOOP")
        c.ok("LOGOUT")


def test_list_patterns_and_special_use(shared_facteur):
    with imap(shared_facteur) as c:
        lst = names(c.ok('LIST "" %'))
        assert set(lst) >= {"INBOX", "Sent", "Drafts", "Trash", "Junk",
                            "Archive"}
        assert "\\Sent" in lst["Sent"] and "\\Trash" in lst["Trash"]
        assert names(c.ok('LIST "" inbox')) == {"INBOX": ["\\HasNoChildren"]}
        assert c.ok('LIST "" ""') == [b'* LIST (\\Noselect) "/" ""']
        lst = names(c.ok('LIST (SPECIAL-USE) "" *'))
        assert "INBOX" not in lst and "Sent" in lst
        lst = names(c.ok('LIST "" * RETURN (SPECIAL-USE)'))
        assert "\\Junk" in lst["Junk"]
        c.ok("CREATE a/b/c")
        assert set(names(c.ok('LIST "" a/%'))) == {"a/b"}
        assert set(names(c.ok('LIST "a/" %'))) == {"a/b"}
        assert set(names(c.ok('LIST "" a/*'))) == {"a/b", "a/b/c"}
        assert set(names(c.ok('LIST "" (a Sent)'))) == {"a", "Sent"}
        assert c.status('LIST "" * RETURN (BOGUS)')[0] == "BAD"
        assert c.status('LIST (RECURSIVEMATCH) "" *')[0] == "BAD"


def test_subscribe_lsub_list_subscribed(shared_facteur):
    with imap(shared_facteur, BOB) as c:
        c.ok("CREATE sub/child")
        c.ok("SUBSCRIBE sub/child")
        c.ok("SUBSCRIBE ghost")
        lsub = names(c.ok('LSUB "" *'), "LSUB")
        assert "sub/child" in lsub and "ghost" in lsub
        lsub = names(c.ok('LSUB "" %'), "LSUB")
        assert lsub.get("sub") == ["\\Noselect"]
        lst = names(c.ok('LIST (SUBSCRIBED) "" *'))
        assert "\\Subscribed" in lst["sub/child"]
        assert "\\NonExistent" in lst["ghost"]
        assert "sub" not in lst
        u = c.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" %')
        assert any(b'"CHILDINFO" ("SUBSCRIBED")' in r and b" sub " in r + b" "
                   for r in u), u
        lst = names(c.ok('LIST "" * RETURN (SUBSCRIBED)'))
        assert "\\Subscribed" in lst["sub/child"]
        assert "\\Subscribed" not in lst["sub"]
        c.ok("UNSUBSCRIBE ghost")
        c.ok("UNSUBSCRIBE ghost")
        assert "ghost" not in names(c.ok('LSUB "" *'), "LSUB")


def test_status_and_list_status(facteur):
    deliver(facteur, 2)
    with imap(facteur) as c:
        u = c.ok("STATUS INBOX (MESSAGES UNSEEN UIDNEXT RECENT DELETED "
                 "SIZE)")
        # no session has seen the two yet: they are \Recent to the next
        m = re.match(rb"\* STATUS INBOX \(MESSAGES 2 RECENT 2 UIDNEXT 3 "
                     rb"UNSEEN 2 DELETED 0 SIZE (\d+)\)", u[0])
        assert m, u
        with imap(facteur) as other:
            other.ok("SELECT INBOX")  # claims both
        assert c.ok("STATUS INBOX (RECENT)") == [
            b"* STATUS INBOX (RECENT 0)"]
        assert re.match(rb"\* STATUS INBOX \(UIDVALIDITY \d+\)",
                        c.ok("STATUS INBOX (UIDVALIDITY)")[0])
        assert c.status("STATUS INBOX ()")[0] == "BAD"
        assert c.status("STATUS INBOX (BOGUS)")[0] == "BAD"
        st, tagged, _ = c.status("STATUS nosuch (MESSAGES)")
        assert st == "NO" and b"[NONEXISTENT]" in tagged
        u = c.ok('LIST "" % RETURN (STATUS (MESSAGES UNSEEN))')
        i = u.index(next(r for r in u if r.startswith(b"* LIST")
                         and r.endswith(b" INBOX")))
        assert u[i + 1] == b"* STATUS INBOX (MESSAGES 2 UNSEEN 2)"


def test_namespace(shared_facteur):
    with imap(shared_facteur) as c:
        assert c.ok("NAMESPACE") == [b'* NAMESPACE (("" "/")) NIL NIL']


def test_modified_utf7_and_utf8_accept(shared_facteur):
    with imap(shared_facteur, BOB) as c:
        c.ok('CREATE "Entw&APw-rfe"')
        lst = names(c.ok('LIST "" Entw*'))
        assert list(lst) == ["Entw&APw-rfe"]
        st, tagged, _ = c.status('CREATE "Bad&Jjo"')
        assert st == "NO" and b"[CANNOT]" in tagged
        c.ok("ENABLE UTF8=ACCEPT")
        lst = names(c.ok('LIST "" Entw*'))
        assert list(lst) == ["Entwürfe"]
        c.ok('CREATE "Reçus"'.encode())
        c.ok('DELETE "Entwürfe"'.encode())
    with imap(shared_facteur, BOB) as c:
        lst = names(c.ok('LIST "" *'))
        assert "Re&AOc-us" in lst and "Entw&APw-rfe" not in lst


def test_create_special_use(shared_facteur):
    with imap(shared_facteur, BOB) as c:
        c.ok("CREATE Spam (USE (\\Junk))")
        lst = names(c.ok('LIST "" Spam'))
        assert "\\Junk" in lst["Spam"]
        st, tagged, _ = c.status("CREATE X (USE (\\Bogus))")
        assert st == "NO" and b"[USEATTR]" in tagged
