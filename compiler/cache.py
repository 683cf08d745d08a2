"""A persistent cache for `meshc check`, keyed by file content (the habit of ruff and mypy).

Two kinds of entry, both pickles under one directory per meshc fingerprint:
- per intent file, keyed by its path and git blob id: the parsed documents, the validated
  intents and the diagnostics loading reported for it, so an unchanged file is neither parsed
  nor validated again;
- per mesh root, the diagnostics of the last complete check with the blob id of every file
  it read: when no intent file changed, `meshc check` prints them without importing the
  compiler at all.

The fingerprint covers meshc's version, the Python version and the size and modification time
of every source file of meshc and of the libraries whose output is cached (pydantic, PyYAML),
so nothing is trusted across meshc versions, or even across an edit of an installed checkout.
An entry that cannot be read, whatever the reason, is a miss; a cache that cannot be written
is ignored. The directory is safe to delete at any time.

The cache lives in the user's cache directory ($MESHC_CACHE_DIR, else $XDG_CACHE_HOME/meshc,
else ~/.cache/meshc), never inside the mesh: intents come from untrusted pull requests, and
unpickling a file a pull request could plant would run its code.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pickle
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler import __version__
from compiler.diagnostics import Report
from compiler.loader import SourceTable
from compiler.stages import Stages

if TYPE_CHECKING:
    from compiler.build import Drift
    from compiler.loader import Loaded
    from policies.check import Check

ENVIRONMENT = "MESHC_CACHE_DIR"
_PACKAGES = ("compiler", "policies", "targets")
_LIBRARIES = ("pydantic", "pydantic_core", "yaml")


def default_directory() -> Path:
    explicit = os.environ.get(ENVIRONMENT)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "meshc"


def _fingerprint() -> str:
    digest = hashlib.sha256(f"{__version__}\0{sys.version}".encode())
    here = Path(__file__).resolve().parent.parent
    files = [here / package / name for package in _PACKAGES if (here / package).is_dir()
             for name in sorted(os.listdir(here / package)) if name.endswith(".py")]
    for library in _LIBRARIES:
        spec = importlib.util.find_spec(library)
        if spec is not None and spec.origin:
            files.append(Path(spec.origin))
    for path in files:
        try:
            status = path.stat()
        except OSError:
            continue
        digest.update(f"\0{path}\0{status.st_size}\0{status.st_mtime_ns}".encode())
    return digest.hexdigest()[:24]


class CheckCache:
    """`read_only`: entries are used, never written (`meshc build`: a fresh build in CI pays
    nothing for a cache it will not see again; `meshc check`, the pre-commit hook, fills it)."""

    def __init__(self, directory: Path, *, read_only: bool = False) -> None:
        self.base = directory
        self.directory = directory / _fingerprint()
        self.read_only = read_only
        # path -> (blob id, positions found in that version of the file), of one mesh root
        self._positions: dict[str, tuple[str, dict[tuple, tuple[int, int]]]] = {}
        self._root: Path | None = None  # the mesh root being checked (begin)
        self._files = os.path.join(self.directory, "files")

    # -- per file ---------------------------------------------------------------------------

    def _file_key(self, path: str, blob_id: str) -> str:
        key = hashlib.sha256(f"{path}\0{blob_id}".encode()).hexdigest()
        return os.path.join(self._files, key[:2], key[2:])  # a string: this runs for every file

    def load_file(self, path: str, blob_id: str) -> Any | None:
        return self._read(self._file_key(path, blob_id))

    def store_file(self, path: str, blob_id: str, entry: Any) -> None:
        self._write(self._file_key(path, blob_id), entry)

    def positions(self, path: str, blob_id: str) -> dict[tuple, tuple[int, int]]:
        kept = self._positions.get(path)
        if kept is None or kept[0] != blob_id:
            kept = self._positions[path] = (blob_id, {})
        return kept[1]

    # -- per mesh root ----------------------------------------------------------------------

    def _positions_key(self, root: Path) -> Path:
        return self.directory / "positions" / hashlib.sha256(os.fsencode(root.resolve())).hexdigest()

    def begin(self, root: Path) -> None:
        """Start a check of `root`: the positions found in its files by earlier checks
        (SourceTable.positions; a position is a function of the file's text, kept under the
        file's blob id), and the root the checks' results are kept for (known_checks)."""
        self._root = root
        entry = self._read(self._positions_key(root))
        self._positions = {}
        if not isinstance(entry, dict):
            return  # none yet, or a corrupt entry: a miss
        with contextlib.suppress(TypeError, ValueError):  # a corrupt entry is a miss
            self._positions = {path: (blob, found) for path, (blob, found) in entry.items()
                               if isinstance(path, str) and isinstance(blob, str) and _positions_of(found)}

    def store_positions(self, root: Path, blob_ids: dict[str, str]) -> None:
        """Keep the positions of the files this check read, under the blob ids it read."""
        kept = {path: (blob, found) for path, (blob, found) in self._positions.items()
                if found and blob_ids.get(path) == blob}
        self._write(self._positions_key(root), kept)

    def known_checks(self, loaded: Loaded) -> KnownChecks | None:
        """What each semantic check reported when it last ran on this root (None outside begin)."""
        if self._root is None:
            return None
        return KnownChecks(self, self.directory / "analysis" / self._positions_key(self._root).name, loaded)

    def _result_key(self, root: Path) -> Path:
        return self.directory / "checks" / hashlib.sha256(os.fsencode(root.resolve())).hexdigest()

    def load_result(self, root: Path, inputs: Any) -> Any | None:
        entry = self._read(self._result_key(root))
        if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == inputs:
            return entry[1]
        return None

    def store_result(self, root: Path, inputs: Any, result: Any) -> None:
        self._write(self._result_key(root), (inputs, result))

    # -- storage ----------------------------------------------------------------------------

    def _read(self, path: Path | str) -> Any | None:
        try:
            with open(path, "rb") as stream:
                return pickle.loads(stream.read())
        except Exception:  # noqa: BLE001 - a missing, truncated or corrupt entry is a miss
            return None

    def _write(self, path: Path | str, entry: Any) -> None:
        if self.read_only:
            return
        path = Path(path)
        try:
            if not self.directory.is_dir():
                self._start()
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(descriptor, "wb") as stream:
                    stream.write(pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL))
                os.replace(temporary, path)  # readers see the old entry or the new one, whole
            except BaseException:
                os.unlink(temporary)
                raise
        except (OSError, pickle.PicklingError, TypeError, AttributeError, RecursionError):
            pass  # a cache that cannot be written only makes the next run slower

    def _start(self) -> None:
        """A new fingerprint's directory; the entries of other fingerprints can never be used."""
        self.base.mkdir(parents=True, exist_ok=True, mode=0o700)
        tag = self.base / "CACHEDIR.TAG"
        if not tag.exists():
            tag.write_text("Signature: 8a477f597d28d172789f06886806bc55\n# meshc's check cache: safe to delete\n")
        for stale in self.base.iterdir():
            if stale.is_dir() and stale.name != self.directory.name:
                shutil.rmtree(stale, ignore_errors=True)
        self.directory.mkdir(exist_ok=True)


class KnownChecks:
    """A semantic check's diagnostics, kept by a digest of what it reads (policies.registry,
    KnownResults): the path and blob id of every file holding an intent of a kind the check
    declares (policies.check; tests/test_policies_reads.py holds checks to their declarations).
    Every such intent is in the graph whenever the check runs (a check over a kind an error
    left incomplete does not run), and a linked object of a kind carries values of the kinds
    GRAPH_FIELD_KINDS names, which the declaration includes: the same files, the same result."""

    def __init__(self, cache: CheckCache, path: Path, loaded: Loaded) -> None:
        self.cache = cache
        self.path = path
        self.files: dict[str, set[str]] = {}
        for intent in loaded.intents:
            self.files.setdefault(intent.kind, set()).add(intent.origin.file)
        self.blob_ids = loaded.sources.blob_ids
        earlier = cache._read(path)
        self.earlier: dict[str, Any] = earlier if isinstance(earlier, dict) else {}
        self.now: dict[str, tuple[str, list[tuple]]] = {}
        self.changed = False

    def _digest(self, check: Check) -> str:
        files = sorted(set().union(*(self.files.get(kind, ()) for kind in check.reads)))
        digest = hashlib.sha256(check.name.encode())
        for path in files:
            digest.update(f"\0{path}\0{self.blob_ids.get(path)}".encode())
        return digest.hexdigest()

    def recall(self, check: Check) -> list[tuple] | None:
        key = self._digest(check)
        entry = self.earlier.get(check.name)
        if (isinstance(entry, tuple) and len(entry) == 2 and entry[0] == key
                and _restore_report(entry[1]) is not None):
            self.now[check.name] = entry
            return entry[1]
        self.now[check.name] = (key, [])  # replaced by remember() once it has run
        return None

    def remember(self, check: Check, records: list[tuple]) -> None:
        self.now[check.name] = (self.now[check.name][0], records)
        self.changed = True

    def keep(self) -> None:
        if self.changed or self.now.keys() != self.earlier.keys():
            self.cache._write(self.path, {**self.earlier, **self.now})


def _positions_of(found: Any) -> bool:
    """Whether `found` is what SourceTable.positions holds for a file."""
    return isinstance(found, dict) and all(
        isinstance(where, tuple) and len(where) == 3 and type(where[0]) is int and isinstance(where[1], tuple)
        and type(where[2]) is bool and isinstance(at, tuple) and len(at) == 2 and all(type(n) is int for n in at)
        for where, at in found.items())


class _ReadOnce:
    """A worktree source whose files are listed and read once, for the key and for loading."""

    def __init__(self, root: Path) -> None:
        from compiler.loader import DEFAULT_OUTPUT, WorktreeSource

        self.worktree = WorktreeSource(root, (root / DEFAULT_OUTPUT,))  # as check_mesh skips it
        self.listing = list(self.worktree.files())
        self.contents: dict[str, bytes] = {}

    def files(self):
        return iter(self.listing)

    def read(self, path: str) -> bytes:
        content = self.contents.get(path)
        if content is None:
            content = self.contents[path] = self.worktree.read(path)
        return content

    def revision(self):
        return self.worktree.revision()

    def inputs(self) -> tuple | None:
        """(path, git blob id) of every file a check can read, or None if one cannot be read or
        the files are over the build's input budget (loading reports it; nothing is kept here)."""
        from compiler.loader import MAX_FILE_BYTES, MAX_INPUT_BYTES, git_blob_id

        if sum(min(max(size, 0), MAX_FILE_BYTES) for _, size in self.listing) > MAX_INPUT_BYTES:
            return None
        inputs = []
        for path, size in self.listing:
            if size > MAX_FILE_BYTES:
                inputs.append((path, f"size {size}"))
                continue
            try:
                inputs.append((path, git_blob_id(self.read(path))))
            except OSError:
                return None
        return tuple(inputs)


@dataclass
class Checked:
    """What `meshc check` prints from: the report and the source texts its snippets quote."""

    report: Report
    sources: SourceTable
    drift: Drift | None = None


def check(root: Path, cache: CheckCache, stages: Stages | None = None,
          compare_with: Path | None = None) -> Checked:
    """`meshc check` of a working tree through the cache: equal to an uncached check. With
    `compare_with` (an output directory, which the cache does not key), the last check's
    result is neither used nor kept; unchanged files still come from the cache."""
    stages = stages or Stages()
    with stages.stage("cache") as counted:
        source = _ReadOnce(root)
        inputs = source.inputs() if compare_with is None else None
        reported = cache.load_result(root, inputs) if inputs is not None else None
        restored = _restore_report(reported) if reported is not None else None
        counted.append("unchanged: the last check's diagnostics" if restored is not None
                       else f"{len(source.listing)} files listed")
    if restored is not None:
        return Checked(restored, _texts(source))
    from compiler.build import check_mesh
    from compiler.loader import git_blob_id

    cache.begin(root)
    compiled = check_mesh(root, source=source, cache=cache, stages=stages, compare_with=compare_with)
    if inputs is not None:
        cache.store_result(root, inputs, compiled.report.records())  # pickling finds every position
    cache.store_positions(root, {path: git_blob_id(content) for path, content in source.contents.items()})
    return Checked(compiled.report, compiled.sources, compiled.drift)


def _restore_report(reported: Any) -> Report | None:
    report = Report()
    try:
        report.add_records(reported)
    except (TypeError, ValueError, KeyError):
        return None
    return report


def _texts(source: _ReadOnce) -> SourceTable:
    sources = SourceTable()
    for path, content in source.contents.items():
        try:
            sources.texts[path] = content.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError:
            continue  # the loader keeps no text for such a file either
    return sources
