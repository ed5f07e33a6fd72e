"""
The command line: `config check` refuses a bad file with "file:line:
reason"; every administration subcommand gives one line on standard error
and a non-zero exit on bad input, and changes nothing then; passwords are
stored hashed; a running server sees the changes at once.
"""
import re
import subprocess

import pytest

from conftest import (ALICE, BOB, FACTEUR_BIN, PASSWORDS, T, expect,
                      expect_queued, make_message, send_message)


def one_line_error(r, what):
    assert r.returncode != 0, f"{what}: exit 0, stdout {r.stdout!r}"
    err = r.stderr.strip("\n")
    assert err and "\n" not in err, \
        f"{what}: expected one line on stderr, got {r.stderr!r}"
    assert r.stdout == "", f"{what}: stdout {r.stdout!r}"
    return err


@pytest.fixture
def offline(make_facteur):
    """A data directory with domain example.test and users alice and bob,
    no server running."""
    return make_facteur(start=False)


def test_config_check_ok(offline):
    r = offline.cli("config", "check")
    assert r.returncode == 0
    assert "ok" in r.stdout


BAD_CONFIGS = [
    # (lines after data_dir/run_user, index of the bad one, words)
    (["hostname = a.test", "bogus_key = 1"], 1, "bogus_key"),
    (["", "# a comment", "smtp_max_message_size = lots"], 2,
     "smtp_max_message_size"),
    (["hostname"], 0, "key = value"),
    (["log_level = info", "log_level = debug"], 1, "log_level"),
    (["smtp_max_line = 100"], 0, "smtp_max_line"),
    (["smtp_listen = localhost:25"], 0, "smtp_listen"),
    (["tls_self_signed = maybe"], 0, "tls_self_signed"),
    (["auth_failure_delay = 2 parsecs"], 0, "auth_failure_delay"),
    (["io_threads = -1"], 0, "io_threads"),
    (["smtp_listen = 127.0.0.1:99999"], 0, "smtp_listen"),
]


@pytest.mark.parametrize("lines,bad,word", BAD_CONFIGS,
                         ids=[c[2] + str(i) for i, c in
                              enumerate(BAD_CONFIGS)])
def test_config_check_reports_file_and_line(tmp_path, lines, bad, word):
    conf = tmp_path / "bad.conf"
    head = [f"data_dir = {tmp_path / 'data'}", "run_user ="]
    conf.write_text("\n".join(head + lines) + "\n")
    lineno = len(head) + bad + 1
    for args in (["config", "check"], ["serve"]):
        r = subprocess.run([FACTEUR_BIN, "-c", str(conf), *args],
                           capture_output=True, text=True, timeout=T(30))
        err = one_line_error(r, " ".join(args))
        assert f"{conf}:{lineno}: " in err, err
        assert word in err, err


def test_config_whole_file_errors(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text(f"data_dir = {tmp_path}\nrun_user =\n"
                    "tls_cert = cert.pem\n")
    r = subprocess.run([FACTEUR_BIN, "-c", str(conf), "config", "check"],
                       capture_output=True, text=True, timeout=T(30))
    err = one_line_error(r, "tls_cert without tls_key")
    assert str(conf) in err and "tls_key" in err, err
    missing = tmp_path / "missing.conf"
    r = subprocess.run([FACTEUR_BIN, "-c", str(missing), "config", "check"],
                       capture_output=True, text=True, timeout=T(30))
    err = one_line_error(r, "missing file")
    assert str(missing) in err, err


CLI_ERRORS = [
    (["user", "add", "not-an-address"], "x\n"),
    (["user", "add", "carol@unknown.test"], "x\n"),
    (["user", "add", ALICE], "x\n"),
    (["user", "add", "carol@example.test"], "\n"),
    (["user", "add", "carol@example.test"], ""),
    (["user", "add", "a b@example.test"], "x\n"),
    (["user", "del", "nobody@example.test"], None),
    (["user", "passwd", "nobody@example.test"], "x\n"),
    (["user", "add"], "x\n"),
    (["domain", "add", "bad domain!"], None),
    (["domain", "add", "example.test"], None),
    (["domain", "add", "-x.test"], None),
    (["domain", "del", "example.test"], None),
    (["domain", "del", "unknown.test"], None),
    (["alias", "add", "@unknown.test", ALICE], None),
    (["alias", "add", "x@unknown.test", ALICE], None),
    (["alias", "add", "x@example.test", "not an address"], None),
    (["alias", "del", "nothere@example.test"], None),
    (["frobnicate"], None),
    (["user", "frobnicate", ALICE], None),
]


@pytest.mark.parametrize("args,stdin", CLI_ERRORS,
                         ids=["-".join(a[0])[:40] + str(i) for i, a in
                              enumerate(CLI_ERRORS)])
def test_cli_errors_one_line_nonzero(offline, args, stdin):
    before = (offline.cli("user", "list").stdout,
              offline.cli("domain", "list").stdout,
              offline.cli("alias", "list").stdout)
    r = offline.cli(*args, input=stdin if stdin is not None else "",
                    check=False)
    one_line_error(r, " ".join(args))
    after = (offline.cli("user", "list").stdout,
             offline.cli("domain", "list").stdout,
             offline.cli("alias", "list").stdout)
    assert after == before


def test_lists(offline):
    assert offline.cli("domain", "list").stdout.split() == ["example.test"]
    assert offline.cli("user", "list").stdout.split() == [ALICE, BOB]
    assert offline.cli("user", "list", "example.test").stdout.split() == \
        [ALICE, BOB]
    offline.cli("domain", "add", "Other.TEST")
    assert offline.cli("domain", "list").stdout.split() == \
        ["example.test", "other.test"]
    assert offline.cli("user", "list", "other.test").stdout.split() == []


def test_passwords_are_stored_hashed(offline):
    data = (offline.data_dir / "accounts.db").read_bytes()
    for wal in offline.data_dir.glob("accounts.db-wal"):
        data += wal.read_bytes()
    for password in PASSWORDS.values():
        assert password.encode() not in data
    assert len(re.findall(rb"\$y\$", data)) >= 2, "no yescrypt hash found"


def test_running_server_sees_cli_changes(facteur):
    f = facteur
    carol = "carol@example.test"
    with f.smtp() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<x@remote.test>"), 250)
        expect(c.cmd(f"RCPT TO:<{carol}>"), 550, "5.1.1")
        f.cli("user", "add", carol, input="carol-pass-1\n")
        expect(c.cmd(f"RCPT TO:<{carol}>"), 250)
        msg = make_message("x@remote.test", carol)
        expect(c.cmd("DATA"), 354)
        c.send(msg + b".\r\n")
        expect_queued(c.reply())
    assert len(f.wait_messages(carol, 1)) == 1
    # a new password takes effect, the old one no longer works
    f.cli("user", "passwd", carol, input="carol-pass-2\n")
    with f.submission(carol, "carol-pass-2") as c:
        pass
    with f.smtp("submissions") as c:
        c.ehlo()
        expect(c.auth_plain(carol, "carol-pass-1"), 535, "5.7.8")
    # a deleted user is unknown at once, and his mail is gone
    f.cli("user", "del", carol)
    assert carol not in f.cli("user", "list").stdout
    assert not (f.data_dir / "mail" / carol).exists()
    with f.smtp() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<x@remote.test>"), 250)
        expect(c.cmd(f"RCPT TO:<{carol}>"), 550, "5.1.1")
    # alias del
    f.cli("alias", "add", "list@example.test", ALICE)
    f.cli("alias", "add", "list@example.test", BOB)
    f.cli("alias", "del", "list@example.test", BOB)
    msg = make_message("x@remote.test", "list@example.test")
    with f.smtp() as c:
        c.ehlo()
        expect_queued(send_message(c, "x@remote.test", "list@example.test",
                                   msg))
    assert len(f.wait_messages(ALICE, 1)) == 1
    assert f.mailbox(BOB) == []
    f.cli("alias", "del", "list@example.test")
    with f.smtp() as c:
        c.ehlo()
        expect(c.cmd("MAIL FROM:<x@remote.test>"), 250)
        expect(c.cmd("RCPT TO:<list@example.test>"), 550, "5.1.1")
