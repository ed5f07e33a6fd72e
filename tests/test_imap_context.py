"""
CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4): RETURN (PARTIAL lo:hi) for
SEARCH and SORT; RETURN (UPDATE) keeps the result up to date with
unsolicited ESEARCH responses (ADDTO, REMOVEFROM) as another session
appends, changes flags and expunges: REMOVEFROM before the EXPUNGE,
ADDTO after the EXISTS, positions that rebuild the SORT order when
applied in order; during IDLE too; CANCELUPDATE; tag reuse (BAD); NOUPDATE
past the limit or for keys that cannot be followed; contexts end with
the mailbox.
"""
import re

import pytest

from test_imap_util import imap


def msg(subject, size=0):
    return (f"From: a@remote.test\r\nTo: alice@example.test\r\n"
            f"Subject: {subject}\r\n\r\nbody {subject}\r\n"
            + "x" * size).encode()


def append(c, box, subject, flags="()", size=0):
    data = msg(subject, size)
    c.ok(f"APPEND {box} {flags} {{{len(data)}}}", data + b"\r\n")


ESEARCH = re.compile(rb'^\* ESEARCH \(TAG "([^"]+)"\)( UID)?(.*)$')


def esearch(lines, tag):
    """The ESEARCH responses of `tag` among untagged lines: the text after
    the correlator (and UID)."""
    out = []
    for ln in lines:
        m = ESEARCH.match(ln)
        if m and m.group(1) == tag.encode():
            out.append(m.group(3).decode().strip())
    return out


def expand(text):
    """'3:5,7' -> [3, 4, 5, 7] (a range lo:hi in increasing order)."""
    out = []
    for part in text.split(","):
        if ":" in part:
            a, b = sorted(int(x) for x in part.split(":"))
            out += list(range(a, b + 1))
        else:
            out.append(int(part))
    return out


def items(text):
    """'REMOVEFROM (0 3) ADDTO (2 7 5 9:10)' ->
    [('REMOVEFROM', [(0, [3])]), ('ADDTO', [(2, [7]), (5, [9, 10])])]"""
    out = []
    for name, body in re.findall(r"(ADDTO|REMOVEFROM) \(([^)]*)\)", text):
        w = body.split()
        out.append((name, [(int(w[i]), expand(w[i + 1]))
                           for i in range(0, len(w), 2)]))
    return out


def apply(result, text, ordered):
    """Applies ADDTO/REMOVEFROM to a client-side result, in order, as
    RFC 5267 §4.3.3/§4.3.4 say."""
    result = list(result)
    for name, pairs in items(text):
        for pos, vals in pairs:
            if name == "REMOVEFROM":
                if pos == 0:
                    result = [x for x in result if x not in vals]
                else:
                    assert result[pos - 1:pos - 1 + len(vals)] == vals, \
                        (result, pos, vals)
                    del result[pos - 1:pos - 1 + len(vals)]
            else:
                if pos == 0:
                    result = sorted(set(result) | set(vals))
                else:
                    result[pos - 1:pos - 1] = vals
    if not ordered:
        assert result == sorted(result)
    return result


def last(c):
    """The tag of the last command sent on `c`."""
    return f"a{c.n}"


@pytest.fixture
def two(make_facteur):
    f = make_facteur()
    a = imap(f)
    b = imap(f)
    yield f, a, b
    a.close()
    b.close()


def test_capability_and_partial(two):
    f, a, b = two
    caps = a.ok("CAPABILITY")[0]
    assert b" CONTEXT=SEARCH" in caps and b" CONTEXT=SORT" in caps
    a.ok("CREATE P")
    for i, subj in enumerate(["d", "b", "e", "a", "c"]):
        append(a, "P", subj, "(\\Seen)" if i == 2 else "()")
    a.ok("SELECT P")
    assert esearch(a.ok("SEARCH RETURN (PARTIAL 1:2) ALL"),
                   last(a)) == ["PARTIAL (1:2 1:2)"]
    assert esearch(a.ok("SEARCH RETURN (PARTIAL 4:10) ALL"),
                   last(a)) == ["PARTIAL (4:10 4:5)"]
    assert esearch(a.ok("UID SEARCH RETURN (PARTIAL 3:2 COUNT) UNSEEN"),
                   last(a)) == ["PARTIAL (2:3 2,4) COUNT 4"]
    assert esearch(a.ok("SEARCH RETURN (PARTIAL 9:20) ALL"),
                   last(a)) == ["PARTIAL (9:20 NIL)"]
    assert esearch(a.ok("SEARCH RETURN (CONTEXT MIN) ALL"),
                   last(a)) == ["MIN 1"]
    # SORT: the window is of the sorted result (a b c d e = 4 2 5 1 3)
    assert esearch(a.ok("SORT RETURN (PARTIAL 2:4) (SUBJECT) UTF-8 ALL"),
                   last(a)) == ["PARTIAL (2:4 2,5,1)"]
    for bad in ("(PARTIAL 1:2 ALL)", "(PARTIAL 0:2)", "(PARTIAL 1:*)",
                "(PARTIAL)", "(PARTIAL 1:2 PARTIAL 3:4)",
                "(UPDATE UPDATE)"):
        st, tagged, _ = a.status(f"SEARCH RETURN {bad} ALL")
        assert st == "BAD", (bad, tagged)


@pytest.mark.parametrize("uid", [True, False])
def test_search_update(two, uid):
    """ADDTO after EXISTS, REMOVEFROM for a flag change, REMOVEFROM before
    the EXPUNGE; message numbers for SEARCH, UIDs for UID SEARCH."""
    f, a, b = two
    pre = "UID " if uid else ""
    a.ok("CREATE U")
    for i in range(4):
        append(a, "U", f"m{i}", "(\\Seen)" if i == 1 else "()")
    a.ok("SELECT U")
    b.ok("SELECT U")
    u = a.ok(f"{pre}SEARCH RETURN (UPDATE ALL) UNSEEN")
    tag = last(a)
    assert esearch(u, tag) == ["ALL 1,3:4"]
    result = [1, 3, 4]
    # another session appends an unseen and a seen message
    append(b, "U", "m4")
    append(b, "U", "m5", "(\\Seen)")
    u = a.ok("NOOP")
    assert b"* 6 EXISTS" in u
    i_exists = u.index(b"* 6 EXISTS")
    ups = [i for i, ln in enumerate(u) if ln.startswith(b"* ESEARCH")]
    assert len(ups) == 1 and ups[0] > i_exists, u
    assert esearch(u, tag) == ["ADDTO (0 5)"]
    result = apply(result, esearch(u, tag)[0], False)
    assert result == [1, 3, 4, 5]
    # \Seen set on 3, \Seen taken from 2: one response, both changes
    b.ok("STORE 3 +FLAGS (\\Seen)")
    b.ok("STORE 2 -FLAGS (\\Seen)")
    u = a.ok("NOOP")
    text = esearch(u, tag)
    assert text == ["REMOVEFROM (0 3) ADDTO (0 2)"], u
    result = apply(result, text[0], False)
    assert result == [1, 2, 4, 5]
    # expunge 4 (in the result) and 6 (not in it): REMOVEFROM before the
    # EXPUNGE, with the number it had
    b.ok("STORE 4,6 +FLAGS (\\Deleted)")
    b.ok("EXPUNGE")
    u = a.ok("NOOP")
    text = esearch(u, tag)
    assert text == ["REMOVEFROM (0 4)"], u
    assert u.index(next(ln for ln in u if ln.startswith(b"* ESEARCH"))) < \
        u.index(b"* 4 EXPUNGE"), u
    result = apply(result, text[0], False)
    assert result == [1, 2, 5]
    # renumbered by the EXPUNGEs: 5 is now 4
    result = [x - (x > 4) for x in result]
    got = a.ok("SEARCH UNSEEN")[0]
    want = [a_ for a_ in result]
    if uid:
        # UIDs do not move: 1, 2, 5 stay
        assert got == b"* SEARCH 1 2 4"
    else:
        assert got == ("* SEARCH " + " ".join(map(str, want))).encode()
    # nothing changed: nothing said
    assert esearch(a.ok("NOOP"), tag) == []
    # CANCELUPDATE: no more updates
    a.ok(f'CANCELUPDATE "{tag}"')
    append(b, "U", "m6")
    assert esearch(a.ok("NOOP"), tag) == []
    st, tagged, _ = a.status(f'CANCELUPDATE "{tag}"')
    assert st == "BAD", tagged


@pytest.mark.parametrize("uid", [True, False])
def test_sort_update_positions(two, uid):
    """A SORT context: applying ADDTO and REMOVEFROM in order, with their
    positions, gives what a new SORT gives, whatever changed; with
    message numbers, the client renumbers at each EXPUNGE, which never
    names a message still in its result (REMOVEFROM came first)."""
    f, a, b = two
    pre = "UID " if uid else ""
    a.ok("CREATE S")
    for subj in ["m", "c", "x", "f"]:
        append(a, "S", subj)
    a.ok("SELECT S")
    b.ok("SELECT S")
    u = a.ok(f"{pre}SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 UNDELETED")
    tag = last(a)
    result = expand(esearch(u, tag)[0].split()[1])
    assert result == [2, 4, 1, 3]

    def check():
        nonlocal result
        u = a.ok("NOOP")
        for ln in u:
            m = re.match(rb"\* (\d+) EXPUNGE$", ln)
            if m and not uid:
                n = int(m.group(1))
                assert n not in result, (u, result)
                result = [x - (x > n) for x in result]
            elif esearch([ln], tag):
                result = apply(result, esearch([ln], tag)[0], True)
        fresh = a.ok(f"{pre}SORT (SUBJECT) UTF-8 UNDELETED")[0]
        assert fresh == ("* SORT " + " ".join(map(str, result))).encode(), \
            (u, fresh)

    for subj in ["a", "g", "z", "d"]:
        append(b, "S", subj)
    check()
    b.ok("STORE 2,5,8 +FLAGS (\\Deleted)")  # c, a, d
    check()
    b.ok("STORE 5 -FLAGS (\\Deleted)")  # a again
    check()
    b.ok("UID EXPUNGE 2:3")  # c (deleted), x is not deleted: stays
    check()
    b.ok("EXPUNGE")  # d
    check()
    assert result == ([5, 4, 6, 1, 3, 7] if uid else [4, 3, 5, 1, 2, 6])


def test_update_during_idle(two):
    f, a, b = two
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    u = a.ok("UID SEARCH RETURN (UPDATE COUNT) SUBJECT hello")
    tag = last(a)
    assert esearch(u, tag) == ["COUNT 0"]
    a.send("i1 IDLE\r\n")
    assert a.response().startswith(b"+")
    append(b, "INBOX", "hello there")
    lines = [a.response() for _ in range(3)]
    assert lines[0] == b"* 1 EXISTS", lines
    assert esearch(lines, tag) == ["ADDTO (0 1)"], lines
    # the store handle is given back after each notification in IDLE:
    # the next one opens it again
    append(b, "INBOX", "not this one")
    append(b, "INBOX", "hello again")
    lines = []
    while len(esearch(lines, tag)) < 1:
        lines.append(a.response())
    assert esearch(lines, tag) == ["ADDTO (0 3)"], lines
    assert b"* 3 EXISTS" in lines
    a.send("DONE\r\n")
    assert a.response().startswith(b"i1 OK")


def test_refusals_and_lifetime(two):
    f, a, b = two
    a.ok("CREATE L")
    append(a, "L", "one")
    a.ok("SELECT L")
    # message numbers, "$", OLDER/YOUNGER cannot be followed: NOUPDATE,
    # the other options still answered
    for keys in ("1:*", "$", "OLDER 10", "NOT YOUNGER 5"):
        u = a.ok(f"SEARCH RETURN (UPDATE COUNT) {keys}")
        tag = last(a)
        assert u[0] == f'* NO [NOUPDATE "{tag}"] Message numbers, $, ' \
            'OLDER and YOUNGER cannot be kept up to date'.encode(), u
        assert esearch(u, tag)[0].startswith("COUNT"), u
    tags = []
    for i in range(8):
        a.ok("SEARCH RETURN (UPDATE) ALL")
        tags.append(last(a))
    u = a.ok("SEARCH RETURN (UPDATE COUNT) ALL")
    tag = last(a)
    assert u[0] == f'* NO [NOUPDATE "{tag}"] Too many update ' \
        'contexts'.encode(), u
    assert esearch(u, tag) == ["COUNT 1"]
    # a tag in use by a context: BAD
    a.send(f"{tags[0]} SEARCH RETURN (UPDATE) ALL\r\n")
    r = a.response()
    assert r.startswith(f"{tags[0]} BAD".encode()), r
    # one freed, one more allowed
    a.ok(f'CANCELUPDATE "{tags[0]}" {tags[1]}')
    u = a.ok("SEARCH RETURN (UPDATE) ALL")
    assert not any(b"NOUPDATE" in ln for ln in u), u
    # the contexts go with the mailbox
    a.ok("UNSELECT")
    a.ok("SELECT L")
    st, tagged, _ = a.status(f'CANCELUPDATE "{tags[2]}"')
    assert st == "BAD", tagged
    append(b, "L", "two")
    u = a.ok("NOOP")
    assert not any(ln.startswith(b"* ESEARCH") for ln in u), u
    st, tagged, _ = a.status("CANCELUPDATE")
    assert st == "BAD", tagged
