"""Who says an SRS is safe: the verifier, never the manifest.

A KZG structured reference string is safe only if nobody knows its toxic waste: a public ceremony's
file. Whoever generated an SRS locally (``--dev-srs``) can forge proofs with it. The manifest's
``insecure`` flag is whatever the compiler wrote, so a verifier labels the SRS itself from the
file's SHA-256: *trusted* if the user pinned that hash (``--trusted-srs SHA256``) or it is in
:data:`KNOWN_CEREMONY_SRS` (shipped with the package, each entry naming its ceremony), *untrusted*
otherwise. ``run``, ``audit`` and ``verify`` print the label, and audit reports carry it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from zkauction.zk.circuit import sha256_file

_KNOWN_FILE = Path(__file__).with_name("trusted_srs.json")


def known_ceremony_srs() -> dict[str, str]:
    """SHA-256 (hex) -> description of the ceremony SRS files this package trusts by default."""
    if not _KNOWN_FILE.is_file():
        return {}
    return {k.lower(): v for k, v in json.loads(_KNOWN_FILE.read_text()).get("srs", {}).items()}


@dataclass(frozen=True)
class SrsLabel:
    sha256: str
    trusted: bool
    source: str  # "pinned", "known ceremony: <name>", or "untrusted"

    def __str__(self) -> str:
        if self.trusted:
            return f"SRS {self.sha256[:16]}... trusted ({self.source})"
        return (f"SRS {self.sha256[:16]}... UNTRUSTED: not a pinned or known ceremony file, so INSECURE: whoever "
                "generated it could forge proofs (pin a ceremony file's hash with --trusted-srs)")

    def to_dict(self) -> dict[str, object]:
        return {"sha256": self.sha256, "trusted": self.trusted, "source": self.source}


def check_pins(pins: Iterable[str]) -> list[str]:
    """Validate ``--trusted-srs`` values: 64 hex characters each."""
    out = []
    for p in pins:
        p = str(p).strip().lower()
        if len(p) != 64 or any(c not in "0123456789abcdef" for c in p):
            raise ValueError(f"--trusted-srs {p!r}: expected a SHA-256 as 64 hex characters")
        out.append(p)
    return out


def label_srs(path: str | Path, pinned: Iterable[str] = ()) -> SrsLabel:
    """Label the SRS at ``path`` by its hash: pinned, a known ceremony, or untrusted."""
    digest = sha256_file(path)
    if digest in set(check_pins(pinned)):
        return SrsLabel(digest, True, "pinned")
    known = known_ceremony_srs()
    if digest in known:
        return SrsLabel(digest, True, f"known ceremony: {known[digest]}")
    return SrsLabel(digest, False, "untrusted")
