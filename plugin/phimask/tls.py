"""TLS for the listener and for the channels to downstreams (HIPAA 164.312(e)).

gRPC asks `ListenerCertificates.fetch` before every new connection's handshake, and
it reloads the listener's certificate, key and client CA when their files changed: a
certificate renewed on disk (cert-manager) reaches new connections without a restart,
established ones keep theirs. Errors name the setting and the file, never the content
of a key.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from collections.abc import Callable
from pathlib import Path
from typing import cast

import grpc
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from .config import SETTINGS, Settings, SettingsError

log = logging.getLogger("phimask.tls")
_SETTINGS = {s.name: s for s in SETTINGS}


def describe(name: str) -> str:
    """How a setting is named to the user: `--tls-key-file (PHIMASK_TLS_KEY_FILE)`."""
    setting = _SETTINGS[name]
    return f"{setting.flag} ({setting.env})"


def is_loopback(host: str) -> bool:
    host = host.removeprefix("[").removesuffix("]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve to anything


def _read(name: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"{describe(name)} {path}: cannot read it ({exc.strerror})") from None


def _certificates(name: str, path: Path, data: bytes) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise SettingsError(f"{describe(name)} {path}: no PEM certificate in it")
    return certs


def _check_key(name: str, path: Path, data: bytes, cert_name: str,
               cert: x509.Certificate) -> None:
    try:
        key = load_pem_private_key(data, password=None)
    except TypeError:
        raise SettingsError(f"{describe(name)} {path}: the key is encrypted; "
                            "phimask needs an unencrypted PEM key") from None
    except (ValueError, UnsupportedAlgorithm):
        # The parser's message may quote the file; say only what is wrong.
        raise SettingsError(f"{describe(name)} {path}: not a PEM private key") from None
    if key.public_key() != cert.public_key():
        raise SettingsError(f"{describe(name)} {path}: the key does not belong to the "
                            f"certificate in {describe(cert_name)}")


def load_key_pair(cert_name: str, key_name: str, cert_path: Path, key_path: Path
                  ) -> tuple[bytes, bytes]:
    """(key PEM, certificate chain PEM), checked to parse and to belong together."""
    chain, key = _read(cert_name, cert_path), _read(key_name, key_path)
    cert = _certificates(cert_name, cert_path, chain)[0]
    _check_key(key_name, key_path, key, cert_name, cert)
    return key, chain


class ListenerCertificates:
    """The listener's certificate, key and client CA, reloaded when their files change.

    Change is judged by content, not mtime: a file rewritten in place within one
    timestamp tick, or half-written, must not be missed, and reading a few KB per
    new connection costs less than the handshake it precedes.
    """

    def __init__(self, cert_file: Path, key_file: Path, client_ca_file: Path | None) -> None:
        self.files = {"tls_cert_file": cert_file, "tls_key_file": key_file}
        if client_ca_file is not None:
            self.files["tls_client_ca_file"] = client_ca_file
        contents = {name: _read(name, path) for name, path in self.files.items()}
        self.initial = self._configuration(contents)  # SettingsError: bad files stop the start
        self._current = self._failed = _digest(contents)

    @property
    def mutual(self) -> bool:
        return "tls_client_ca_file" in self.files

    def _configuration(self, contents: dict[str, bytes]) -> grpc.ServerCertificateConfiguration:
        cert = _certificates("tls_cert_file", self.files["tls_cert_file"],
                             contents["tls_cert_file"])[0]
        _check_key("tls_key_file", self.files["tls_key_file"], contents["tls_key_file"],
                   "tls_cert_file", cert)
        roots = contents.get("tls_client_ca_file")
        if roots is not None:
            _certificates("tls_client_ca_file", self.files["tls_client_ca_file"], roots)
        return grpc.ssl_server_certificate_configuration(
            [(contents["tls_key_file"], contents["tls_cert_file"])], root_certificates=roots)

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """gRPC's fetcher, called before each new connection's handshake: a new
        configuration when the files changed, else None (keep the current one)."""
        try:
            return self._reload()
        except Exception as exc:  # nothing may escape into gRPC's handshake
            log.error("TLS reload failed", extra={"error_type": type(exc).__name__})
            return None

    def _reload(self) -> grpc.ServerCertificateConfiguration | None:
        try:
            contents = {name: _read(name, path) for name, path in self.files.items()}
        except SettingsError as exc:
            self._unusable(hashlib.sha256(str(exc).encode()).digest(), exc)
            return None
        digest = _digest(contents)
        if digest in (self._current, self._failed):
            return None
        try:
            config = self._configuration(contents)
        except SettingsError as exc:
            self._unusable(digest, exc)
            return None
        self._current = digest
        log.info("TLS certificate reloaded", extra={"files": [str(p) for p in self.files.values()]})
        return config

    def _unusable(self, state: bytes, exc: SettingsError) -> None:
        # Mid-rotation a file may be missing, or the key not match the certificate yet:
        # keep serving the last good pair, and say so once per state of the files.
        if state != self._failed:
            log.warning("TLS files changed but cannot be used; keeping the previous ones",
                        extra={"error": str(exc)})
        self._failed = state

    def credentials(self) -> grpc.ServerCredentials:
        # gRPC documents None as "unchanged"; the type stubs leave it out.
        fetch = cast(Callable[[], grpc.ServerCertificateConfiguration], self.fetch)
        return grpc.dynamic_ssl_server_credentials(
            self.initial, fetch, require_client_authentication=self.mutual)


def _digest(contents: dict[str, bytes]) -> bytes:
    digest = hashlib.sha256()
    for name, data in contents.items():
        digest.update(f"{name}:{len(data)}:".encode())
        digest.update(data)
    return digest.digest()


def _both(settings: Settings, cert_name: str, key_name: str) -> tuple[Path | None, Path | None]:
    """A certificate and its key: both set or neither."""
    cert, key = getattr(settings, cert_name), getattr(settings, key_name)
    if (cert is None) != (key is None):
        given, missing = (cert_name, key_name) if key is None else (key_name, cert_name)
        raise SettingsError(f"{describe(missing)} is not set; it is needed with {describe(given)}")
    return cert, key


def listener_certificates(settings: Settings) -> ListenerCertificates | None:
    """The listener's TLS, or None for plaintext; refuses plaintext off loopback unless
    --allow-plaintext. Raises SettingsError naming the setting (and file) at fault."""
    cert, key = _both(settings, "tls_cert_file", "tls_key_file")
    if cert is not None and key is not None:
        return ListenerCertificates(cert, key, settings.tls_client_ca_file)
    if settings.tls_client_ca_file is not None:
        raise SettingsError(f"{describe('tls_client_ca_file')} needs {describe('tls_cert_file')} "
                            f"and {describe('tls_key_file')}")
    host = settings.listen.rpartition(":")[0]
    if not is_loopback(host):
        if not settings.allow_plaintext:
            raise SettingsError(
                f"refusing to serve without TLS on {settings.listen}, which is not loopback: "
                f"configure TLS ({describe('tls_cert_file')}, {describe('tls_key_file')}) "
                f"or set {describe('allow_plaintext')} to accept plaintext")
        log.warning("serving without TLS on an address other than loopback "
                    "(--allow-plaintext): ePHI and credentials travel in clear",
                    extra={"listen": settings.listen})
    return None


def forward_credentials(settings: Settings) -> grpc.ChannelCredentials:
    """Credentials for https:// downstreams: --forward-ca-file (else the system roots),
    and a client certificate when --forward-cert-file and --forward-key-file are set."""
    cert, key = _both(settings, "forward_cert_file", "forward_key_file")
    roots = None
    if settings.forward_ca_file is not None:
        roots = _read("forward_ca_file", settings.forward_ca_file)
        _certificates("forward_ca_file", settings.forward_ca_file, roots)
    private_key = chain = None
    if cert is not None and key is not None:
        private_key, chain = load_key_pair("forward_cert_file", "forward_key_file", cert, key)
    return grpc.ssl_channel_credentials(root_certificates=roots, private_key=private_key,
                                        certificate_chain=chain)
