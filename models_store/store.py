"""On-disk, versioned model store.

Layout (one folder per model name)::

    ROOT/NAME/versions/1/manifest.json, psf.onnx, ...   immutable once published
    ROOT/NAME/refs/latest                               text file holding a version number

Publishing copies into a temporary folder on the same volume, fsyncs, and renames it into place, so a
reader sees either no version or a complete one. Every file's sha256 is in the manifest and is
checked on load. A publisher killed half-way leaves only its temporary folder (``.publish-PID-*``,
never listed as a version); ``verify`` reports such leftovers of processes that are gone, and the
next publish on the same machine removes them. A publish that fails (disk full, read-only store)
raises :class:`PublishError` naming the cause and leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .manifest import Manifest

MANIFEST_FILE = "manifest.json"
DEFAULT_ALIAS = "latest"
# mkstemp/mkdtemp make owner-only entries; a server running as another user (a container) must read them
_FILE_MODE, _DIR_MODE = 0o644, 0o755
# model names, aliases and file names (also stated in the server's OpenAPI document)
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_NAME_RE = re.compile(NAME_PATTERN)


class StoreError(Exception):
    """Base class of every error the store raises."""


class NotFoundError(StoreError, LookupError):
    """Unknown model name, version or alias."""


class IntegrityError(StoreError):
    """A stored file is missing, altered, or its manifest does not validate."""


class PublishError(StoreError):
    """A publish the file system refused (no space, read-only, permissions); nothing was published."""


_STAGING = ".publish-"


def _staging_prefix() -> str:
    # whose it is: a later publish on this machine removes it once that process is gone
    return f"{_STAGING}{socket.gethostname()}-{os.getpid()}-"


def _is_stale(folder: Path) -> bool:
    """A staging folder of a publisher on this machine that no longer runs."""
    owner = folder.name[len(_STAGING):].rpartition("-")[0]  # HOST-PID, then mkdtemp's suffix
    host, _, pid = owner.rpartition("-")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def default_store_root() -> Path:
    """The store every entry point uses when neither --store nor PSF_STORE is given."""
    return Path(os.environ.get("PSF_STORE") or "store")


def check_name(kind: str, value: str) -> str:
    """Refuse names that could escape the store root or are awkward on disk."""
    if not isinstance(value, str) or not _NAME_RE.match(value) or value in {".", ".."}:
        raise ValueError(
            f"{kind} {value!r} is not allowed: use 1-64 letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return value


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.chmod(tmp, _FILE_MODE)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


class Store:
    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_store_root()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- reading -------------------------------------------------------------------------------
    def models(self) -> list[str]:
        if not self.root.is_dir():
            return []
        # a stray folder whose name could never be a model is not one (and must not make listing raise)
        return sorted(p.name for p in self.root.iterdir()
                      if _NAME_RE.match(p.name) and (p / "versions").is_dir() and self.versions(p.name))

    def versions(self, name: str) -> list[int]:
        folder = self.root / check_name("model name", name) / "versions"
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / MANIFEST_FILE).is_file())

    def aliases(self, name: str) -> dict[str, int]:
        refs = self.root / check_name("model name", name) / "refs"
        out: dict[str, int] = {}
        if refs.is_dir():
            for ref in sorted(refs.iterdir()):
                text = ref.read_text().strip()
                if not ref.name.startswith(".") and text.isdigit():
                    out[ref.name] = int(text)
        return out

    def resolve(self, name: str, version: int | str | None = None) -> int:
        """Turn a version number, a numeric string or an alias into a stored version number."""
        versions = self.versions(name)
        if not versions:
            known = ", ".join(self.models()) or "none"
            raise NotFoundError(f"model {name!r} is not in the store {self.root} (models: {known})")
        if version is None:
            version = DEFAULT_ALIAS
        if isinstance(version, int) or (isinstance(version, str) and version.isdigit()):
            number = int(version)
            if number not in versions:
                raise NotFoundError(f"model {name!r} has no version {number} (versions: {versions})")
            return number
        check_name("alias", version)
        aliases = self.aliases(name)
        if version not in aliases:
            if version == DEFAULT_ALIAS:
                return versions[-1]
            raise NotFoundError(
                f"model {name!r} has no alias {version!r} (aliases: {sorted(aliases) or 'none'}, "
                f"versions: {versions})"
            )
        return aliases[version]

    def version_dir(self, name: str, version: int | str | None = None) -> Path:
        return self.root / name / "versions" / str(self.resolve(name, version))

    def manifest(self, name: str, version: int | str | None = None, *, verify: bool = True) -> Manifest:
        folder = self.version_dir(name, version)
        try:
            manifest = Manifest.model_validate_json((folder / MANIFEST_FILE).read_bytes())
        except (OSError, ValidationError) as exc:
            raise IntegrityError(f"{folder / MANIFEST_FILE}: unreadable manifest: {exc}") from exc
        if manifest.name != name or str(manifest.version) != folder.name:
            raise IntegrityError(
                f"{folder}: manifest says {manifest.name}@{manifest.version}, folder says {name}@{folder.name}"
            )
        if verify:
            self._verify_files(folder, manifest)
        return manifest

    def _verify_files(self, folder: Path, manifest: Manifest) -> None:
        for file, expected in manifest.files.items():
            path = folder / file
            if not path.is_file():
                raise IntegrityError(f"{manifest.name}@{manifest.version}: file {file} is missing")
            actual = sha256_file(path)
            if actual != expected:
                raise IntegrityError(
                    f"{manifest.name}@{manifest.version}: file {file} has sha256 {actual[:12]}..., "
                    f"manifest says {expected[:12]}..."
                )

    def stale_staging(self, name: str | None = None) -> list[Path]:
        """Temporary folders left by publishers on this machine that were killed half-way."""
        pattern = f"{name}/{_STAGING}*" if name else f"*/{_STAGING}*"
        return sorted(p for p in self.root.glob(pattern) if p.is_dir() and _is_stale(p))

    def verify(self, name: str | None = None) -> dict[str, str]:
        """Check every version (of one model, or all). Returns {'name@version': 'ok' | problem}, and
        {'name/.publish-...': problem} for each leftover of an interrupted publish."""
        report: dict[str, str] = {}
        for folder in self.stale_staging(name):
            report[f"{folder.parent.name}/{folder.name}"] = (
                "temporary folder of an interrupted publish (its process is gone; never served); "
                "the next publish of this model removes it")
        for model in [name] if name else self.models():
            for version in self.versions(model):
                key = f"{model}@{version}"
                try:
                    self.manifest(model, version, verify=True)
                    report[key] = "ok"
                except StoreError as exc:
                    report[key] = str(exc)
        return report

    # -- writing -------------------------------------------------------------------------------
    def publish(
        self,
        name: str,
        files: Mapping[str, str | os.PathLike[str]],
        manifest: Mapping[str, Any],
        *,
        aliases: tuple[str, ...] = (DEFAULT_ALIAS,),
    ) -> Manifest:
        """Publish a new immutable version and point the aliases at it.

        ``files`` maps the stored file name to a source path; ``manifest`` holds every manifest field
        except name, version and files, which the store fills in. Nothing is visible until the final
        rename, so a failure leaves the store as it was.
        """
        check_name("model name", name)
        for file in files:
            check_name("file name", file)
        if MANIFEST_FILE in files:
            raise ValueError(f"{MANIFEST_FILE} is written by the store, not passed in files")
        try:
            version, validated = self._publish_files(name, files, manifest)
            for alias in aliases:
                self.set_alias(name, alias, version)
        except OSError as exc:  # disk full, read-only volume, permissions: say so, in the store's words
            raise PublishError(f"cannot publish {name} to the store {self.root}: {exc.strerror or exc} "
                               f"({type(exc).__name__}{', ' + exc.filename if exc.filename else ''}); "
                               "nothing was published") from exc
        return validated

    def _publish_files(self, name: str, files: Mapping[str, str | os.PathLike[str]],
                       manifest: Mapping[str, Any]) -> tuple[int, Manifest]:
        model_dir = self.root / name
        (model_dir / "versions").mkdir(parents=True, exist_ok=True)
        for stale in self.stale_staging(name):
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(dir=model_dir, prefix=_staging_prefix()))
        try:
            staging.chmod(_DIR_MODE)
            hashes: dict[str, str] = {}
            for file, src in files.items():
                dst = staging / file
                shutil.copyfile(src, dst)
                with open(dst, "rb") as fh:
                    os.fsync(fh.fileno())
                hashes[file] = sha256_file(dst)
            while True:
                version = (self.versions(name) or [0])[-1] + 1
                data = {**manifest, "name": name, "version": version, "files": hashes}
                try:
                    validated = Manifest.model_validate(data)
                except ValidationError as exc:
                    raise IntegrityError(f"refusing to publish {name}: invalid manifest: {exc}") from exc
                _write_atomic(staging / MANIFEST_FILE, validated.model_dump_json(indent=2))
                _fsync_dir(staging)
                target = model_dir / "versions" / str(version)
                try:
                    os.rename(staging, target)  # fails if another publisher took this number
                except OSError:
                    if target.exists():
                        continue
                    raise
                break
            _fsync_dir(target.parent)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return version, validated

    def set_alias(self, name: str, alias: str, version: int) -> None:
        check_name("alias", alias)
        if alias.isdigit():
            raise ValueError(f"alias {alias!r} is not allowed: aliases must not be plain numbers")
        number = self.resolve(name, int(version))
        _write_atomic(self.root / name / "refs" / alias, f"{number}\n")
