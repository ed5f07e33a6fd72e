"""
Conformance transcripts: tests/data/*.smtp, one SMTP session each, played
against a running facteur. The format (see tests/README.md):

    # comment                 ignored, as are blank lines
    !port submission          the service to connect to (default smtp);
                              must come before the first C:/S: line
    C: text                   send text + CRLF
    R: text                   send raw bytes; Python escapes allowed
                              (\\r \\n \\x00 ...), no CRLF added
    S: pattern                the next reply line must match
    S~ pattern                (a group of S~/S! lines) the next whole
    S! pattern                reply has a line matching each S~ pattern
                              and none matching an S! pattern
    !starttls                 STARTTLS, 220, then the TLS handshake
    !eof                      the server closes the connection

Consecutive C:/R: lines go out in one write (pipelining). Patterns match a
whole line; '*' stands for any text and '?' for one character.
"""
import codecs
import re

import pytest

from conftest import DATA_DIR, SMTPConn

TRANSCRIPTS = sorted(DATA_DIR.glob("*.smtp"))


def glob_re(pattern):
    out = ""
    for ch in pattern:
        out += ".*" if ch == "*" else "." if ch == "?" else re.escape(ch)
    return re.compile(out + r"\Z", re.S)


def parse(path):
    steps, port, group = [], "smtp", None
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(),
                            1):
        line = raw.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            group = None
            continue
        where = f"{path.name}:{n}"
        if line.startswith("!port "):
            assert not steps, f"{where}: !port after the first step"
            port = line.split(None, 1)[1].strip()
            continue
        kind, text = line[:2], line[3:] if len(line) > 2 else ""
        if line in ("!starttls", "!eof"):
            steps.append((line, None, where))
            group = None
        elif kind == "C:":
            steps.append(("send", (text + "\r\n").encode("utf-8"), where))
            group = None
        elif kind == "R:":
            data = codecs.escape_decode(text.encode("utf-8"))[0]
            steps.append(("send", data, where))
            group = None
        elif kind == "S:":
            steps.append(("line", glob_re(text), where))
            group = None
        elif kind in ("S~", "S!"):
            if group is None:
                group = ([], [], where)
                steps.append(("reply", group, where))
            (group[0] if kind == "S~" else group[1]).append(
                (text, glob_re(text)))
        else:
            raise AssertionError(f"{where}: cannot parse {line!r}")
    return port, steps


def run(conn, steps):
    pending = b""
    for kind, arg, where in steps:
        if kind == "send":
            pending += arg
            continue
        if pending:
            conn.send(pending)
            pending = b""
        try:
            if kind == "line":
                got = conn.readline().decode("utf-8", "replace")
                assert arg.match(got), \
                    f"{where}: expected {arg.pattern!r}, got {got!r}"
            elif kind == "reply":
                must, mustnot, _ = arg
                reply = conn.reply()
                for text, rx in must:
                    assert any(rx.match(ln) for ln in reply.lines), \
                        f"{where}: no line like {text!r} in {reply.lines!r}"
                for text, rx in mustnot:
                    assert not any(rx.match(ln) for ln in reply.lines), \
                        f"{where}: a line like {text!r} in {reply.lines!r}"
            elif kind == "!starttls":
                conn.starttls()
            elif kind == "!eof":
                rest = conn.expect_eof()
                assert rest == b"", f"{where}: before closing got {rest!r}"
        except EOFError:
            raise AssertionError(f"{where}: the server closed the "
                                 "connection")
    if pending:
        conn.send(pending)


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=[p.stem for p in
                                                   TRANSCRIPTS])
def test_transcript(shared_facteur, path):
    port, steps = parse(path)
    conn = SMTPConn(shared_facteur.ports[port], tls=port == "submissions",
                    greeting=False)
    with conn:
        run(conn, steps)


def test_transcripts_exist():
    assert len(TRANSCRIPTS) >= 5, TRANSCRIPTS
