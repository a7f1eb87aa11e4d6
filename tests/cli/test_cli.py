"""`phimask` as a user runs it: a real subprocess per command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from phimask.cli import main

PHI_LINES = [
    {"patient": {"ssn": "123-45-6789", "mrn": "MRN-00123456", "dob": "04/12/1961",
                 "phone": "(617) 555-0142", "email": "ann.lee@example.org"},
     "msg": "card 4111 1111 1111 1111 on file, SSN 219099999, seen April 12, 1961"},
    {"user": "x", "note": "call +1 212 555 0188 or mail bob@corp.example.com; MRN: 7654321",
     "client_ip": "10.1.2.3", "extra": {"contact": "517-555-0199", "born": "1944-02-29"}},
]
PHI_VALUES = ["123-45-6789", "MRN-00123456", "04/12/1961", "(617) 555-0142", "ann.lee@example.org",
              "4111 1111 1111 1111", "219099999", "April 12, 1961", "+1 212 555 0188",
              "bob@corp.example.com", "7654321", "10.1.2.3", "517-555-0199", "1944-02-29"]


def run(*args: str, stdin: bytes = b"", state: Path) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PHIMASK_STATE_DIR": str(state)}
    return subprocess.run([sys.executable, "-m", "phimask", *args], input=stdin,
                          capture_output=True, env=env, timeout=120, check=False)


def test_mask_ndjson_leaves_no_phi(tmp_path: Path, state_dir: Path) -> None:
    source = tmp_path / "in.ndjson"
    lines = [orjson.dumps(x) for x in PHI_LINES]
    source.write_bytes(b"\n".join([lines[0], b"{broken", b"", lines[1], b"[1]"]) + b"\n")
    result = run("mask", str(source), state=state_dir)
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 3, err
    masked = [orjson.loads(line) for line in out.splitlines()]
    assert len(masked) == 2
    assert masked[0]["patient"]["ssn"] == "[REDACTED:SSN]"
    assert masked[1]["user"] == "x"
    for value in PHI_VALUES:
        assert value not in out
        assert value not in err
    assert "line 2: rejected: invalid_json" in err
    assert "line 5: rejected: not_an_object" in err
    # The default key was created once, private, and reused: masking is deterministic.
    key = state_dir / "keys" / "hmac.local.key"
    assert key.stat().st_mode & 0o777 == 0o600
    again = run("mask", "-", stdin=lines[0] + b"\n", state=state_dir)
    assert again.returncode == 0
    assert orjson.loads(again.stdout) == masked[0]


def test_check_prints_plan(tmp_path: Path, state_dir: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nfields:\n  - {path: patient.ssn, action: redact}\n"
                      "  - {path: patient.phone, action: partial, keep: 2}\n")
    result = run("check", str(policy), state=state_dir)
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert "policy_version:  sha256:" in out
    assert "patient.ssn" in out and "-> redact" in out and "keep=2" in out


def test_check_broken_policy_names_line(tmp_path: Path, state_dir: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nfields:\n  - {path: patient.ssn, action: redact}\n"
                      "  - {path: patient.mrn, action: hash}\n")
    result = run("check", str(policy), state=state_dir)
    assert result.returncode == 1
    assert result.stderr.decode().strip() == (
        f"phimask: error: {policy} line 4: fields[1].action: unknown action 'hash' "
        "(known: redact, hmac, partial, generalize, zip3, fpe, tokenize, drop, keep, scan)")


@pytest.mark.parametrize("args", [["--help"], ["serve", "--help"], ["mask", "--help"]])
def test_help_teaches(args: list[str], state_dir: Path) -> None:
    result = run(*args, state=state_dir)
    assert result.returncode == 0
    out = result.stdout.decode()
    assert "phimask" in out
    if args[0] == "serve":
        assert "PHIMASK_LISTEN" in out and "--workers" in out


def test_version_and_bad_setting(state_dir: Path) -> None:
    assert run("--version", state=state_dir).stdout.decode().startswith("phimask ")
    bad = run("serve", "--listen", "nowhere", state=state_dir)
    assert bad.returncode == 1
    assert "flag --listen" in bad.stderr.decode()


def test_keys_generate_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keydir = tmp_path / "keys"
    assert main(["keys", "generate", "--purpose", "hmac", "--dir", str(keydir),
                 "--kid", "k1"]) == 0
    assert main(["keys", "generate", "--purpose", "sign", "--dir", str(keydir),
                 "--kid", "s1"]) == 0
    out = capsys.readouterr().out
    assert str(keydir / "hmac.k1.key") in out and "BEGIN PUBLIC KEY" in out
    assert "PRIVATE" not in out
    assert main(["keys", "list", "--dir", str(keydir)]) == 0
    listing = capsys.readouterr().out
    assert "hmac            active k1" in listing
    assert (keydir / "hmac.k1.key").read_text().strip() not in listing
    assert main(["keys", "generate", "--purpose", "hmac", "--dir", str(keydir),
                 "--kid", "k1"]) == 1
    assert "never overwritten" in capsys.readouterr().err


def test_serve_refuses_a_missing_key_naming_purpose_and_path(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keydir = tmp_path / "keys"
    keydir.mkdir()
    assert main(["mask", "--keys-dir", str(keydir), "--state-dir", str(tmp_path / "s"),
                 str(tmp_path / "none.ndjson")]) == 1
    err = capsys.readouterr().err
    assert f"no hmac key: expected {keydir}/hmac.<kid>.key" in err


def test_access_hash_token_reads_stdin(state_dir: Path) -> None:
    import hashlib

    done = run("access", "hash-token", stdin=b"s3cret-token\n", state=state_dir)
    assert done.returncode == 0
    assert done.stdout.decode().strip() == hashlib.sha256(b"s3cret-token").hexdigest()
    assert run("access", "hash-token", stdin=b"", state=state_dir).returncode == 1


def test_keyed_hashes_name_their_key_and_change_with_a_rotation(tmp_path: Path) -> None:
    keydir = tmp_path / "keys"
    line = b'{"patient": {"mrn": "MRN-00123456"}}\n'
    assert main(["keys", "generate", "--purpose", "hmac", "--dir", str(keydir),
                 "--kid", "k1"]) == 0
    before = run("mask", "--keys-dir", str(keydir), stdin=line, state=tmp_path / "s")
    assert main(["keys", "generate", "--purpose", "hmac", "--dir", str(keydir),
                 "--kid", "k2"]) == 0
    after = run("mask", "--keys-dir", str(keydir), stdin=line, state=tmp_path / "s")
    old, new = (orjson.loads(r.stdout)["patient"]["mrn"] for r in (before, after))
    assert old.startswith("hmac:k1:") and new.startswith("hmac:k2:")
