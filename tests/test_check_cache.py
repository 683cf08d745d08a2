"""The persistent check cache (compiler.cache): whatever changed, a cached `meshc check`
prints exactly what an uncached one prints, and unchanged files are not read again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import compiler.cache
import compiler.loader
import compiler.yamlload
from compiler.cli import main

runner = CliRunner()

BROKEN = {
    # a validation error, a YAML error, a reference error and a used suppression
    "services/bad.yaml": "apiVersion: meshc/v1\nkind: Service\nname: bad\nports: [{name: http, port: 99999}]\n",
    "services/syntax.yaml": "apiVersion: meshc/v1\nkind: Service\nname: [unclosed\n",
}


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv(compiler.cache.ENVIRONMENT, str(directory))
    return directory


def _check(root: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(main, ["check", str(root), "--format", "json", "--fail-on", "info", *extra])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, result.output


def _assert_same_as_uncached(root: Path) -> tuple[int, str]:
    cached = _check(root)
    assert cached == _check(root, "--no-cache")
    return cached


def _parsed_files(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the files parsed from here on (one entry per load_documents call)."""
    calls: list[int] = []
    original = compiler.yamlload.load_documents

    def counting(text: str, *args, **kwargs):
        calls.append(1)
        return original(text, *args, **kwargs)

    monkeypatch.setattr(compiler.yamlload, "load_documents", counting)
    return calls


def test_unchanged_mesh_is_answered_from_the_cache(bookinfo_copy: Path, cache_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    first = _check(bookinfo_copy)
    import compiler.build

    def refuse(*_, **__):
        raise AssertionError("an unchanged mesh was compiled again")

    monkeypatch.setattr(compiler.build, "compile_mesh", refuse)
    assert _check(bookinfo_copy) == first
    assert (cache_dir / "CACHEDIR.TAG").is_file()


def test_only_the_changed_file_is_parsed_again(bookinfo_copy: Path, cache_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _check(bookinfo_copy)
    service = next((bookinfo_copy / "services").glob("*.yaml"))
    service.write_text(service.read_text() + "\n# an edit\n")
    parsed = _parsed_files(monkeypatch)
    cached = _check(bookinfo_copy)
    assert len(parsed) == 1
    assert cached == _check(bookinfo_copy, "--no-cache")


def test_edit_rename_and_delete_give_what_an_uncached_check_gives(make_mesh, bookinfo_copy: Path,
                                                                  cache_dir: Path) -> None:
    clean = _assert_same_as_uncached(bookinfo_copy)
    assert clean[0] == 0
    make_mesh(BROKEN, root=bookinfo_copy)  # edit: new files with errors
    broken = _assert_same_as_uncached(bookinfo_copy)
    assert broken[0] == 1 and "services/bad.yaml" in broken[1] and "services/syntax.yaml" in broken[1]
    (bookinfo_copy / "services" / "bad.yaml").rename(bookinfo_copy / "services" / "renamed.yaml")
    renamed = _assert_same_as_uncached(bookinfo_copy)
    assert "services/renamed.yaml" in renamed[1] and "services/bad.yaml" not in renamed[1]
    (bookinfo_copy / "services" / "renamed.yaml").unlink()
    (bookinfo_copy / "services" / "syntax.yaml").unlink()
    assert _assert_same_as_uncached(bookinfo_copy) == clean
    target = next((bookinfo_copy / "services").glob("*.yaml"))
    target.unlink()  # delete a service others reference
    deleted = _assert_same_as_uncached(bookinfo_copy)
    assert deleted[0] == 1


def test_a_new_meshc_version_starts_a_new_cache(bookinfo_copy: Path, cache_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    first = _check(bookinfo_copy)
    [old] = [p for p in cache_dir.iterdir() if p.is_dir()]
    monkeypatch.setattr(compiler.cache, "__version__", "999.0.0")
    parsed = _parsed_files(monkeypatch)
    assert _check(bookinfo_copy) == first
    assert len(parsed) == len(list(bookinfo_copy.rglob("*.yaml")))  # nothing was taken from the old one
    [new] = [p for p in cache_dir.iterdir() if p.is_dir()]
    assert new.name != old.name  # and the old version's entries are gone


def test_corrupt_entries_are_ignored(make_mesh, bookinfo_copy: Path, cache_dir: Path) -> None:
    make_mesh(BROKEN, root=bookinfo_copy)
    expected = _check(bookinfo_copy, "--no-cache")
    _check(bookinfo_copy)
    entries = [p for p in cache_dir.rglob("*") if p.is_file() and p.name != "CACHEDIR.TAG"]
    assert entries
    for garbage in (b"", b"not a pickle", b"\x80\x05N."):  # empty, junk, a valid pickle of None
        for entry in entries:
            entry.write_bytes(garbage)
        assert _check(bookinfo_copy) == expected


def test_an_unwritable_cache_changes_nothing(bookinfo_copy: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    monkeypatch.setenv(compiler.cache.ENVIRONMENT, str(blocked))
    assert _check(bookinfo_copy) == _check(bookinfo_copy, "--no-cache")


def test_the_cache_lives_outside_the_mesh(bookinfo_copy: Path, monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    monkeypatch.delenv(compiler.cache.ENVIRONMENT, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    before = sorted(p.relative_to(bookinfo_copy) for p in bookinfo_copy.rglob("*"))
    _check(bookinfo_copy)
    assert sorted(p.relative_to(bookinfo_copy) for p in bookinfo_copy.rglob("*")) == before
    assert (tmp_path / "xdg" / "meshc" / "CACHEDIR.TAG").is_file()
    shutil.rmtree(tmp_path / "xdg")  # safe to delete
    assert _check(bookinfo_copy)[0] == 0


def _touch(root: Path) -> None:
    """An edit to one file: the last check's result no longer applies, the other files' entries do."""
    mesh = root / "mesh.yaml"
    mesh.write_text(mesh.read_text() + "\n# touched\n")


def test_cached_files_count_against_the_document_budget(bookinfo_copy: Path, cache_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file in the cache, then a budget smaller than the mesh: the files served from the
    cache use it up as parsed ones do, and the diagnostics are those of an uncached check."""
    _check(bookinfo_copy)
    monkeypatch.setattr(compiler.loader, "MAX_DOCUMENTS", 10)
    _touch(bookinfo_copy)
    parsed = _parsed_files(monkeypatch)
    cached = _check(bookinfo_copy)
    assert len(parsed) < len(list(bookinfo_copy.rglob("*.yaml"))) - 1  # most came from the cache
    assert cached == _check(bookinfo_copy, "--no-cache")
    assert cached[0] == 1 and "MESH012" in cached[1]
    monkeypatch.setattr(compiler.loader, "MAX_DOCUMENTS", 200_000)
    _touch(bookinfo_copy)
    assert _assert_same_as_uncached(bookinfo_copy)[0] == 0  # a file the budget cut was not kept


def test_links_outside_the_mesh_root_are_refused_with_the_cache(bookinfo_copy: Path, cache_dir: Path,
                                                                tmp_path: Path) -> None:
    outside = tmp_path / "secret.yaml"
    outside.write_text("apiVersion: meshc/v1\nkind: Service\nname: secret\n")
    (bookinfo_copy / "services" / "secret.yaml").symlink_to(outside)
    for _ in range(3):  # cold, then entries per file, then the result of the last check
        refused = _assert_same_as_uncached(bookinfo_copy)
        assert refused[0] == 1 and "MESH011" in refused[1] and "services/secret.yaml" in refused[1]
        _touch(bookinfo_copy)


def test_positions_in_unchanged_files_are_not_looked_up_again(bookinfo_copy: Path, cache_dir: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding a position composes its file again; the cache keeps what was found under the
    file's blob id, so after an edit elsewhere the diagnostic in the unchanged file is located
    from the cache, and an edit of that file locates it afresh."""
    lonely = bookinfo_copy / "services" / "lonely.yaml"
    lonely.write_text("apiVersion: meshc/v1\nkind: Service\nname: lonely\nplatform: k8s\n"
                      "ports: [{name: http, port: 8080, protocol: http}]\ncalls:\n  - nowhere\n")
    _check(bookinfo_copy)
    composed: list[str] = []
    original = compiler.yamlload._Locating.__init__

    def composing(self, stream: str) -> None:
        composed.append(stream)
        original(self, stream)

    monkeypatch.setattr(compiler.yamlload._Locating, "__init__", composing)
    _touch(bookinfo_copy)
    cached = _check(bookinfo_copy)
    assert "services/lonely.yaml" in cached[1]
    assert not [text for text in composed if "name: lonely" in text]
    lonely.write_text("# moved down a line\n" + lonely.read_text())
    moved = _check(bookinfo_copy)
    assert [text for text in composed if "name: lonely" in text]
    monkeypatch.setattr(compiler.yamlload._Locating, "__init__", original)
    assert moved == _check(bookinfo_copy, "--no-cache") != cached


def _checks_run(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the semantic checks run from here on."""
    import policies.registry

    ran: list[str] = []
    original = policies.registry.run_check

    def counting(check, graph, report):
        ran.append(check.name)
        return original(check, graph, report)

    monkeypatch.setattr(policies.registry, "run_check", counting)
    return ran


@pytest.mark.parametrize(("edited", "old", "new"), [
    ("access/policies.yaml", "from: [productpage]", "from: [productpage, reviews]"),
    ("policies/timeouts.yaml", "duration('30s')", "duration('5s')"),
    ("services/ratings.yaml", "name: ratings", "# a comment\nname: ratings"),
])
def test_only_the_checks_that_read_a_changed_kind_run_again(bookinfo_copy: Path, cache_dir: Path,
                                                            monkeypatch: pytest.MonkeyPatch, edited: str,
                                                            old: str, new: str) -> None:
    """A check's diagnostics are kept by the files holding the intent kinds it declares: an edit
    of AccessPolicies runs the checks that read AccessPolicy, one of a Policy only the CEL
    Policies, one of a Service nearly every check; the output is an uncached check's."""
    import policies.registry

    _check(bookinfo_copy)
    path = bookinfo_copy / edited
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    ran = _checks_run(monkeypatch)
    cached = _check(bookinfo_copy)
    kind = {"access": "AccessPolicy", "policies": "Policy", "services": "Service"}[edited.split("/")[0]]
    assert sorted(ran) == sorted(c.name for c in policies.registry.CHECKS if kind in c.reads)
    assert cached == _check(bookinfo_copy, "--no-cache")


def _tree(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_build_reads_the_cache_a_check_filled_and_writes_nothing(bookinfo_copy: Path, cache_dir: Path,
                                                                 tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`meshc build` after `meshc check` parses only what changed since, and writes what a build
    without the cache writes, with the same diagnostics; a build alone leaves no cache behind."""
    def build(out: Path, *extra: str) -> tuple[int, str]:
        result = runner.invoke(main, ["build", str(bookinfo_copy), "-o", str(out), "--format", "json", *extra])
        assert result.exit_code == 0, result.output
        return result.exit_code, result.output.replace(str(out), "OUT")

    build(tmp_path / "alone")
    assert not cache_dir.exists()
    _check(bookinfo_copy)
    entries = sorted(p for p in cache_dir.rglob("*") if p.is_file())
    service = bookinfo_copy / "services" / "ratings.yaml"
    service.write_text(service.read_text().replace("name: ratings", "# moved\nname: ratings"))
    parsed = _parsed_files(monkeypatch)
    cached = build(tmp_path / "cached")
    assert len(parsed) == 1
    assert cached == build(tmp_path / "uncached", "--no-cache")
    assert _tree(tmp_path / "cached") == _tree(tmp_path / "uncached")
    assert sorted(p for p in cache_dir.rglob("*") if p.is_file()) == entries
