"""SSH servers and clients for the benchmarks: OpenSSH sftp, Debian's sshd, rclone serve sftp."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

#: every SSH run uses the same cipher so the comparison is about the servers, not ciphers
CIPHER = "aes128-gcm@openssh.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def sftp_put(port: int, user: str, key: Path, known_hosts: Path, src: Path, *, dst: str) -> None:
    batch = f"put {src} {dst}\n"
    proc = subprocess.run(
        [
            "sftp",
            "-q",
            "-b",
            "-",
            "-P",
            str(port),
            "-i",
            str(key),
            "-o",
            f"Ciphers={CIPHER}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            f"{user}@127.0.0.1",
        ],
        input=batch,
        text=True,
        check=False,
        capture_output=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"sftp to port {port} failed: {proc.stderr.strip()}")


def known_hosts_for(port: int, pubkeys: list[str], path: Path) -> Path:
    path.write_text("".join(f"[127.0.0.1]:{port} {k.strip()}\n" for k in pubkeys))
    return path


def start_json_child(
    cmd: list[str], procs: list[subprocess.Popen[str]], cwd: Path
) -> dict[str, Any]:
    """Start a server that prints one JSON line (``{"port": P, "pid": N, ...}``) when ready."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=cwd
    )
    procs.append(proc)
    assert proc.stdout is not None
    return dict(json.loads(proc.stdout.readline()))


def start_sshd(work: Path, pub: str, procs: list[subprocess.Popen[str]]) -> tuple[int, Path]:
    """Debian's sshd (internal-sftp) for ``pub``; returns its port and a known_hosts file."""
    host_key = work / "sshd_host_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    auth = work / "authorized_keys"
    auth.write_text(pub)
    auth.chmod(0o600)
    port = free_port()
    cfg = work / "sshd_config"
    cfg.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
        f"AuthorizedKeysFile {auth}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        f"PidFile {work / 'sshd.pid'}\nSubsystem sftp internal-sftp\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
    procs.append(
        subprocess.Popen(
            ["/usr/sbin/sshd", "-D", "-e", "-f", str(cfg)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
    )
    wait_port(port)
    known = known_hosts_for(port, [Path(f"{host_key}.pub").read_text()], work / "known_sshd")
    return port, known


def start_rclone(
    work: Path,
    pub: str,
    procs: list[subprocess.Popen[str]],
    *,
    endpoint: str,
    region: str,
    remote: str,
) -> int | None:
    """``rclone serve sftp`` over ``remote`` (bucket/prefix) on the S3 at ``endpoint``."""
    if shutil.which("rclone") is None:
        print("rclone: not installed, skipped")
        return None
    host_key = work / "rclone_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    auth = work / "rclone_authorized_keys"
    auth.write_text(pub)
    port = free_port()
    env = {**os.environ, "RCLONE_CONFIG": str(work / "rclone.conf")}
    (work / "rclone.conf").write_text(
        "[moto]\ntype = s3\nprovider = Other\naccess_key_id = testing\n"
        f"secret_access_key = testing\nendpoint = {endpoint}\nregion = {region}\n"
        "force_path_style = true\n"
    )
    procs.append(
        subprocess.Popen(
            [
                "rclone",
                "serve",
                "sftp",
                f"moto:{remote}",
                "--addr",
                f"127.0.0.1:{port}",
                "--user",
                "bench",
                "--authorized-keys",
                str(auth),
                "--key",
                str(host_key),
                "--vfs-cache-mode",
                "off",
                "--s3-upload-concurrency",
                "10",
                "--s3-chunk-size",
                "8M",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(work / "rclone.log").open("w"),
            text=True,
            env=env,
        )
    )
    wait_port(port)
    return port
