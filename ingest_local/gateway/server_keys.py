"""The gateway's SSH host keys: generated once into the state dir, reused on every start.

Keeping them stable across restarts is what lets partners pin them in ``known_hosts``.
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncssh

#: (algorithm, file name)
HOST_KEY_SPECS: tuple[tuple[str, str], ...] = (
    ("ssh-ed25519", "ssh_host_ed25519_key"),
    ("ssh-rsa", "ssh_host_rsa_key"),
)
RSA_BITS = 3072


def load_or_create_host_keys(state_dir: Path) -> list[asyncssh.SSHKey]:
    """The ed25519 and RSA host keys in ``state_dir``, created (mode 0600) if missing."""
    state_dir.mkdir(parents=True, exist_ok=True)
    keys: list[asyncssh.SSHKey] = []
    for algorithm, name in HOST_KEY_SPECS:
        path = state_dir / name
        if path.exists():
            keys.append(asyncssh.read_private_key(str(path)))
            continue
        key = (
            asyncssh.generate_private_key(algorithm, key_size=RSA_BITS)
            if algorithm == "ssh-rsa"
            else asyncssh.generate_private_key(algorithm)
        )
        # Write to a temporary name with owner-only permissions, then rename, so a crash
        # never leaves a half-written or world-readable private key behind.
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.export_private_key())
        os.replace(tmp, path)
        key.write_public_key(str(path) + ".pub")
        keys.append(key)
    return keys


def fingerprints(keys: list[asyncssh.SSHKey]) -> list[str]:
    """``SHA256:…`` fingerprints, as ``ssh-keygen -lf`` and ``ssh`` print them."""
    return [str(key.get_fingerprint("sha256")) for key in keys]
