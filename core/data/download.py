"""Downloading a dataset into ``NORMSCOPE_DATA``: torchvision's CIFAR-10, checksummed and unpacked safely.

A first start without data shows the zoo's precomputed results; new computations need images. The archive
streams to a temporary folder beside its destination, its md5 is checked, its members are checked (no
absolute paths, no ``..``, no links or devices) before anything is unpacked, and the unpacked folder is
moved into place in one rename: an interrupted, corrupt or hostile download leaves nothing half-written.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import socket
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable

from core.data.dataset import DataError
from core.data.named import load_named
from core.data.sources import data_root
from core.progress import Progress, null_progress, scaled

CHUNK = 1 << 20  # bytes read and hashed per step (one progress report each)
TIMEOUT = 30.0  # seconds without an answer before the machine counts as offline
Fetch = Callable[[str, float], BinaryIO]  # (url, timeout) -> a readable response; tests pass a fake


@dataclass(frozen=True)
class Archive:
    """A dataset archive as its publisher serves it: where, its md5, the folder it unpacks to, its size."""

    name: str
    url: str
    md5: str
    folder: str
    size: int  # bytes, for the progress bar when the server sends no Content-Length


# torchvision's own source and checksum (torchvision.datasets.CIFAR10.url / tgz_md5).
CIFAR10 = Archive("CIFAR-10", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                  "c58f30108f718f92721af3b95e74349a", "cifar-10-batches-py", 170_498_071)


def open_url(url: str, timeout: float) -> BinaryIO:
    return urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (a fixed https URL)


def download_cifar10(root: str | os.PathLike | None = None, progress: Progress | None = None,
                     fetch: Fetch | None = None, timeout: float = TIMEOUT) -> Path:
    """Torchvision's CIFAR-10 into ``root`` (default ``NORMSCOPE_DATA``); returns its folder.

    Raises :class:`DataError` when offline, on a checksum mismatch or an unsafe archive (nothing is left
    behind). Already present: returns at once, downloading nothing.
    """
    return download(CIFAR10, root, progress, fetch, timeout)


def download(archive: Archive, root: str | os.PathLike | None = None, progress: Progress | None = None,
             fetch: Fetch | None = None, timeout: float = TIMEOUT) -> Path:
    """``archive`` fetched, verified and unpacked into ``root``; see :func:`download_cifar10`."""
    report, target = progress or null_progress, data_root(root)
    final = target / archive.folder
    if final.is_dir():
        report(1.0, f"{archive.name} is already in {target}")
        return final
    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target, prefix=".download-") as tmp:
            packed = Path(tmp) / Path(archive.url).name
            digest = fetch_to(archive, packed, fetch or open_url, timeout, scaled(report, 0.0, 0.9))
            if digest != archive.md5:
                raise DataError(f"{archive.name} download is corrupt (md5 {digest}, expected {archive.md5}); "
                                "nothing was kept, try again")
            report(0.9, f"Unpacking {archive.name}…")
            move_into_place(unpack(packed, Path(tmp) / "unpacked", archive.folder), final)
    except OSError as e:  # a read-only or full disk (network errors are DataErrors by now)
        raise DataError(f"cannot write {archive.name} into {target} ({e}); set NORMSCOPE_DATA to a writable "
                        "folder") from e
    forget_listings()
    report(1.0, f"{archive.name} is ready in {final}")
    return final


def fetch_to(archive: Archive, path: Path, fetch: Fetch, timeout: float, report: Progress) -> str:
    """Stream ``archive.url`` into ``path``; returns the md5 of what arrived. Offline: a DataError saying so."""
    md5 = hashlib.md5(usedforsecurity=False)
    try:
        with fetch(archive.url, timeout) as response, open(path, "wb") as out:
            total = int(getattr(response, "headers", {}).get("Content-Length") or archive.size)
            done = 0
            while block := response.read(CHUNK):
                out.write(block)
                md5.update(block)
                done += len(block)
                report(min(done / total, 1.0), f"Downloading {archive.name}: {done / 2**20:.0f} of "
                                               f"{total / 2**20:.0f} MiB")
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", None) or e
        raise DataError(f"cannot download {archive.name} from {archive.url} ({reason}): this machine seems to be "
                        "offline, or the server is unreachable. Download the file on another machine and unpack it "
                        f"into {path.parent.parent} (it holds {archive.folder}/), or set NORMSCOPE_DATA to a folder "
                        "that has it") from e
    except OSError as e:
        raise DataError(f"cannot write the {archive.name} download under {path.parent.parent} ({e})") from e
    return md5.hexdigest()


def unpack(packed: Path, into: Path, folder: str) -> Path:
    """Unpack a .tar.gz whose every member is a plain file or folder under ``folder``; returns that folder."""
    try:
        with tarfile.open(packed, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                check_member(member, folder)
            tar.extractall(into, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"{packed.name} is not a readable archive ({e}); nothing was kept, try again") from e
    if not (into / folder).is_dir():
        raise DataError(f"{packed.name} does not hold the folder {folder}/; nothing was kept")
    return into / folder


def check_member(member: tarfile.TarInfo, folder: str) -> None:
    """Refuse a member that could write outside the destination or is not the dataset's own file."""
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or not (member.isfile() or member.isdir()):
        raise DataError(f"refusing an unsafe archive member {member.name!r} (absolute path, '..', link or device); "
                        "nothing was kept")
    if path.parts[:1] != (folder,):
        raise DataError(f"unexpected archive member {member.name!r} (outside {folder}/); nothing was kept")


def move_into_place(unpacked: Path, final: Path) -> None:
    """One rename onto the final path; a copy that another process finished first is kept."""
    try:
        os.replace(unpacked, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(unpacked, ignore_errors=True)


def forget_listings() -> None:
    """Drop the loaded-dataset memo, so ``auto`` and every later load see the new data."""
    load_named.cache_clear()
