"""The `meshc` command line (../shared/spec/cli.md). Heavy imports stay inside commands."""

from __future__ import annotations

import contextlib
import gc
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from compiler import DEFAULT_OUTPUT

if TYPE_CHECKING:
    from compiler.codes import Severity

FORMATS = ("text", "json", "sarif", "github")
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


@contextlib.contextmanager
def paused_gc():
    """Run a compile without the cyclic garbage collector.

    A build allocates millions of long-lived objects (parsed documents, models, graph,
    artifacts) and almost no cycles; each full collection walks them all, which roughly
    doubled the time of a 10,000-service compile. Reference counting still frees everything.
    What is alive at the end is frozen before the collector comes back, so that the first
    collection (at the latest, at exit) does not walk it all once more.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()


class MeshcGroup(click.Group):
    """Turns an unexpected exception into exit 2 with one line, not a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            with paused_gc():
                return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except BrokenPipeError:  # `meshc explain | head`: the reader left, nothing to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(EXIT_OK)
        except OSError as error:  # the environment, not meshc: one plain line (docs/cli.md)
            if os.environ.get("MESHC_DEBUG"):
                raise
            where = f": {error.filename}" if error.filename else ""
            click.echo(f"meshc: {error.strerror or error}{where}", err=True)
            ctx.exit(EXIT_USAGE)
        except Exception as error:  # the contract is exit 2, never a traceback
            if os.environ.get("MESHC_DEBUG"):
                raise
            click.echo(f"meshc: internal error: {type(error).__name__}: {error} "
                       "(set MESHC_DEBUG=1 for the traceback, and please report it)", err=True)
            ctx.exit(EXIT_USAGE)


def _common(function):
    options = [
        click.option("--ref", "ref", default=None, metavar="REV", help="Read the intents from a git revision."),
        click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
                     help="How diagnostics are printed."),
        click.option("--quiet", "-q", is_flag=True, help="Print errors only."),
        click.option("--color", type=click.Choice(("auto", "always", "never")), default="auto", show_default=True),
        click.option("--fail-on", type=click.Choice(("error", "warning", "info")), default="error",
                     show_default=True, help="Lowest severity that makes the exit code 1."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _target_summaries() -> str:
    from targets import REGISTRY

    return " ".join(f"{info.name}: {info.summary}." for info in REGISTRY.values())


def _root(path: str) -> Path:
    return Path(path)


def _print_report(compiled, fmt: str, quiet: bool, color: str, root: Path) -> None:
    from compiler.render import RENDERERS

    report = compiled.report
    if quiet:  # before sorting: a warning not printed needs no position (compiler.diagnostics.Location)
        from compiler.diagnostics import Report

        report = Report([d for d in report.diagnostics if d.severity == "error"])
    diagnostics = report.sorted()
    use_color = color == "always" or (color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
    display_root = "" if root.resolve() == Path.cwd().resolve() else os.path.relpath(root, Path.cwd())
    text = RENDERERS[fmt](diagnostics, compiled.sources, color=use_color, root=display_root)
    if text or fmt in ("json", "sarif"):
        click.echo(text, nl=False)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from compiler import version_line

        click.echo(f"meshc {version_line()}")
        ctx.exit(EXIT_OK)


@click.group(cls=MeshcGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Print the version (and the git revision of a source install) and exit.")
def main() -> None:
    """meshc compiles service-mesh intents into Envoy, Kubernetes, Cloud Foundry and VM artifacts."""
    click.get_current_context().call_on_close(_close_repositories)


def _close_repositories() -> None:
    """Close the git repositories the command opened (an in-process caller, such as a test run or
    an editor, would otherwise keep their processes), without importing git when none was."""
    gitsource = sys.modules.get("compiler.gitsource")
    if gitsource is not None:
        gitsource.close_repositories()


def _timings(function):
    return click.option("--timings", is_flag=True, help="Say where the time went, stage by stage, on stderr.")(function)


def _stages(quiet: bool):
    """Stages that show progress on stderr when it is a terminal (and not --quiet)."""
    from compiler.stages import Stages

    terminal = _stderr_is_terminal() and not quiet
    return Stages(show=(lambda line: click.echo(line, err=True)) if terminal else None)


def _stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


_ENVIRONMENTS = click.option(
    "--env", "environments", multiple=True, metavar="ENV",
    help="Only this environment of a mesh with environments (repeatable; default: every environment).")

_NO_CACHE = click.option("--no-cache", is_flag=True,
                         help="Neither read nor write the check cache ($MESHC_CACHE_DIR, else ~/.cache/meshc).")


def _read_only_cache():
    from compiler.cache import CheckCache, default_directory

    return CheckCache(default_directory(), read_only=True)


def _checked(root: Path, ref: str | None, no_cache: bool, stages=None, compare_with: Path | None = None,
             environments: tuple[str, ...] = ()):
    """`meshc check` of the mesh at root; a working tree goes through the check cache (compiler.cache)."""
    from compiler.envbuild import UnknownEnvironment

    try:
        if ref is None and not no_cache and not environments:
            from compiler.cache import CheckCache, check, default_directory

            return check(root, CheckCache(default_directory()), stages, compare_with)
        from compiler.build import check_mesh

        return check_mesh(root, ref=ref, stages=stages, compare_with=compare_with, environments=environments)
    except UnknownEnvironment as error:
        raise click.UsageError(f"--env: {error}") from None


@main.command()
@click.argument("path", default=".", type=click.Path(file_okay=False))
@click.option("--fix", is_flag=True, help="Apply the mechanical fixes (renamed fields) in place, then check.")
@_ENVIRONMENTS
@_timings
@_common
@_NO_CACHE
def check(path: str, fix: bool, environments: tuple[str, ...], timings: bool, ref: str | None, fmt: str,
          quiet: bool, color: str, fail_on: Severity, no_cache: bool) -> None:
    """Load, type-check, link and analyse the mesh, and run every target without writing: a mesh
    that checks clean builds (with --fix, the fixes are the only thing written).

    PATH is the mesh root, the directory holding mesh.yaml (default: the current directory). A
    mesh with environments is checked in each of them, every diagnostic labelled with the
    environments it was found in.
    """
    root = _root(path)
    if fix and ref is not None:
        raise click.UsageError("--fix edits the working tree; it does not combine with --ref")
    stages = _stages(quiet)
    compiled = _checked(root, ref, no_cache, stages, environments=environments)
    if fix and any(d.fix for d in compiled.report.diagnostics):
        from compiler.fixes import apply_fixes

        for rename, applied in apply_fixes(root, compiled.report.diagnostics):
            state = "renamed" if applied else "could not rename"
            click.echo(f"{rename.location}: {state} {rename.old!r} to {rename.new!r}", err=True)
        stages = _stages(quiet)
        compiled = _checked(root, None, no_cache, stages, environments=environments)
    _print_report(compiled, fmt, quiet, color, root)
    if timings:
        click.echo(stages.summary(), err=True, nl=False)
    sys.exit(EXIT_FAIL if compiled.report.fails(fail_on) else EXIT_OK)


@main.command("test")
@click.argument("path", default=".", type=click.Path(file_okay=False))
@click.option("--envoy", "through_envoy", is_flag=True,
              help="Also send every case through real Envoy processes running the emitted bootstraps.")
@click.option("--fail-under", "fail_under", type=click.FloatRange(0, 100), default=None, metavar="PERCENT",
              help="Fail when fewer than PERCENT of the Route rules decide a case.")
@_ENVIRONMENTS
@_common
def test_command(path: str, through_envoy: bool, fail_under: float | None, environments: tuple[str, ...],
                 ref: str | None, fmt: str, quiet: bool, color: str, fail_on: Severity) -> None:
    """Run the mesh's RouteTest cases through the reference evaluator (and, with --envoy, Envoy).

    PATH is the mesh root, the directory holding mesh.yaml (default: the current directory). A
    mesh with environments runs its cases in each environment (or each --env).
    """
    from compiler.build import Compiled, compile_mesh
    from compiler.envbuild import UnknownEnvironment, chosen_environments, labelled, mesh_source
    from compiler.loader import declared_environments
    from compiler.routetest import run_route_tests

    root = _root(path)
    source = mesh_source(root, ref, (root / DEFAULT_OUTPUT,))
    declared = declared_environments(source) if source is not None else None
    try:
        names: list[str | None] = [*chosen_environments(declared, environments)] or [None]
    except UnknownEnvironment as error:
        raise click.UsageError(f"--env: {error}") from None
    runs, reports = [], []
    for environment in names:
        compiled = compile_mesh(root, ref=ref, skip_dirs=(root / DEFAULT_OUTPUT,), environment=environment)
        run = None
        if compiled.graph is not None and compiled.loaded is not None and not compiled.report.has_errors:
            run = run_route_tests(compiled.graph, compiled.loaded.intents, compiled.report)
            if through_envoy:
                from targets import load as load_target

                envoy = load_target("envoy")
                try:
                    envoy.run_through_envoy(compiled.graph, run, compiled.report)
                except envoy.EnvoyUnavailable as error:
                    click.echo(f"meshc test --envoy: {error}", err=True)
                    sys.exit(EXIT_USAGE)
        runs.append((environment, run))
        reports.append((environment, compiled))
    if names == [None]:
        shown = reports[0][1]
    else:
        shown = Compiled(None, reports[0][1].sources, labelled([(str(e), c.report) for e, c in reports]))
        for _, compiled in reports[1:]:
            shown.sources.texts.update(compiled.sources.texts)
    _print_report(shown, fmt, quiet, color, root)
    failed = shown.report.fails(fail_on)
    for environment, run in runs:
        label = f"[{environment}] " if environment is not None else ""
        if run is None:
            failed = True
            continue
        click.echo(f"meshc test: {label}{run.summary()}", err=True)
        if fail_under is not None and run.coverage < fail_under:
            click.echo(f"meshc test: {label}rule coverage {run.coverage:.1f}% is under --fail-under {fail_under:g}%",
                       err=True)
            failed = True
    sys.exit(EXIT_FAIL if failed else EXIT_OK)


@main.command()
@click.argument("path", default=".", type=click.Path(file_okay=False))
@click.option("-o", "--output", "output", default=None, type=click.Path(file_okay=False),
              help=f"Output directory (default PATH/{DEFAULT_OUTPUT}).")
@click.option("-t", "--target", "targets", multiple=True, metavar="TARGET",
              help="Emit only this target (repeatable). " + _target_summaries())
@click.option("--check", "check_only", is_flag=True, help="Compare with the output directory instead of writing.")
@click.option("--changed-since", "changed_since", default=None, metavar="REV",
              help="Re-emit only the workloads that intent changes since REV reach; keep the rest of DIR.")
@_ENVIRONMENTS
@_timings
@_common
@click.option("--no-cache", is_flag=True,
              help="Do not read the check cache ($MESHC_CACHE_DIR, else ~/.cache/meshc; `meshc check` fills it).")
def build(path: str, output: str | None, targets: tuple[str, ...], check_only: bool, changed_since: str | None,
          environments: tuple[str, ...], timings: bool, ref: str | None, fmt: str, quiet: bool, color: str,
          fail_on: Severity, no_cache: bool) -> None:
    """Check the mesh, then emit every target (or the named ones) into the output directory.

    PATH is the mesh root, the directory holding mesh.yaml (default: the current directory). A
    mesh with environments is built into DIR/ENV for each environment (or each --env); the
    other environments' directories stay as they are.
    """
    from compiler.build import ChangedSinceError, build_mesh
    from compiler.envbuild import UnknownEnvironment
    from compiler.writer import OutputError

    _known_targets(targets)
    if check_only and changed_since:
        raise click.UsageError("--check compares a full build; it does not combine with --changed-since")
    root = _root(path)
    out_dir = Path(output) if output else root / DEFAULT_OUTPUT
    stages = _stages(quiet)
    try:
        outcome = build_mesh(root, out_dir, targets=targets, ref=ref, fail_on=fail_on, check_only=check_only,
                             changed_since=changed_since, stages=stages, environments=environments,
                             cache=None if no_cache else _read_only_cache())
    except ChangedSinceError as error:
        raise click.UsageError(str(error)) from None
    except UnknownEnvironment as error:
        raise click.UsageError(f"--env: {error}") from None
    except OutputError as error:
        click.echo(f"meshc: {error}", err=True)
        sys.exit(EXIT_USAGE)
    for note in outcome.notes:
        if not (quiet and note.quiet):
            click.echo(note.text, err=True)
    _print_report(outcome.compiled, fmt, quiet, color, root)
    if timings:
        click.echo(stages.summary(), err=True, nl=False)
    if outcome.failed:
        sys.exit(EXIT_FAIL)
    if outcome.output_error is not None:
        click.echo(f"meshc: {outcome.output_error}", err=True)
        sys.exit(EXIT_USAGE)
    if outcome.drift is not None:
        sys.exit(EXIT_FAIL if _print_drift(outcome.drift, out_dir) else EXIT_OK)
    if not quiet:
        kept = "" if outcome.kept is None else f", kept {outcome.kept}"
        click.echo(f"wrote {outcome.written} files to {out_dir}{kept}", err=True)
    sys.exit(EXIT_OK)


def _print_drift(drift, out_dir: Path) -> bool:
    """List how out_dir differs from what a build would write; whether it does."""
    for label, paths in (("added", drift.added), ("removed", drift.removed), ("changed", drift.changed)):
        for p in paths:
            click.echo(f"{label}: {out_dir / p}")
    if drift:
        click.echo(f"{out_dir} is out of date: run `meshc build`", err=True)
    return bool(drift)


def _known_targets(targets: tuple[str, ...]) -> None:
    from targets import REGISTRY

    unknown = [t for t in targets if t not in REGISTRY]
    if unknown:
        raise click.UsageError(f"unknown target {unknown[0]!r} (targets: {', '.join(sorted(REGISTRY))})")


@main.command("check-files")
@click.argument("files", nargs=-1, metavar="[FILE]...", type=click.Path())
@click.option("--build-check", is_flag=True,
              help=f"Also compare each mesh's output directory (MESH/{DEFAULT_OUTPUT}) with what a build would "
                   "write, as `meshc build --check` does, from the same compile.")
@_ENVIRONMENTS
@_common
@_NO_CACHE
def check_files(files: tuple[str, ...], build_check: bool, environments: tuple[str, ...], ref: str | None, fmt: str,
                quiet: bool, color: str, fail_on: Severity, no_cache: bool) -> None:
    """Check each mesh that the FILEs belong to, once (the pre-commit hooks `meshc-check` and
    `meshc-check-and-build-check`).

    FILE is an intent file, typically a staged one (default: none, nothing is checked). A file
    belongs to the mesh of its nearest ancestor directory holding mesh.yaml; files outside every
    mesh are ignored. A mesh with environments is checked in each of them (or each --env).
    """
    roots = {root for root in map(_mesh_root_of, files) if root is not None}
    failed = False
    for root in sorted(roots):
        display = Path(os.path.relpath(root))
        out_dir = display / DEFAULT_OUTPUT if build_check else None
        compiled = _checked(display, ref, no_cache, compare_with=out_dir, environments=environments)
        _print_report(compiled, fmt, quiet, color, display)
        failed |= compiled.report.fails(fail_on)
        if out_dir is not None and compiled.drift is not None:
            failed |= _print_drift(compiled.drift, out_dir)
    sys.exit(EXIT_FAIL if failed else EXIT_OK)


def _mesh_root_of(file: str) -> Path | None:
    """The nearest ancestor directory of `file` that holds mesh.yaml."""
    from compiler.loader import MESH_FILE

    directory = Path(file).absolute().parent
    while not (directory / MESH_FILE).is_file() and directory != directory.parent:
        directory = directory.parent
    return directory if (directory / MESH_FILE).is_file() else None


@main.command("fmt")
@click.argument("paths", nargs=-1, metavar="[PATH]...", type=click.Path())
@click.option("--check", "check_only", is_flag=True, help="Change nothing; exit 1 when a file is not formatted.")
@click.option("--diff", "show_diff", is_flag=True, help="Change nothing; print what formatting would change.")
@click.option("--env", "environments", multiple=True, metavar="ENV",
              help="A mesh root with environments: the overlay files of this environment only (repeatable; "
                   "default: every environment's).")
def fmt_command(paths: tuple[str, ...], check_only: bool, show_diff: bool, environments: tuple[str, ...]) -> None:
    """Lay intent files out canonically (the pre-commit hook `meshc-fmt` runs it with --check).

    Each PATH is a mesh root (every intent file `meshc check` reads, the environments' overlay
    files included) or a file; a file outside every mesh (no mesh.yaml above it) is skipped
    (default: the current directory).
    """
    import difflib

    from compiler import codes
    from compiler.diagnostics import Location, Report
    from compiler.envbuild import UnknownEnvironment
    from compiler.fixes import replace_file
    from compiler.fmt import FormatProblem, format_text, mesh_files
    from compiler.loader import SourceTable
    from compiler.render import render_text

    files: list[Path] = []
    for name in paths or (".",):
        if Path(name).is_dir():
            try:
                listed = mesh_files(Path(name), environments)
            except UnknownEnvironment as error:
                raise click.UsageError(f"--env: {error}") from None
            if listed is None:
                raise click.UsageError(f"{name} is not a mesh root (it holds no mesh.yaml)")
            files.extend(listed)
        elif _mesh_root_of(name) is not None:
            files.append(Path(name))
    report, sources, unformatted = Report(), SourceTable(), []
    for file in files:
        try:
            text = file.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            report.add(codes.UNREADABLE_FILE, f"cannot read the file: {error}", Location(str(file), 1, 1))
            continue
        try:
            formatted = format_text(text)
        except FormatProblem as problem:
            sources.texts[str(file)] = text
            report.add(problem.code, problem.message, Location(str(file), problem.line, problem.column))
            continue
        if formatted == text:
            continue
        unformatted.append(file)
        if show_diff:
            click.echo("".join(difflib.unified_diff(text.splitlines(keepends=True), formatted.splitlines(keepends=True),
                                                    f"{file} (as written)", f"{file} (formatted)")), nl=False)
        elif check_only:
            click.echo(f"would reformat {file}")
        else:
            replace_file(file, formatted)
            click.echo(f"reformatted {file}")
    click.echo(render_text(report.sorted(), sources), nl=False, err=True)
    if report.has_errors or ((check_only or show_diff) and unformatted):
        sys.exit(EXIT_FAIL)
    sys.exit(EXIT_OK)


@main.command("import")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...", type=click.Path(exists=True))
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False),
              help="The mesh directory to write the intents into (new files only).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="How diagnostics are printed.")
def import_command(inputs: tuple[str, ...], output: str, fmt: str) -> None:
    """Write meshc intents for existing Istio, Gateway API and core Kubernetes YAML.

    Each INPUT is a file, or a directory whose `*.yaml`/`*.yml` files are read (at least one).
    What has no meshc equivalent is reported where it stands in the input; nothing is written
    while an error stands, and no existing file is replaced.
    """
    from compiler.diagnostics import Report
    from compiler.fixes import replace_file
    from compiler.importer import import_texts, planned_files, read_inputs
    from compiler.loader import SourceTable
    from compiler.render import RENDERERS

    report = Report()
    texts = read_inputs([Path(name) for name in inputs], report)
    files = planned_files(Path(output), import_texts(texts, report), report)
    click.echo(RENDERERS[fmt](report.sorted(), SourceTable(texts=texts)), nl=False)
    if report.has_errors:
        sys.exit(EXIT_FAIL)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=False)  # never replaces: planned_files found none of them
        replace_file(path, text)
    click.echo(f"wrote {len(files)} intent files to {output}; next: meshc check {output}", err=True)
    sys.exit(EXIT_OK)


@main.command()
@click.argument("path", default=".", type=click.Path(file_okay=False))
@click.option("--base", "base", default="HEAD", show_default=True, metavar="REV",
              help="The revision compared against.")
@click.option("--head", "head", default=None, metavar="REV",
              help="The revision compared (default: the working tree, uncommitted changes included).")
@click.option("-t", "--target", "targets", multiple=True, metavar="TARGET",
              help="Compare only this target (repeatable). " + _target_summaries())
@click.option("--format", "fmt", type=click.Choice(("text", "json", "markdown")), default="text", show_default=True,
              help="markdown: the pull-request comment (summary tables, linked intents, a Mermaid diagram).")
@click.option("--stat", is_flag=True, help="The summary alone: changed intents and workloads, no file diffs.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing; exit 1 when anything changes, 0 when nothing does.")
@click.option("--link-base", "link_base", default=None, metavar="URL",
              help="markdown: the repository's web address; intents link to URL/blob/COMMIT/PATH#LLINE "
                   "(default $GITHUB_SERVER_URL/$GITHUB_REPOSITORY when both are set).")
@click.option("--env", "environments", multiple=True, metavar="ENV",
              help="A mesh with environments: compare only this one (default: each); given twice, compare the "
                   "two environments with each other at --head.")
def diff(path: str, base: str, head: str | None, targets: tuple[str, ...], fmt: str, stat: bool, quiet: bool,
         link_base: str | None, environments: tuple[str, ...]) -> None:
    """Compile the mesh at two revisions (default: HEAD against the working tree) and show what
    changes.

    PATH is the mesh root, the directory holding mesh.yaml (default: the current directory); it
    may lie anywhere inside a git repository, and meshc may run from outside it.

    Per target and per workload: a summary line and a unified diff of each changed artifact;
    per changed intent: the proxies it reaches. A mesh with environments is compared in each
    environment; `--env A --env B` compares environment A with environment B instead.
    """
    from compiler.build import compile_mesh, emit
    from compiler.diff import diff_meshes, render_json, render_text
    from compiler.envbuild import UnknownEnvironment, diff_plan

    _known_targets(targets)
    root = _root(path)
    links = _intent_links(root, link_base) if fmt == "markdown" else None
    try:
        plan = diff_plan(root, base, head, environments)
    except UnknownEnvironment as error:
        raise click.UsageError(f"--env: {error}") from None
    results = []
    for (base_ref, base_env), (head_ref, head_env) in plan:
        sides = []
        for ref, environment in ((base_ref, base_env), (head_ref, head_env)):
            compiled = compile_mesh(root, ref=ref, skip_dirs=(root / DEFAULT_OUTPUT,), environment=environment)
            if compiled.graph is None or compiled.report.has_errors:
                where = f"{ref or 'the working tree'}" + (f" (environment {environment})" if environment else "")
                click.echo(f"meshc diff: {where} does not compile", err=True)
                _print_report(compiled, "text", True, "never", root)
                sys.exit(EXIT_FAIL)
            sides.append((compiled.graph, emit(compiled.graph, compiled.report, list(targets) or None)))
        results.append(diff_meshes(sides[0][0], sides[1][0], sides[0][1], sides[1][1], (base_env, head_env)))
    if quiet:
        sys.exit(EXIT_FAIL if any(result.files or result.intents for result in results) else EXIT_OK)
    for result in results:
        if fmt == "json" and len(results) > 1:
            continue
        if fmt == "json":
            click.echo(render_json(result, stat=stat).decode("utf-8"), nl=False)
        elif fmt == "markdown":
            from compiler.diff_markdown import render_markdown

            click.echo(render_markdown(result, links), nl=False)
        else:
            click.echo(render_text(result, stat=stat), nl=False)
    if fmt == "json" and len(results) > 1:
        import json

        from compiler.serialize import to_json

        every = [json.loads(render_json(result, stat=stat)) for result in results]
        click.echo(to_json({"environments": every}).decode("utf-8"), nl=False)
    sys.exit(EXIT_OK)


_LINK_BASE = re.compile(r"^https?://[A-Za-z0-9.:@_~%+/-]+$")


def _intent_links(root: Path, link_base: str | None):
    """Where `diff --format markdown` links intent lines to, or None (no links)."""
    from compiler.diff_markdown import Links
    from compiler.gitsource import GitError, repository_prefix

    if link_base is None:
        server, repository = os.environ.get("GITHUB_SERVER_URL"), os.environ.get("GITHUB_REPOSITORY")
        if not server or not repository:
            return None
        link_base = f"{server}/{repository}"
    if not _LINK_BASE.fullmatch(link_base):
        raise click.UsageError(f"--link-base must be an http(s) address without spaces or quotes: {link_base!r}")
    try:
        return Links(link_base, repository_prefix(root))
    except GitError:
        return None  # not in git: nothing to link to


@main.command()
@click.argument("path", default=".", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(("dot", "mermaid", "json", "html")), default="dot",
              show_default=True, help="html: one self-contained interactive page (no network needed).")
@click.option("--ref", "ref", default=None, metavar="REV", help="Read the intents from a git revision.")
@click.option("--env", "environment", default=None, metavar="ENV",
              help="A mesh with environments: the graph of this environment (default: the base, no overlay).")
def graph(path: str, fmt: str, ref: str | None, environment: str | None) -> None:
    """Print the linked graph: services, calls, routes, gateways, policies.

    PATH is the mesh root, the directory holding mesh.yaml (default: the current directory).
    """
    from compiler.build import compile_mesh
    from compiler.graphviz import EXPORTERS

    root = _root(path)
    _declared_environment(root, ref, environment)
    if fmt == "html":
        click.echo(_graph_page(root, ref, environment), nl=False)
        return
    compiled = compile_mesh(root, ref=ref, analyse=False, environment=environment)
    if compiled.graph is None or not compiled.loaded_clean:  # a graph with intents left out is no answer
        _print_report(compiled, "text", False, "auto", root)
        sys.exit(EXIT_FAIL)
    click.echo(EXPORTERS[fmt](compiled.graph), nl=False)


def _declared_environment(root: Path, ref: str | None, environment: str | None) -> None:
    """A usage error unless `environment` is unset or one the mesh declares."""
    if environment is None:
        return
    from compiler.envbuild import UnknownEnvironment, chosen_environments, mesh_source
    from compiler.loader import declared_environments

    source = mesh_source(root, ref, (root / DEFAULT_OUTPUT,))
    try:
        chosen_environments(declared_environments(source) if source is not None else None, (environment,))
    except UnknownEnvironment as error:
        raise click.UsageError(f"--env: {error}") from None


def _graph_page(root: Path, ref: str | None, environment: str | None = None) -> str:
    from compiler.build import compile_mesh
    from compiler.graph_page import mesh_page

    compiled = compile_mesh(root, ref=ref, skip_dirs=(root / DEFAULT_OUTPUT,), finish=False, environment=environment)
    if compiled.graph is None or not compiled.loaded_clean:
        _print_report(compiled, "text", False, "auto", root)
        sys.exit(EXIT_FAIL)
    return mesh_page(compiled)


@main.command()
@click.argument("code", required=False)
def explain(code: str | None) -> None:
    """Print the documentation of a diagnostic code.

    CODE is MESH360, mesh360 or 360 (default: list every code with its one-line summary).
    """
    from compiler.codes import CODES
    from compiler.diagnostics import lookup

    if code is None:
        width = max(len(entry.name) for entry in CODES.values())
        for entry in CODES.values():
            click.echo(f"{entry.code}  {entry.name:<{width}}  {entry.severity:<7}  {entry.summary}")
        return
    found = lookup(code)
    if found is None:
        click.echo(f"meshc: no diagnostic code {code!r}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"{found.code} ({found.name}), {found.severity} by default\n\n{found.summary}\n\n{found.explanation}")


@main.command("explain-value")
@click.argument("environment", metavar="ENV")
@click.argument("document", metavar="DOCUMENT")
@click.argument("field", metavar="FIELD")
@click.argument("path", default=".", type=click.Path(file_okay=False))
@click.option("--ref", "ref", default=None, metavar="REV", help="Read the intents from a git revision.")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
def explain_value(environment: str, document: str, field: str, path: str, ref: str | None, fmt: str) -> None:
    """Say where a value of an environment comes from: the base line, then each overlay line that
    set it, in order (docs/intents.md, "Environments").

    ENV is an environment the mesh declares (default: none, name one). DOCUMENT is `Kind/name` or
    `Kind/namespace/name`, such as `Service/api` (default: none, name one). FIELD is a field path as
    diagnostics write it, `resilience.timeout` or `ports[0].port`, where `[http]` names the item of
    a keyed list by its key (default: none, name one). PATH is the mesh root, the directory holding
    mesh.yaml (default: the current directory).
    """
    from compiler.envbuild import UnknownEnvironment, ValueNotFound
    from compiler.envbuild import explain_value as explain_chain

    try:
        chain = explain_chain(_root(path), environment, document, field, ref=ref)
    except UnknownEnvironment as error:
        raise click.UsageError(str(error)) from None
    except ValueNotFound as error:
        click.echo(f"meshc explain-value: {error}", err=True)
        sys.exit(EXIT_FAIL)
    click.echo(chain.json() if fmt == "json" else chain.text(), nl=False)


@main.command()
@click.argument("kind", required=False)
def schema(kind: str | None) -> None:
    """Print the JSON Schema of the intent language, every field described, for editors.

    KIND is one kind (Mesh, Service, Route...), whose schema is printed alone (default: every kind).
    """
    from compiler.model import KIND_MODELS
    from compiler.schema import intent_schema

    if kind is not None and kind not in KIND_MODELS:
        click.echo(f"meshc: no kind {kind!r} (kinds: {', '.join(KIND_MODELS)})", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(intent_schema(kind), nl=False)


@main.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
def init(directory: str) -> None:
    """Write a small working mesh repo that checks clean into DIRECTORY.

    DIRECTORY is created if absent; no file of the starter may exist there yet (default: the
    current directory).
    """
    from compiler.scaffold import InitError, write_starter

    try:
        written = write_starter(Path(directory))
    except InitError as error:
        click.echo(f"meshc: {error}", err=True)
        sys.exit(EXIT_USAGE)
    for path in written:
        click.echo(f"created {path}")
    click.echo(f"next: meshc check {directory} && meshc build {directory}")
