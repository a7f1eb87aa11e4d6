"""Where the HMAC key comes from until the full keyring lands.

Order: PHIMASK_HMAC_KEY (hex) > the configured key file > a local key file created
once in the state directory (mode 0600). The local file keeps the embedded default
deterministic across workers and restarts; production configures keys explicitly.
"""

from __future__ import annotations

import binascii
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger("phimask.keys")
MIN_KEY_BYTES = 32


class KeyLoadError(Exception):
    """A missing, short or unreadable key; the message names the source, never the key."""


def _decode(raw: bytes, source: str) -> bytes:
    text = raw.strip()
    try:
        key = binascii.unhexlify(text) if len(text) % 2 == 0 else b""
    except binascii.Error:
        key = b""
    key = key or text
    if len(key) < MIN_KEY_BYTES:
        raise KeyLoadError(f"hmac key from {source} is shorter than {MIN_KEY_BYTES} bytes")
    return key


def load_hmac_key(
    key_file: Path | None, state_dir: Path, env: Mapping[str, str] | None = None,
    *, create: bool = True,
) -> bytes:
    """With `create=False` a missing local key is replaced by a throwaway one."""
    env = os.environ if env is None else env
    if env.get("PHIMASK_HMAC_KEY"):
        return _decode(env["PHIMASK_HMAC_KEY"].encode(), "environment PHIMASK_HMAC_KEY")
    if key_file is not None:
        try:
            return _decode(key_file.read_bytes(), str(key_file))
        except OSError as exc:
            raise KeyLoadError(f"hmac key file {key_file}: {exc.strerror}") from None
    return _local_key(state_dir / "keys" / "hmac.key", create)


def _local_key(path: Path, create: bool) -> bytes:
    try:
        return _decode(path.read_bytes(), str(path))
    except FileNotFoundError:
        if not create:
            return secrets.token_bytes(MIN_KEY_BYTES)
    except OSError as exc:
        raise KeyLoadError(f"local hmac key {path}: {exc.strerror}") from None
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Written whole under a private name, then linked into place: a concurrent worker
    # either wins the link or reads the complete key of the one that did.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(secrets.token_hex(MIN_KEY_BYTES).encode() + b"\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        return _decode(path.read_bytes(), str(path))
    finally:
        tmp.unlink()
    log.warning(
        "created a local hmac key; configure --hmac-key-file or PHIMASK_HMAC_KEY in production",
        extra={"path": str(path)},
    )
    return _decode(path.read_bytes(), str(path))
