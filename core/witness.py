"""The audit chain's witness: every signed checkpoint, also written outside the database.

One witness per deployment (``KODOMO_AUDIT_WITNESS``):

- unset, or ``file:PATH`` / an absolute ``PATH``: an append-only JSON-lines file, by default
  ``<data dir>/audit-witness/checkpoints.jsonl`` (a directory of its own, so that it can be
  mounted from elsewhere, made append-only with ``chattr +a``, or backed up apart from the
  database). Several machines: a path on shared storage.
- ``syslog://HOST:PORT`` (UDP), ``syslog+tcp://HOST:PORT`` or ``syslog`` (the local
  ``/dev/log``): one line per checkpoint to a collector. It cannot be read back from here;
  verify compares with an exported copy (``kodomo audit verify --witness FILE``).

A line is a JSON object (form v1)::

    {"v":1,"kind":"checkpoint","seq":1000,"hash":"…","signed_at":"2026-…Z",
     "key_id":"ak-…","signature":"<base64 Ed25519>","note":"head"}

``kind`` is ``checkpoint`` (the same signed fields as the row in ``core_audit_checkpoint``)
or ``reanchor`` (written by ``kodomo audit reanchor`` after a restore from backup: from that
line on, the witness follows the restored chain). Each line is signed, so the witness needs
no key of its own and a line cannot be forged without the audit signing key.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from core.settings import SettingsError, get_settings

log = logging.getLogger(__name__)

WITNESS_VARIABLE = "KODOMO_AUDIT_WITNESS"
FORMAT_VERSION = 1


class WitnessError(SettingsError):
    """The witness cannot be written or read; the message names the variable and the problem."""

    def __init__(self, problem: str) -> None:
        super().__init__(WITNESS_VARIABLE, problem)


@dataclass(frozen=True)
class WitnessEntry:
    kind: str  # "checkpoint" | "reanchor"
    seq: int
    hash: str
    signed_at: str
    key_id: str
    signature: str
    note: str | None = None

    def to_line(self) -> str:
        data: dict[str, Any] = {"v": FORMAT_VERSION, **asdict(self)}
        return json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"

    @classmethod
    def from_line(cls, line: str, number: int, where: str) -> WitnessEntry:
        try:
            data = json.loads(line)
            if not isinstance(data, dict) or data.get("v") != FORMAT_VERSION:
                raise ValueError
            entry = cls(
                kind=data["kind"],
                seq=data["seq"],
                hash=data["hash"],
                signed_at=data["signed_at"],
                key_id=data["key_id"],
                signature=data["signature"],
                note=data.get("note"),
            )
            if entry.kind not in ("checkpoint", "reanchor") or type(entry.seq) is not int:
                raise ValueError
            if not all(isinstance(v, str) for v in (entry.hash, entry.signed_at,
                                                     entry.key_id, entry.signature)):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise WitnessError(f"{where} line {number} is not a witness entry") from None
        return entry


class Witness(Protocol):
    def describe(self) -> str: ...

    def append(self, entries: list[WitnessEntry]) -> None: ...

    def read(self) -> list[WitnessEntry] | None:
        """Every entry in order; None when this sink cannot be read back (syslog)."""
        ...


class FileWitness:
    """An append-only JSON-lines file: O_APPEND writes, fsync'd before returning."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return f"file {self.path}"

    def append(self, entries: list[WitnessEntry]) -> None:
        if not entries:
            return
        payload = "".join(e.to_line() for e in entries).encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, payload)  # one write of whole lines: O_APPEND keeps writers apart
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[WitnessEntry] | None:
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise WitnessError(f"{self.describe()} cannot be read: {exc}") from None
        entries = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                entries.append(WitnessEntry.from_line(line, number, self.describe()))
        return entries


class SyslogWitness:
    """One line per entry to a syslog collector (UDP, TCP or the local socket)."""

    def __init__(self, address: str | tuple[str, int], socktype: int | None = None) -> None:
        self.address = address
        self._handler = logging.handlers.SysLogHandler(
            address=address,
            facility=logging.handlers.SysLogHandler.LOG_AUTH,
            socktype=socktype,  # type: ignore[arg-type]
        )
        self._handler.ident = "kodomo-audit-witness: "

    def describe(self) -> str:
        return f"syslog {self.address}"

    def append(self, entries: list[WitnessEntry]) -> None:
        for entry in entries:
            record = logging.LogRecord(
                "kodomo.witness", logging.INFO, __file__, 0, entry.to_line().strip(), None, None
            )
            self._handler.emit(record)

    def read(self) -> list[WitnessEntry] | None:
        return None


def parse(spec: str | None, data_dir: Path) -> Witness:
    """The witness a setting names (see the module docstring); a bad value names the variable."""
    if spec is None or not spec.strip():
        return FileWitness(data_dir / "audit-witness" / "checkpoints.jsonl")
    spec = spec.strip()
    if spec == "syslog":
        return SyslogWitness("/dev/log")
    for prefix, socktype in (
        ("syslog://", socket.SOCK_DGRAM),
        ("syslog+tcp://", socket.SOCK_STREAM),
    ):
        if spec.startswith(prefix):
            host, _, port = spec[len(prefix):].rpartition(":")
            if not host or not port.isdigit():
                raise WitnessError(f"{spec!r}: expected {prefix}HOST:PORT")
            return SyslogWitness((host, int(port)), socktype)
    path = Path(spec.removeprefix("file:"))
    if not path.is_absolute():
        raise WitnessError(f"{spec!r}: give an absolute path, file:PATH or syslog://HOST:PORT")
    return FileWitness(path)


_override: Witness | None = None


def use(witness: Witness | None) -> None:
    """Point the process at another witness (tests, `verify --witness`); None: the setting."""
    global _override
    _override = witness


def configured() -> Witness:
    if _override is not None:
        return _override
    settings = get_settings()
    return parse(settings.audit_witness, settings.data_dir)


def write(entries: list[WitnessEntry]) -> None:
    """Append entries to the configured witness; a failure is logged loudly, never raised (the
    database has already committed; the next checkpoint's line covers these events too)."""
    if not entries:
        return
    try:
        witness = configured()
        witness.append(entries)
    except (OSError, SettingsError) as exc:
        log.error("audit witness not written (%d checkpoint(s)): %s", len(entries), exc)
