"""Load a mesh repo: find intent files, parse them, validate every document into a model.

Files come from the working tree or, with a revision, from git (the working tree untouched).
Every problem becomes a located diagnostic; nothing here raises for bad input.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import re
import stat
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from compiler import DEFAULT_OUTPUT, MANIFEST, codes
from compiler.diagnostics import Location, Rename, Report
from compiler.environments import PATCH, MergedDocument, Overlays, overlay_files

if TYPE_CHECKING:
    from compiler.yamlload import YamlDocument

MAX_FILE_BYTES = 4 * 1024 * 1024
# What one build reads in all (docs/diagnostics.md, MESH012): a pull request cannot make a
# hook or a CI job run out of memory with many files or many small documents.
MAX_INPUT_BYTES = 64 * 1024 * 1024
MAX_DOCUMENTS = 200_000
MESH_FILE = "mesh.yaml"
_SUPPRESSION = re.compile(r"#\s*meshc:\s*ignore\[([A-Z0-9, ]+)\]")


@dataclass(frozen=True)
class Origin:
    """Which document an object came from; positions are looked up in the SourceTable."""

    file: str
    document: int


@dataclass(frozen=True)
class Intent:
    kind: str
    model: Any  # a compiler.model.Strict subclass
    origin: Origin


@dataclass(frozen=True)
class Revision:
    commit: str | None  # None when read from a working tree outside git
    dirty: bool
    ref: str | None  # what the user asked for (--ref), None for the working tree


@dataclass
class SourceTable:
    """Side table of source text and parsed documents: (file, field path) -> line, column."""

    texts: dict[str, str] = field(default_factory=dict)
    documents: dict[tuple[str, int], YamlDocument | MergedDocument] = field(default_factory=dict)
    # git blob id of every intent file read: manifest.json records them as the build's inputs
    blob_ids: dict[str, str] = field(default_factory=dict)
    # in an environment: where a value an overlay set was located -> the base value it overrode
    overridden: dict[Location, Location] = field(default_factory=dict)
    environment: str | None = None
    # file -> (document, field path, key) -> (line, column), positions already found in that
    # file's text; the check cache keeps them by the file's blob id (compiler.cache)
    positions: dict[str, dict[tuple, tuple[int, int]]] = field(default_factory=dict, repr=False, compare=False)
    # each file split into lines once, however many diagnostics echo its lines
    _lines: dict[str, list[str]] = field(default_factory=dict, repr=False, compare=False)

    def locate(self, origin: Origin, *path: Any, key: bool = False) -> Location:
        document = self.documents.get((origin.file, origin.document))
        if document is None:
            return Location(origin.file, 1, 1)
        if isinstance(document, MergedDocument):  # in another file when an overlay set the value
            chain = document.chain(tuple(path))
            location = chain[-1].location(key=key)
            if len(chain) > 1:
                self.overridden[location] = chain[-2].location(key=key)
            return location
        known = self.positions.get(origin.file)
        if known is None:
            return Location.deferred(origin.file, lambda: document.locate(path, key=key))
        where = (origin.document, path, key)
        try:
            found = known.get(where)
        except TypeError:  # a path part that cannot be a key: found again each time
            return Location.deferred(origin.file, lambda: document.locate(path, key=key))
        if found is not None:
            return Location(origin.file, *found)
        return Location.deferred(origin.file, lambda: known.setdefault(where, document.locate(path, key=key)))

    def overlay_files(self) -> dict[str, frozenset[str]]:
        """In an environment: each base file -> the overlay files that changed its documents
        (compiler.environments.overlay_files); empty outside one."""
        if self.environment is None:
            return {}
        return overlay_files(iter(self.documents.items()))

    def with_overlays(self, files: Collection[str]) -> tuple[str, ...]:
        """`files`, sorted, with the overlay files that changed their documents."""
        overlays = self.overlay_files()
        return tuple(sorted({*files, *(o for f in files for o in overlays.get(f, ()))}))

    def line_text(self, location: Location) -> str | None:
        lines = self._lines.get(location.file)
        if lines is None:
            text = self.texts.get(location.file)
            if text is None:
                return None
            lines = self._lines[location.file] = text.splitlines()
        return lines[location.line - 1] if 0 < location.line <= len(lines) else None


@dataclass(frozen=True)
class InvalidDocument:
    """A document of a known kind that failed validation, by the identity it gives itself."""

    kind: str
    name: str
    namespace: str | None
    origin: Origin


@dataclass
class Loaded:
    intents: list[Intent]
    sources: SourceTable
    source: FileSource
    # documents of a known kind that failed validation: left out of linking, but their
    # identities resolve references to them (no "unknown reference" cascade)
    invalid: list[InvalidDocument] = field(default_factory=list)
    # a file could not be read or parsed, or a document names no known kind: anything could
    # be missing, so no reference is called unknown
    unread: bool = False

    @functools.cached_property
    def revision(self) -> Revision:
        """Asked only by builds: reading git state costs more than a whole `meshc check`."""
        return self.source.revision()


# --------------------------------------------------------------------------------------------
# Where files come from


class FileSource(Protocol):
    """Intent files of one mesh root: listed as (posix relative path, size), read as bytes."""

    def files(self) -> Iterator[tuple[str, int]]: ...

    def read(self, path: str) -> bytes: ...

    def revision(self) -> Revision: ...


class Refused(OSError):
    """A path under the mesh root that is listed but never read: it leads outside the root,
    is not a regular file, is a directory that cannot be listed, or is the manifest.json of an
    output directory (an info: the directory is skipped)."""

    def __init__(self, code: codes.Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# The size a FileSource lists for a refused path: reading it raises Refused.
REFUSED = -1

OUTPUT_DIRECTORY_NOTE = ("the manifest.json of a meshc build: this directory is an output directory, and nothing "
                         "below it is read as intents (list it in Mesh.exclude to say so)")


def is_build_output(directory: Path) -> bool:
    """Whether `directory` holds the manifest.json of a meshc build, read as the output
    directory's files are (no link followed, a regular file, bounded)."""
    if not os.path.lexists(directory / MANIFEST):
        return False
    from compiler.manifest import ManifestError, parse_manifest, read_build_file

    try:
        parse_manifest(read_build_file(directory, MANIFEST, MAX_INPUT_BYTES))
    except (OSError, ManifestError):
        return False
    return True


class FileCache(Protocol):
    """What loading keeps of an unchanged file between runs (compiler.cache.CheckCache)."""

    def load_file(self, path: str, blob_id: str) -> Any | None: ...

    def store_file(self, path: str, blob_id: str, entry: Any) -> None: ...

    def positions(self, path: str, blob_id: str) -> dict[tuple, tuple[int, int]]:
        """The positions found so far in this version of the file (SourceTable.positions)."""
        ...

    def known_checks(self, loaded: Loaded) -> Any:
        """What the checks found in earlier runs (policies.registry.KnownResults), with keep()."""
        ...


class WorktreeSource:
    def __init__(self, root: Path, skip_dirs: tuple[Path, ...] = ()) -> None:
        self.root = root
        self.real_root = root.resolve()
        self.skip = {p.resolve() for p in skip_dirs}
        self.refused: dict[str, Refused] = {}
        # per file, strings rather than Paths: a 10,000-service mesh has 10,000 files
        self._prefix = _directory_prefix(os.fspath(root))
        self._real_prefix = _directory_prefix(os.fspath(self.real_root))

    def _refuse(self, path: str, code: codes.Code, message: str) -> tuple[str, int]:
        self.refused[path] = Refused(code, message)
        return path, REFUSED

    def files(self) -> Iterator[tuple[str, int]]:
        unlistable: list[OSError] = []
        for directory, subdirs, names in os.walk(self.root, onerror=unlistable.append):
            here = Path(directory)
            relative_dir = here.relative_to(self.root).as_posix()
            yield from self._unlistable(unlistable)
            if relative_dir != "." and (here / ".git").exists():
                yield self._refuse(relative_dir, codes.OUTSIDE_MESH_ROOT,
                                   "a git submodule: its files belong to another repository and are not read")
                subdirs[:] = []
                continue
            kept = []
            for name in sorted(subdirs):
                full = here / name
                if name.startswith(".") or full.resolve() in self.skip or (relative_dir, name) == (".", DEFAULT_OUTPUT):
                    continue
                if full.is_symlink() and not full.resolve().is_relative_to(self.real_root):
                    yield self._refuse(full.relative_to(self.root).as_posix(), codes.OUTSIDE_MESH_ROOT,
                                       "a symbolic link to a directory outside the mesh root; not read")
                    continue
                if not full.is_symlink() and is_build_output(full):
                    yield self._refuse(f"{full.relative_to(self.root).as_posix()}/{MANIFEST}",
                                       codes.OUTPUT_DIRECTORY, OUTPUT_DIRECTORY_NOTE)
                    continue
                kept.append(name)  # a link inside the root is not followed: its target is walked
            subdirs[:] = kept
            for name in sorted(names):
                if name.endswith((".yaml", ".yml")) and not name.startswith("."):
                    yield self._entry(os.path.join(directory, name))
        yield from self._unlistable(unlistable)

    def _unlistable(self, errors: list[OSError]) -> Iterator[tuple[str, int]]:
        for error in errors:
            failed = Path(error.filename).relative_to(self.root).as_posix()
            yield self._refuse(failed, codes.UNREADABLE_FILE, f"cannot list the directory: {error.strerror or error}")
        errors.clear()

    def _entry(self, full: str) -> tuple[str, int]:
        relative = full[len(self._prefix):]  # os.walk joins below root as given
        try:
            relative.encode("utf-8")
        except UnicodeEncodeError:  # bytes os.walk could not decode, kept as surrogates
            shown = os.fsencode(relative).decode("utf-8", "backslashreplace")
            return self._refuse(shown, codes.UNREADABLE_FILE, "the file name is not UTF-8; rename the file")
        try:
            target = self._inside(full)
            if target is None:
                return self._refuse(relative, codes.OUTSIDE_MESH_ROOT,
                                    "a symbolic link to a file outside the mesh root; not read")
            status = os.stat(target)
        except OSError as error:
            return self._refuse(relative, codes.UNREADABLE_FILE, f"cannot read the file: {_unreadable(error)}")
        if not stat.S_ISREG(status.st_mode):
            return self._refuse(relative, codes.UNREADABLE_FILE,
                                "not a regular file (a FIFO, socket or device is never opened)")
        return relative, status.st_size

    def _inside(self, path: str) -> str | None:
        """Where `path` really is (every link followed; OSError if it does not exist), or None
        when that is outside the mesh root."""
        target = os.path.realpath(path, strict=True)
        return target if target.startswith(self._real_prefix) else None

    def read(self, path: str) -> bytes:
        if path in self.refused:
            raise self.refused[path]
        target = self._inside(self._prefix + path)
        if target is None:  # replaced by a link since it was listed
            raise Refused(codes.OUTSIDE_MESH_ROOT, "a symbolic link to a file outside the mesh root; not read")
        # O_NONBLOCK: a FIFO swapped in after listing does not block the open; fstat refuses it
        descriptor = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            status = os.fstat(descriptor)
            if not stat.S_ISREG(status.st_mode):
                raise Refused(codes.UNREADABLE_FILE, "not a regular file (a FIFO, socket or device is never opened)")
            return read_limited(descriptor, status.st_size, MAX_FILE_BYTES)
        finally:
            os.close(descriptor)

    def revision(self) -> Revision:
        from compiler.gitsource import worktree_revision

        return worktree_revision(self.root, tuple(self.skip))


def _directory_prefix(directory: str) -> str:
    """`directory` ending in one slash, ready to join a relative path to."""
    return directory if directory.endswith("/") else f"{directory}/"


def _unreadable(error: OSError) -> str:
    return "a symbolic link loop" if error.errno == errno.ELOOP else (error.strerror or str(error))


def read_limited(descriptor: int, size: int, limit: int) -> bytes:
    """At most limit + 1 bytes of an open file whose fstat gave `size`: one byte over the limit
    tells the caller it is too large (or grew too large since). Reads ask for the size, not the
    limit: a read of the limit would allocate the limit, for every file."""
    chunks = []
    left = limit + 1
    while left and (chunk := os.read(descriptor, min(left, max(size + 1, 65536)))):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def glob_matches(pattern: str, path: str) -> bool:
    """Whether a Mesh.exclude glob matches a path or one of its directories: `*` and `?`
    within a path segment, a `**` segment across any number of segments.

    Matched segment by segment with the classic two-pointer wildcard algorithm: time is
    bounded by the product of the lengths, never exponential as a backtracking regular
    expression is on patterns such as `*a*a*a*...b`."""
    pattern_parts = pattern.split("/")
    states = {0}  # pattern segments consumed so far, for each way of matching
    for segment in path.split("/"):
        states = _expand(pattern_parts, states)
        if len(pattern_parts) in states:
            return True  # the pattern matched a directory of the path
        states = {i if pattern_parts[i] == "**" else i + 1 for i in states
                  if i < len(pattern_parts)
                  and (pattern_parts[i] == "**" or _segment_matches(pattern_parts[i], segment))}
        if not states:
            return False
    return len(pattern_parts) in _expand(pattern_parts, states)


def _expand(parts: list[str], states: set[int]) -> set[int]:
    """States with every `**` also skipped (it matches no segment too)."""
    out = set(states)
    for i in sorted(states):
        while i < len(parts) and parts[i] == "**":
            i += 1
            out.add(i)
    return out


def _segment_matches(pattern: str, text: str) -> bool:
    p = t = 0
    star, resume = -1, 0
    while t < len(text):
        if p < len(pattern) and (pattern[p] == "?" or pattern[p] == text[t]):
            p, t = p + 1, t + 1
        elif p < len(pattern) and pattern[p] == "*":
            star, resume = p, t
            p += 1
        elif star >= 0:
            p, resume = star + 1, resume + 1
            t = resume
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


# --------------------------------------------------------------------------------------------
# Loading


def load(source: FileSource, report: Report, cache: FileCache | None = None,
         environment: str | None = None) -> Loaded:
    """Every intent of the mesh; with a cache, an unchanged file is neither parsed nor validated.
    Files in the overlay folders of Mesh.environments are never part of the base; with
    `environment`, its overlays are applied to the base (compiler.environments)."""
    sources = SourceTable(environment=environment)
    intents: list[Intent] = []
    listing = dict(source.files())
    if MESH_FILE not in listing:
        report.add(codes.NO_MESH, f"no {MESH_FILE} at the mesh root", None,
                   hint="run `meshc init DIR` to start a mesh repo, or pass the directory holding mesh.yaml")
        return Loaded(intents, sources, source)

    declared = declared_environments(source, listing)
    folders = sorted({folder for e in declared.environments for folder in e.folders()})
    overlays = None
    read_bytes = max(listing[MESH_FILE], 0)
    if environment is not None:
        overlays, read_bytes = _load_overlays(source, listing, declared, environment, sources, report, read_bytes)
    mesh_intents = _load_file(source, MESH_FILE, listing[MESH_FILE], sources, report, cache, overlays)
    excludes = [DEFAULT_OUTPUT]
    for intent in mesh_intents:
        if intent.kind == "Mesh":
            excludes.extend(intent.model.exclude)
    patterns = [p.strip("/") for p in excludes]
    intents.extend(mesh_intents)
    included = [path for path in sorted(listing)
                if path != MESH_FILE and not any(glob_matches(p, path) for p in patterns)
                and not in_folders(path, folders)]
    for number, path in enumerate(included):
        size = max(listing[path], 0)
        if read_bytes + min(size, MAX_FILE_BYTES) > MAX_INPUT_BYTES or len(sources.documents) >= MAX_DOCUMENTS:
            spent = (f"{MAX_INPUT_BYTES // (1024 * 1024)} MiB" if len(sources.documents) < MAX_DOCUMENTS
                     else f"{MAX_DOCUMENTS} documents")
            report.add(codes.INPUT_BUDGET, f"the intent files before this one use up the input budget of {spent}; "
                       f"this file and the {len(included) - number - 1} after it are not read", Location(path, 1, 1))
            break
        read_bytes += min(size, MAX_FILE_BYTES)
        intents.extend(_load_file(source, path, listing[path], sources, report, cache, overlays))
    if overlays is not None:
        intents.extend(_added_documents(overlays, sources, report))
    _check_mesh_placement(intents, sources, report)
    return _with_holes(Loaded(intents, sources, source), report)


@dataclass(frozen=True)
class Declared:
    """What mesh.yaml declares before anything is validated: the environments and the default
    namespace overlays are matched in (both as the base writes them)."""

    environments: tuple[Any, ...] = ()  # compiler.model.Environment
    default_namespace: str = "default"
    exclude: tuple[str, ...] = ()  # Mesh.exclude: overlay files it matches are not read either

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.environments]


def declared_environments(source: FileSource, listing: dict[str, int] | None = None) -> Declared:
    """The environments mesh.yaml's Mesh declares; none when it cannot be read or they do not
    validate (loading mesh.yaml reports why)."""
    from pydantic import TypeAdapter, ValidationError

    from compiler.model import Environment, Mesh, check_environments
    from compiler.yamlload import YamlProblem, load_documents

    listing = listing if listing is not None else dict(source.files())
    if not 0 <= listing.get(MESH_FILE, -1) <= MAX_FILE_BYTES:
        return Declared()
    try:
        text = source.read(MESH_FILE).decode("utf-8").removeprefix("\ufeff")
        if "environments" not in text:  # most meshes: mesh.yaml is not parsed twice
            return Declared()
        documents = load_documents(text)
    except (OSError, UnicodeDecodeError, YamlProblem):
        return Declared()
    mesh = next((d.data for d in documents if isinstance(d.data, dict) and d.data.get("kind") == "Mesh"), None)
    if mesh is None:
        return Declared()
    namespace = mesh.get("defaultNamespace", Mesh.model_fields["defaultNamespace"].default)
    try:
        environments = TypeAdapter(list[Environment]).validate_python(mesh.get("environments", []), strict=True)
        check_environments(environments)
    except (ValidationError, ValueError):
        return Declared()
    exclude = mesh.get("exclude", [])
    return Declared(tuple(environments), namespace if isinstance(namespace, str) else "default",
                    tuple(e for e in exclude if isinstance(e, str)) if isinstance(exclude, list) else ())


def in_folders(path: str, folders: list[str]) -> bool:
    return any(path.startswith(folder + "/") for folder in folders)


def _load_overlays(source: FileSource, listing: dict[str, int], declared: Declared, environment: str,
                   sources: SourceTable, report: Report, read_bytes: int) -> tuple[Overlays, int]:
    """The overlay documents of `environment`, parsed (not validated: they are partial)."""
    from compiler.yamlload import YamlProblem, load_documents

    overlays = Overlays(environment, default_namespace=declared.default_namespace)
    chosen = next((e for e in declared.environments if e.name == environment), None)
    if chosen is None:
        report.add(codes.UNKNOWN_ENVIRONMENT, f"the mesh declares no environment {environment!r} "
                   f"(it declares: {', '.join(declared.names) or 'none'})", Location(MESH_FILE, 1, 1))
        return overlays, read_bytes
    patterns = [p.strip("/") for p in (DEFAULT_OUTPUT, *declared.exclude)]
    for folder in chosen.folders():
        files = [path for path in sorted(listing) if in_folders(path, [folder])
                 and not any(glob_matches(p, path) for p in patterns)]
        if not files:
            report.add(codes.OVERLAY_FOLDER_MISSING, f"environment {environment}: overlay folder {folder}/ holds no "
                       "intent file", Location(MESH_FILE, 1, 1))
        for path in files:
            size = max(listing[path], 0)
            if read_bytes + min(size, MAX_FILE_BYTES) > MAX_INPUT_BYTES:
                report.add(codes.INPUT_BUDGET, "the intent files before this one use up the input budget; "
                           "this overlay is not read", Location(path, 1, 1))
                continue
            read_bytes += min(size, MAX_FILE_BYTES)
            text = _read_text(source, path, listing[path], sources, report)
            if text is None:
                continue
            _record_suppressions(path, text, report)  # `# meshc: ignore[...]` on a line an overlay sets
            try:
                documents = load_documents(text, max_documents=max(1, MAX_DOCUMENTS - len(sources.documents)))
            except YamlProblem as problem:
                report.add(problem.code, problem.message, Location(path, problem.line, problem.column))
                continue
            overlays.add(path, folder, documents, report)
    return overlays, read_bytes


def _added_documents(overlays: Overlays, sources: SourceTable, report: Report) -> list[Intent]:
    """The documents an environment's overlays add (`$patch: add`), validated as written."""
    import dataclasses

    from compiler.model import API_VERSION

    intents = []
    for overlay in overlays.additions(report):
        data = {"apiVersion": API_VERSION, **{k: v for k, v in overlay.document.data.items() if k != PATCH}}
        document = dataclasses.replace(overlay.document, data=data)
        sources.documents[(overlay.file, document.index)] = document
        intent = _validate(document, Origin(overlay.file, document.index), sources, report)
        if intent is not None:
            intents.append(intent)
    return intents


def _with_holes(loaded: Loaded, report: Report) -> Loaded:
    """Record what loading left out, so that linking and analysis can still run on the rest
    (compiler.build.compile_mesh): documents that failed validation, by identity, and whether
    some file or document could not be identified at all."""
    from compiler.model import API_VERSION, KIND_MODELS

    validated = {(intent.origin.file, intent.origin.document) for intent in loaded.intents}
    for (file, index), document in loaded.sources.documents.items():
        data = document.data
        if (file, index) in validated or data is None:
            continue
        kind, name, namespace = (data.get(key) for key in ("kind", "name", "namespace")) if isinstance(data, dict) \
            else (None, None, None)
        if (isinstance(data, dict) and data.get("apiVersion") == API_VERSION and isinstance(kind, str)
                and kind in KIND_MODELS and isinstance(name, str) and isinstance(namespace, (str, type(None)))):
            loaded.invalid.append(InvalidDocument(kind, name, namespace, Origin(file, index)))
        else:
            loaded.unread = True
    parsed = {file for file, _ in loaded.sources.documents}
    loaded.unread |= any(d.severity == "error" and (d.location is None or d.location.file not in parsed)
                         for d in report.diagnostics)
    return loaded


def _check_mesh_placement(intents: list[Intent], sources: SourceTable, report: Report) -> None:
    meshes = [i for i in intents if i.kind == "Mesh"]
    for intent in meshes:
        if intent.origin.file != MESH_FILE:
            report.add(codes.MESH_PLACEMENT, "a Mesh document belongs in mesh.yaml at the mesh root",
                       sources.locate(intent.origin, "kind"))
    in_place = [i for i in meshes if i.origin.file == MESH_FILE]
    for extra in in_place[1:]:
        report.add(codes.MESH_PLACEMENT, "mesh.yaml holds more than one Mesh document",
                   sources.locate(extra.origin, "kind"))
    if not in_place and not report.has_errors:
        report.add(codes.NO_MESH, "mesh.yaml holds no Mesh document", Location(MESH_FILE, 1, 1))


def _load_file(
    source: FileSource, path: str, size: int, sources: SourceTable, report: Report, cache: FileCache | None,
    overlays: Overlays | None = None,
) -> list[Intent]:
    text = _read_text(source, path, size, sources, report)
    if text is None:
        return []
    _record_suppressions(path, text, report)
    # a cached file counts against the document budget as a parsed one: an entry holding more
    # documents than the budget has left is not used, and a file the budget cut is not kept
    budget_left = max(1, MAX_DOCUMENTS - len(sources.documents))
    blob_id = sources.blob_ids[path]
    entry = None
    if cache is not None:
        sources.positions[path] = cache.positions(path, blob_id)
        entry = cache.load_file(path, blob_id)
    if entry is not None and not _overlaid(entry, overlays):
        restored = _restore(entry, path, text, budget_left, sources, report)
        if restored is not None:
            return restored
    first = len(report.diagnostics)
    documents, intents = _parse_and_validate(path, text, budget_left, sources, report, overlays)
    if cache is not None and not any(overlays is not None and overlays.touches(d.data) for d in documents):
        reported = report.records(first)
        if not any(record[0] == codes.INPUT_BUDGET.code for record in reported):
            cached_intents = [(i.kind, i.model, i.origin.document) for i in intents]
            cache.store_file(path, blob_id, ([(d.data, d.line) for d in documents], cached_intents, reported))
    return intents


def _overlaid(entry: Any, overlays: Overlays | None) -> bool:
    """Whether an environment's overlays change a document of a cached file (its cached intents
    are the base's, so the file is loaded again)."""
    if overlays is None:
        return False
    try:
        return any(overlays.touches(data) for data, _ in entry[0])
    except (TypeError, ValueError, IndexError):
        return True


def _read_text(source: FileSource, path: str, size: int, sources: SourceTable, report: Report) -> str | None:
    """The text of an intent file, recorded in sources (with its blob id); None, reported, when
    it cannot be read as UTF-8 within the size limit."""
    if size > MAX_FILE_BYTES:
        report.add(codes.FILE_TOO_LARGE, f"{size} bytes is over the {MAX_FILE_BYTES}-byte limit",
                   Location(path, 1, 1))
        return None
    try:
        raw = source.read(path)
    except Refused as refused:
        report.add(refused.code, refused.message, Location(path, 1, 1))
        return None
    except OSError as error:
        report.add(codes.UNREADABLE_FILE, f"cannot read the file: {error.strerror or error}",
                   Location(path, 1, 1))
        return None
    if len(raw) > MAX_FILE_BYTES:  # grew since it was listed
        report.add(codes.FILE_TOO_LARGE, f"the file is over the {MAX_FILE_BYTES}-byte limit", Location(path, 1, 1))
        return None
    sources.blob_ids[path] = git_blob_id(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        before = raw[: error.start]
        line = before.count(b"\n") + 1
        column = error.start - (before.rfind(b"\n") + 1) + 1
        report.add(codes.UNREADABLE_FILE, f"byte 0x{raw[error.start]:02x} is not valid UTF-8",
                   Location(path, line, column))
        return None
    if text.startswith("\ufeff"):
        text = text[1:]
    sources.texts[path] = text
    return text


def _parse_and_validate(path: str, text: str, max_documents: int, sources: SourceTable,
                        report: Report, overlays: Overlays | None = None) -> tuple[list[YamlDocument], list[Intent]]:
    from compiler.yamlload import YamlProblem, load_documents

    try:
        documents = load_documents(text, max_documents=max_documents)
    except YamlProblem as problem:
        report.add(problem.code, problem.message,
                   Location(path, problem.line, problem.column))
        return [], []
    intents = []
    for written in documents:
        document = overlays.apply(path, written, report) if overlays is not None else written
        if document is None:
            continue  # deleted in this environment
        sources.documents[(path, document.index)] = document
        intent = _validate(document, Origin(path, document.index), sources, report)
        if intent is not None:
            intents.append(intent)
    return documents, intents


def _restore(entry: Any, path: str, text: str, max_documents: int, sources: SourceTable,
             report: Report) -> list[Intent] | None:
    """A cached file's documents, intents and diagnostics, or None for a miss, a malformed entry
    or more documents than `max_documents` (parsing reports the budget)."""
    from compiler.yamlload import restore_documents

    try:
        loaded, cached_intents, reported = entry
        if len(loaded) > max_documents:
            return None
        documents = restore_documents(text, [(data, int(line)) for data, line in loaded])
        intents = [Intent(kind, model, Origin(path, index)) for kind, model, index in cached_intents]
        report.add_records(reported)
    except (TypeError, ValueError, KeyError):
        return None
    for document in documents:
        sources.documents[(path, document.index)] = document
    return intents


def git_blob_id(content: bytes) -> str:
    """The id git gives a blob with this content, so files compare with a commit's."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _record_suppressions(path: str, text: str, report: Report) -> None:
    if "meshc:" not in text:
        return
    for number, line in enumerate(text.splitlines(), start=1):
        match = _SUPPRESSION.search(line)
        if match:
            found = frozenset(c.strip() for c in match.group(1).split(",") if c.strip())
            report.line_suppressions[(path, number)] = found


def _validate(document: YamlDocument, origin: Origin, sources: SourceTable, report: Report) -> Intent | None:
    from compiler.model import API_VERSION, KIND_MODELS

    data = document.data
    if data is None:
        return None
    where = Location(origin.file, document.line, 1)
    if not isinstance(data, dict):
        report.add(codes.NOT_AN_INTENT, f"a document must be a mapping, not a {type(data).__name__}", where)
        return None
    for required in ("apiVersion", "kind"):
        if required not in data:
            report.add(codes.NOT_AN_INTENT, f"the document has no {required}", where,
                       hint="every document starts with `apiVersion: meshc/v1` and `kind: <Kind>`")
            return None
    if data["apiVersion"] != API_VERSION:
        report.add(codes.UNKNOWN_API_VERSION, f"apiVersion {data['apiVersion']!r} is not {API_VERSION}",
                   sources.locate(origin, "apiVersion"))
        return None
    kind = data["kind"]
    model = KIND_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        report.add(codes.UNKNOWN_KIND, f"kind {kind!r} is not one of {', '.join(KIND_MODELS)}",
                   sources.locate(origin, "kind"))
        return None
    from pydantic import ValidationError

    try:
        return Intent(kind, model.model_validate(data), origin)
    except ValidationError as error:
        _report_validation(error, kind, origin, document, sources, report)
        return None



def _report_validation(
    error: Any, kind: str, origin: Origin, document: YamlDocument, sources: SourceTable, report: Report
) -> None:
    from compiler.fields import nested_model_at
    from compiler.model import LABEL, NAME_PATTERN, NAME_PATTERN_MEANINGS

    seen: set[tuple[int, int]] = set()
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        kind_of_error = item["type"]
        message = item["msg"].removeprefix("Value error, ")
        hint, fix = None, None
        if kind_of_error == "extra_forbidden":
            code = codes.UNKNOWN_FIELD
            nested = nested_model_at(document.data, loc)  # the object the key is in
            message = f"{nested.__name__ if nested is not None else kind} has no field {loc[-1]!r} here"
            location = sources.locate(origin, *loc, key=True)
            hint, fix = _did_you_mean(document.data, loc, location)
        elif kind_of_error == "missing":
            code = codes.MISSING_FIELD
            message = f"required field {loc[-1]!r} is missing"
            location = sources.locate(origin, *loc[:-1], key=True)
        else:
            location = sources.locate(origin, *loc)
            pattern = str((item.get("ctx") or {}).get("pattern", ""))
            if kind_of_error == "string_pattern_mismatch" and LABEL in pattern:
                code = codes.INVALID_NAME
                meaning = NAME_PATTERN_MEANINGS.get(pattern, NAME_PATTERN_MEANINGS[NAME_PATTERN])
                message = f"{item['input']!r} is not {meaning}"
            elif kind_of_error == "value_error" and "duration" in message:
                code = codes.INVALID_DURATION
            elif kind_of_error == "value_error":
                code = codes.INCONSISTENT_FIELDS
            else:
                code = codes.INVALID_VALUE
        position = (location.line, location.column)
        if position in seen:
            continue
        seen.add(position)
        path = _field_path(document.data, loc, missing=kind_of_error == "missing")
        report.add(code, f"{path}: {message}" if path else message, location, hint=hint, fix=fix)


def _did_you_mean(data: Any, loc: tuple[Any, ...], location: Location) -> tuple[str | None, Rename | None]:
    from compiler.fields import suggest_field

    suggestion = suggest_field(data, loc)
    if suggestion is None:
        return None, None
    if suggestion.fixable:
        return (f"did you mean {suggestion.field!r}? (`meshc check --fix` renames it)",
                Rename(location, str(loc[-1]), suggestion.field))
    return f"did you mean {suggestion.field!r}?", None


def _field_path(data: Any, loc: tuple[Any, ...], *, missing: bool) -> str:
    """`rules[0].to[1].weight` from a pydantic loc, without its union tags (not in the data)."""
    out = ""
    node = data
    for index, part in enumerate(loc):
        present = isinstance(node, (dict, list)) and (
            part in node if isinstance(node, dict) else isinstance(part, int) and 0 <= part < len(node)
        )
        if present:
            node = node[part]
        elif not (missing and index == len(loc) - 1):
            continue  # a union tag, or a key under a value that is not a mapping
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
