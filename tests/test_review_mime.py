"""
Review of the INTERNALDATE zone, BINARY streaming and BINARYMIME
conversion work: edge cases as black-box tests (APPEND date-times at the
extremes of the zones and of time, message files whose metadata line is
long, BINARY of message/rfc822 and nested parts).
"""
import base64
import re
from pathlib import Path

from conftest import ALICE
from test_imap_util import imap, parse_fetch


def utf7(name):
    """IMAP modified UTF-7 (RFC 3501 §5.1.3) of `name`."""
    out, run = [], ""

    def flush():
        if run:
            b = base64.b64encode(run.encode("utf-16-be")).decode()
            out.append("&" + b.rstrip("=").replace("/", ",") + "-")
    for ch in name:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            run = ""
            out.append("&-" if ch == "&" else ch)
        else:
            run += ch
    flush()
    return "".join(out)


def fetch_items(c, what, seq=1):
    untagged = c.ok(f"FETCH {seq} {what}")
    fetches = [parse_fetch(r)[1] for r in untagged
               if re.match(rb"\* \d+ FETCH", r)]
    assert len(fetches) == 1, untagged
    return fetches[0]


MSG = b"From: <a@remote.test>\r\nSubject: x\r\n\r\nhello\r\n"


def test_message_in_mailbox_with_long_encoded_name(make_facteur):
    """A mailbox name of 1000 bytes (the limit) whose every byte is
    percent-encoded in the message file's metadata line: the message is
    stored and read back."""
    f = make_facteur()
    name = "\u00e9" * 500
    with imap(f) as c:
        c.ok(f'CREATE "{utf7(name)}"')
        c.ok(f'APPEND "{utf7(name)}" {{{len(MSG)}}}', MSG + b"\r\n")
        c.ok(f'SELECT "{utf7(name)}"')
        it = fetch_items(c, "BODY.PEEK[]")
        assert it["BODY[]"] == MSG
