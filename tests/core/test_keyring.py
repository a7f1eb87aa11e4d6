"""The keyring: files per key, one purpose each, rotation, env, and the errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from phimask.keyring import (
    PURPOSES,
    KeyLoadError,
    Keyring,
    create_key_file,
    env_name,
    public_key_pem,
)


def test_generate_writes_private_hex_files_and_activates(tmp_path: Path) -> None:
    first = create_key_file(tmp_path, "hmac", kid="20260101000000")
    second = create_key_file(tmp_path, "hmac", kid="20260102000000")
    for path in (first, second):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert len(bytes.fromhex(path.read_text().strip())) == 32
    keys = Keyring.load(tmp_path, env={})
    assert keys.active("hmac").kid == "20260102000000"
    assert keys.get("hmac", "20260101000000") is not None  # kept for rotation
    assert keys.active("hmac").material != keys.get("hmac", "20260101000000").material  # type: ignore[union-attr]


def test_active_pointer_wins_over_newest(tmp_path: Path) -> None:
    create_key_file(tmp_path, "vault", kid="a1")
    create_key_file(tmp_path, "vault", kid="b2", activate=False)
    assert Keyring.load(tmp_path, env={}).active("vault").kid == "a1"
    (tmp_path / "vault.active").write_text("zz\n")
    with pytest.raises(KeyLoadError, match=r"vault\.active names key id 'zz'"):
        Keyring.load(tmp_path, env={})


def test_without_pointer_the_greatest_kid_is_active(tmp_path: Path) -> None:
    create_key_file(tmp_path, "fpe", kid="20250101000000", activate=False)
    create_key_file(tmp_path, "fpe", kid="20260101000000", activate=False)
    assert Keyring.load(tmp_path, env={}).active("fpe").kid == "20260101000000"


def test_never_overwrites_a_key(tmp_path: Path) -> None:
    path = create_key_file(tmp_path, "hmac", kid="k1")
    before = path.read_bytes()
    with pytest.raises(KeyLoadError, match="never overwritten"):
        create_key_file(tmp_path, "hmac", kid="k1")
    assert path.read_bytes() == before


@pytest.mark.parametrize(("name", "content", "message"), [
    ("hmac.k1.key", "abcd", "hmac key .*hmac.k1.key: 2 bytes is shorter than 32"),
    ("vault.k1.key", "ab" * 16, "vault key .*: 16 bytes; must be 32 bytes"),
    ("fpe.k1.key", "ab" * 20, "fpe key .*: 20 bytes; must be 16 or 24 or 32"),
    ("hmac.k1.key", "not hex at all, a secret", "hmac key .*: not hex text"),
    ("sign.k1.key", "-----BEGIN PRIVATE KEY-----\nxx\n", "not an Ed25519 private key"),
    ("verify-ed25519.k1.key", "ab" * 8, "must be PEM or 32 bytes of hex"),
    ("hmac.bad kid.key", "ab" * 32, "key id 'bad kid'"),
    ("hmax.k1.key", "ab" * 32, "unknown key purpose 'hmax'"),
])
def test_bad_key_files_name_purpose_and_path_not_the_key(
        tmp_path: Path, name: str, content: str, message: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(KeyLoadError, match=message) as info:
        Keyring.load(tmp_path, env={})
    assert "secret" not in str(info.value) and content not in str(info.value)


def test_unreadable_key_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "hmac.k1.key").mkdir()  # unreadable as a file, even for root
    with pytest.raises(KeyLoadError, match=r"hmac key .*hmac\.k1\.key: Is a directory"):
        Keyring.load(tmp_path, env={})


def test_missing_key_in_configured_directory_refuses(tmp_path: Path) -> None:
    keys = Keyring.load(tmp_path, env={}, create_missing=True)  # configured: never creates
    with pytest.raises(KeyLoadError, match=r"no hmac key: expected .*/hmac\.<kid>\.key or "
                       r"PHIMASK_KEY_HMAC.*phimask keys generate --purpose hmac"):
        keys.active("hmac")
    assert not list(tmp_path.iterdir())
    with pytest.raises(KeyLoadError, match="does not exist"):
        Keyring.load(tmp_path / "nope", env={})


def test_local_keys_are_made_once_and_shared(tmp_path: Path) -> None:
    local = tmp_path / "state" / "keys"
    one = Keyring.load(None, env={}, local_dir=local, create_missing=True).active("hmac")
    two = Keyring.load(None, env={}, local_dir=local, create_missing=True).active("hmac")
    assert one.material == two.material and one.kid == "local"
    assert stat.S_IMODE((local / "hmac.local.key").stat().st_mode) == 0o600
    # Verification keys are never invented: they come from whoever signs.
    with pytest.raises(KeyLoadError, match="no verify-hmac key"):
        Keyring.load(None, env={}, local_dir=local, create_missing=True).active("verify-hmac")


def test_env_replaces_a_purpose(tmp_path: Path) -> None:
    create_key_file(tmp_path, "hmac", kid="file")
    env = {env_name("hmac"): f"new:{'11' * 32},old:{'22' * 32}",
           env_name("vault-index"): f"v1:{'33' * 32}"}
    keys = Keyring.load(tmp_path, env=env)
    assert keys.active("hmac").kid == "new" and keys.get("hmac", "old") is not None
    assert keys.get("hmac", "file") is None
    assert keys.active("vault-index").material == bytes.fromhex("33" * 32)
    with pytest.raises(KeyLoadError, match="PHIMASK_KEY_HMAC: entry 1 must be kid:hex"):
        Keyring.load(tmp_path, env={"PHIMASK_KEY_HMAC": "ab" * 32})


def test_sign_key_and_its_public_half(tmp_path: Path) -> None:
    create_key_file(tmp_path, "sign", kid="s1")
    keys = Keyring.load(tmp_path, env={})
    signature = keys.active("sign").ed25519_private().sign(b"batch")
    public = tmp_path / "peer"
    public.mkdir()
    (public / "verify-ed25519.s1.key").write_text(public_key_pem(keys.active("sign")))
    verifier = Keyring.load(public, env={}).active("verify-ed25519").ed25519_public()
    verifier.verify(signature, b"batch")  # raises on mismatch
    with pytest.raises(KeyLoadError, match="public half"):
        create_key_file(tmp_path, "verify-ed25519")


def test_throwaway_keys_cover_every_purpose_and_summary_holds_no_material() -> None:
    keys = Keyring.throwaway()
    for purpose in PURPOSES:
        assert keys.active(purpose).kid == "ephemeral"
    summary = repr(keys.summary())
    assert keys.active("hmac").material.hex() not in summary
