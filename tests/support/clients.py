"""Installers and uploaders as subprocesses, cut off from this machine's own configuration.

A machine's pip configuration can name extra indexes or find-links and make an
install pass without our server; every client here sees only what the test
gives it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

_TIMEOUT = 300


def isolated_environment(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment minus every pip, uv, twine and proxy setting, with a private home."""
    dropped = ("PIP_", "UV_", "TWINE_", "POETRY_", "PDM_", "HATCH_", "FLIT_", "PYTHON")
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(dropped) and "proxy" not in key.lower()
    }
    home.mkdir(parents=True, exist_ok=True)
    environment.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_INPUT="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        UV_NO_CONFIG="1",
        UV_CACHE_DIR=str(home / "uv-cache"),
        UV_PYTHON_DOWNLOADS="never",
        NO_COLOR="1",
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
    )
    environment.update(extra or {})
    return environment


def run(
    command: Sequence[str],
    home: Path,
    *,
    cwd: Path | None = None,
    extra_environment: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a client; the caller asserts on the result."""
    return subprocess.run(
        list(command),
        cwd=cwd,
        env=isolated_environment(home, extra_environment),
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
    )


def tool(name: str) -> str:
    """A console script from the test environment (pip, twine, uv)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed; run scripts/test")
    return found


def new_venv(path: Path) -> Path:
    """A fresh virtual environment without pip (clients install into it); returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path / "bin" / "python"


def pip_install(python: Path, home: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """``pip install`` into the venv of ``python``, isolated, without a cache."""
    return run(
        [
            sys.executable,
            "-m",
            "pip",
            "--isolated",
            "--python",
            str(python),
            "install",
            "--no-cache-dir",
            *arguments,
        ],
        home,
    )


def uv(
    home: Path, *arguments: str, environment: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run uv, isolated (``environment``: variables to set, like ``SSL_CERT_FILE``)."""
    return run([tool("uv"), *arguments], home, extra_environment=environment)


def twine_upload(
    home: Path,
    repository_url: str,
    username: str,
    password: str,
    *files: Path,
    options: Sequence[str] = (),
    environment: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``twine upload`` to a repository URL, non-interactive, with more ``options``."""
    return run(
        [
            tool("twine"),
            "upload",
            "--non-interactive",
            "--disable-progress-bar",
            "--repository-url",
            repository_url,
            "-u",
            username,
            "-p",
            password,
            *options,
            *map(str, files),
        ],
        home,
        extra_environment=environment,
    )
