"""etc/facteur.conf is the configuration reference: it must name every key
the program knows, with the program's own default, and load as it is; the
development configuration must load too."""
import re
import subprocess

from conftest import FACTEUR_BIN, TESTS_DIR

ROOT = TESTS_DIR.parent


def keys_of(text):
    """key -> value of every `key = value` line of a configuration text."""
    out = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([a-z0-9_]+)\s*=\s*(.*)", line)
        assert m, f"not a key = value line: {line!r}"
        out[m.group(1)] = m.group(2).strip()
    return out


def test_reference_documents_every_key_with_its_default():
    r = subprocess.run([FACTEUR_BIN, "-c", str(ROOT / "etc/facteur.conf"),
                        "config", "defaults"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    program = keys_of(r.stdout)
    reference_text = (ROOT / "etc/facteur.conf").read_text()
    reference = keys_of(reference_text)
    assert len(program) > 20
    missing = sorted(set(program) - set(reference))
    unknown = sorted(set(reference) - set(program))
    assert not missing, f"keys missing from etc/facteur.conf: {missing}"
    assert not unknown, f"keys unknown to the program: {unknown}"
    for key, default in program.items():
        assert reference[key] == default, (
            f"{key}: reference says {reference[key]!r}, program {default!r}")
    # Every key carries a comment line right above it.
    lines = reference_text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"[a-z0-9_]+\s*=", line):
            assert i > 0 and lines[i - 1].startswith("# "), (
                f"{line.split('=')[0].strip()} has no documentation line")


def test_reference_and_dev_configurations_load():
    for name in ("facteur.conf", "dev.conf"):
        r = subprocess.run([FACTEUR_BIN, "-c", str(ROOT / "etc" / name),
                            "config", "check"], capture_output=True,
                           text=True)
        assert r.returncode == 0, f"{name}: {r.stderr}"
        assert r.stdout.strip().endswith(": ok")
