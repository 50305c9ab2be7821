"""CURVE keys and authenticated, encrypted ZeroMQ sockets for every channel of a run.

Safety argument. Every socket that binds (the coordinator's control ROUTER, each worker's data
ROUTER) is a CURVE server; every socket that dials (worker control and heartbeat DEALERs, data
DEALERs, `streamflow reconfigure`) is a CURVE client that knows the server's public key before it
connects. CURVE (RFC 26, CurveZMQ) gives each connection a fresh session key from an ephemeral
Curve25519 exchange and authenticates and encrypts every frame with XSalsa20-Poly1305, so:
- a client without a key pair (plain ZMTP, raw TCP bytes) fails the handshake: libzmq never
  hands any of its bytes to the application;
- a client with a key pair is admitted only if the ZAP handler of the server's context finds its
  long-term public key on the allow list (the `*.key` files of `--keys DIR`); a refused key gets
  one log line at the server and a handshake error at the client, which says so in one line;
- a client reaches the real server only: the handshake proves possession of the secret key that
  belongs to the server public key the client dialled with (the coordinator's `coordinator.key`;
  a worker's data key as the coordinator relayed it over the already authenticated control
  channel), so a process posing as a coordinator or a peer cannot complete it;
- nothing crosses in clear text after the handshake, so a capture holds no record bytes.
Every allow-listed key is a full member of the cluster (as a shared cluster secret is in Flink or
Ray); what such a member sends is still checked (communication/validate.py) and plans it delivers
run no code outside the workers' import allow list (dataflow/operators/fields.py).
"""
from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from streamflow.errors import StreamflowError

log = logging.getLogger("streamflow.security")
COORDINATOR = "coordinator"  # the key name whose public half every worker dials the coordinator with
ZAP_DOMAIN = b"streamflow"
REFUSAL_LOG_EVERY_S = 60.0   # one line per refused (address, key) per minute, however often it retries


class SecurityError(StreamflowError):
    """Keys missing or unreadable, or a non-loopback socket without keys and without --insecure."""

    exit_status = 2


def generate(folder: str | Path, name: str) -> tuple[Path, Path]:
    """A new CURVE key pair `folder/name.key` (public) and `folder/name.key_secret` (mode 0600)."""
    if not name or "/" in name or name.startswith("."):
        raise SecurityError(f"--name: expected a plain file name, got {name!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / f"{name}.key_secret").exists():
        raise SecurityError(f"{folder / (name + '.key_secret')}: exists; remove it first to make a new key")
    public, secret = zmq.auth.create_certificates(str(folder), name)
    os.chmod(secret, 0o600)
    return Path(public), Path(secret)


@dataclass
class Keyring:
    """One party's key pair and the public keys it admits (all z85 bytes)."""

    name: str
    public: bytes
    secret: bytes
    allowed: dict[bytes, str] = field(default_factory=dict)  # public key -> key file name
    folder: Path | None = None

    def public_key_of(self, name: str) -> bytes:
        """The allow-listed public key called `name` (the coordinator's, for a worker)."""
        for key, who in self.allowed.items():
            if who == name:
                return key
        raise SecurityError(f"--keys {self.folder}: no {name}.key (copy the {name}'s public key there)")


def load_keyring(folder: str | Path, name: str) -> Keyring:
    """`folder/name.key_secret` (or the only secret key there) and every `*.key` as allow list."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SecurityError(f"--keys {folder}: no such directory (make one with: streamflow keys generate {folder})")
    secret_file = folder / f"{name}.key_secret"
    if not secret_file.is_file():
        secrets = sorted(folder.glob("*.key_secret"))
        if len(secrets) != 1:
            found = ", ".join(p.name for p in secrets) or "none"
            raise SecurityError(f"--keys {folder}: expected {name}.key_secret or exactly one *.key_secret "
                                f"(found {found})")
        secret_file = secrets[0]
    try:
        public, secret = zmq.auth.load_certificate(str(secret_file))
        allowed: dict[bytes, str] = {}
        for path in sorted(folder.glob("*.key")):
            key, _ = zmq.auth.load_certificate(str(path))
            allowed[key] = path.stem
    except (OSError, ValueError) as exc:
        raise SecurityError(f"--keys {folder}: unreadable key file: {exc}") from None
    if secret is None:
        raise SecurityError(f"{secret_file}: holds no secret key")
    return Keyring(secret_file.name[:-len(".key_secret")], public, secret, allowed, folder)


EPHEMERAL_PREFIX = "streamflow-keys-"
OWNER_FILE = "owner"  # "<pid> <start time>" of the process that made the folder


def ephemeral_keys() -> Path:
    """A fresh key folder for one `--local` or testbed run: one pair named `coordinator`, shared
    by the coordinator and the workers it starts (the folder is private to this user)."""
    sweep_stale_keys()
    folder = Path(tempfile.mkdtemp(prefix=EPHEMERAL_PREFIX))
    (folder / OWNER_FILE).write_text(f"{os.getpid()} {_start_time(os.getpid()) or '?'}\n")
    generate(folder, COORDINATOR)
    return folder


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc), so a reused pid is not its owner."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def _alive(pid: int, start: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return start == "?" or _start_time(pid) in (None, start)


def sweep_stale_keys(root: str | Path | None = None) -> list[Path]:
    """Remove this user's ephemeral key folders whose owner process is gone: a coordinator killed
    with SIGKILL cannot remove its own. Folders without an owner file are left alone."""
    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(EPHEMERAL_PREFIX + "*"):
        try:
            if folder.stat().st_uid != os.getuid():
                continue
            pid, start = (folder / OWNER_FILE).read_text().split()
            stale = not _alive(int(pid), start)
        except (OSError, ValueError):
            continue
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def is_loopback(address: str) -> bool:
    """Whether a tcp:// address is on the loopback interface (0.0.0.0 and names are not)."""
    host = urlparse(address).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
        except (OSError, ValueError):
            return False


def require_keys(keys: str | None, insecure: bool, addresses: list[str], what: str) -> None:
    """Refuse plaintext on a non-loopback address unless --insecure (which warns once)."""
    if keys is not None:
        if insecure:
            raise SecurityError("--keys and --insecure: choose one")
        return
    exposed = [a for a in addresses if not is_loopback(a)]
    if not exposed:
        return
    if not insecure:
        raise SecurityError(f"{what} {exposed[0]} is not a loopback address: give --keys DIR (streamflow keys "
                            f"generate DIR) or --insecure to send plaintext anyone on the network can read")
    print(f"warning: --insecure: {what} {exposed[0]} carries plaintext, unauthenticated traffic",
          file=sys.stderr, flush=True)


class _AllowList(ThreadAuthenticator):
    """ZAP handler admitting the keyring's allow list; one log line per refused key and address."""

    def __init__(self, context: zmq.Context, keyring: Keyring) -> None:
        super().__init__(context, log=logging.getLogger("streamflow.security.zap"))
        self.keyring = keyring
        self._address = "?"
        self._refused: dict[tuple[str, bytes], float] = {}

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        if len(msg) > 3:
            self._address = msg[3].decode(errors="replace")
        await super().handle_zap_message(msg)

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.keyring.allowed:
            return True
        now = time.monotonic()
        seen = (self._address, key)
        if now - self._refused.get(seen, -REFUSAL_LOG_EVERY_S) >= REFUSAL_LOG_EVERY_S:
            self._refused[seen] = now
            log.warning("refused a connection from %s: key %s is not on the allow list (%s)",
                        self._address, key.decode(), self.keyring.folder)
        return False


class Security:
    """How the sockets of one zmq context are secured: CURVE with a keyring, or plaintext."""

    def __init__(self, keyring: Keyring | None) -> None:
        self.keyring = keyring
        self._auth: _AllowList | None = None

    @property
    def enabled(self) -> bool:
        return self.keyring is not None

    @property
    def public(self) -> str | None:
        """This party's public key (z85 text) to hand to peers, None in plaintext."""
        return self.keyring.public.decode() if self.keyring else None

    def start(self, context: zmq.Context) -> None:
        """Run the ZAP handler for `context` (before any server socket of it binds)."""
        if self.keyring is None or self._auth is not None:
            return
        self._auth = _AllowList(context, self.keyring)
        self._auth.start()
        self._auth.configure_curve_callback(ZAP_DOMAIN.decode(), credentials_provider=self._auth)

    def stop(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None

    def server(self, sock: zmq.Socket) -> None:
        """Make a binding socket a CURVE server (before bind)."""
        if self.keyring is None:
            return
        sock.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN)
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.keyring.public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.keyring.secret)

    def client(self, sock: zmq.Socket, server_key: str | bytes | None = None) -> None:
        """Make a dialling socket a CURVE client of the server with `server_key` (before connect;
        default: the coordinator's key)."""
        if self.keyring is None:
            return
        if server_key is None:
            server_key = self.keyring.public_key_of(COORDINATOR)
        elif isinstance(server_key, str):
            server_key = server_key.encode()
        sock.setsockopt(zmq.CURVE_SERVERKEY, server_key)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.keyring.public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.keyring.secret)


PLAINTEXT = Security(None)


def security_for(keys: str | Path | None, name: str) -> Security:
    """The Security of a party named `name` from `--keys` (plaintext when None)."""
    return Security(None if keys is None else load_keyring(keys, name))


def handshake_refusal(monitor: zmq.Socket) -> str | None:
    """Read pending events of a client socket's monitor: why the server refused us, if it did."""
    from zmq.utils.monitor import recv_monitor_message
    why = None
    while monitor.poll(0):
        try:
            event: dict[str, Any] = recv_monitor_message(monitor, zmq.NOBLOCK)
        except zmq.ZMQError:
            break
        if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            why = "refused this process's key: it is not on the allow list there"
        elif event["event"] == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL and why is None:
            why = "the handshake failed (one side uses --keys, the other not, or the server key is wrong)"
        elif event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            why = None
    return why
