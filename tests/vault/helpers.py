"""Keyrings, locations and raw-row access for the vault tests."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import psycopg

from phimask.keyring import Key, Keyring, KeySet


def material(purpose: str, kid: str) -> bytes:
    """A fixed 32-byte key per (purpose, kid): a spawned process rebuilds the same
    keyring from kids alone."""
    return hashlib.sha256(f"phimask-test:{purpose}:{kid}".encode()).digest()


def make_keys(vault: Sequence[str] = ("v1",), index: Sequence[str] = ("i1",)) -> Keyring:
    """Vault and vault-index keys by kid; the last kid of each is the active one."""
    sets = {}
    for purpose, kids in (("vault", vault), ("vault-index", index)):
        keys = {kid: Key(kid, purpose, material(purpose, kid), "<test>") for kid in kids}
        sets[purpose] = KeySet(purpose, keys[kids[-1]], keys)
    return Keyring(sets)


def with_search_path(dsn: str, schema: str) -> str:
    joiner = "&" if "?" in dsn else "?"
    return f"{dsn}{joiner}options={quote(f'-csearch_path={schema}')}"


def raw(url: str, query: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run SQL straight against a vault's store, around the vault. `?` placeholders."""
    if url.startswith("sqlite:"):
        with sqlite3.connect(url.removeprefix("sqlite://")) as conn:
            return conn.execute(query, tuple(args)).fetchall()
    with psycopg.connect(url, autocommit=True) as pg:
        cursor = pg.execute(query.replace("?", "%s"), tuple(args))
        return cursor.fetchall() if cursor.description else []


class TcpProxy:
    """A TCP relay to a server that the test can pull the plug on: the database
    'goes down' for whoever connected through it."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._target)
            with self._lock:
                self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_RDWR)
