"""Organisation Policies: CEL expressions compiled once per build, evaluated over linked objects.

`self` is the object of the Policy's `appliesTo` kind as a dict: the model dumped by alias
(`from`, not `from_`), fields left unset omitted (so `has()` tells whether something is set),
defaults applied, the namespace filled in; for a Service, `resilience` is the effective one
(Mesh.defaults overlaid with the service's own) and `mtls` the effective mode. Durations stay
strings: compare them with `duration('30s')`.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from compiler import codes
from compiler.diagnostics import Location, Related, Report
from compiler.graph import AccessPolicyNode, ExternalNode, GatewayNode, Key, MeshGraph, PolicyNode, RouteNode
from compiler.loader import Origin
from policies.check import Check

_CEL_POSITION = re.compile(r"<input>:(\d+):(\d+):")


@functools.cache
def cel_module() -> ModuleType:
    """The `cel` extension module, loaded only when a mesh has Policies.

    The `cel` package's __init__ also imports its command line (rich and friends, about 200 ms);
    loading the compiled extension on its own keeps `meshc check` fast. It is registered under
    its own name, so a later `import cel` reuses it (a PyO3 module initialises once).
    """
    loaded = sys.modules.get("cel.cel")
    if loaded is not None:
        return loaded
    package = importlib.util.find_spec("cel")
    for directory in (package.submodule_search_locations if package else None) or ():
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            spec = importlib.util.spec_from_file_location("cel.cel", f"{directory}/cel{suffix}")
            if spec is not None and spec.loader is not None and spec.origin and os.path.exists(spec.origin):
                module = importlib.util.module_from_spec(spec)
                sys.modules["cel.cel"] = module
                spec.loader.exec_module(module)
                return module
    import cel  # the package layout changed: pay for the full import rather than fail

    return cel


@dataclass(frozen=True)
class CompiledPolicy:
    node: PolicyNode
    rule: Any  # cel Program
    when: Any | None


def _expression_location(graph: MeshGraph, origin: Origin, field: str, text: str, error: str) -> Location:
    """Where CEL's error points inside the expression, when it sits on the field's own line."""
    location = graph.sources.locate(origin, field)
    position = _CEL_POSITION.search(error)
    line = graph.sources.line_text(location)
    if position is None or line is None or int(position.group(1)) != 1:
        return location
    start = location.column - 1
    if line[start:start + 1] in ("'", '"'):
        start += 1
    if not line[start:].startswith(text.split("\n", 1)[0]):
        return location  # a block scalar or escapes: the field itself is as precise as it gets
    return Location(location.file, location.line, start + int(position.group(2)))


def compile_policies(graph: MeshGraph, report: Report) -> list[CompiledPolicy]:
    cel = cel_module()
    compiled = []
    for policy in graph.policies.values():
        programs: dict[str, Any] = {}
        for field in ("rule", "when"):
            text = getattr(policy.spec, field)
            if text is None:
                continue
            try:
                programs[field] = cel.compile(text)
            except ValueError as error:
                message = _CEL_POSITION.sub("", str(error).split("ERROR: ", 1)[-1].split("\n", 1)[0]).strip()
                report.add(codes.POLICY_EXPRESSION_INVALID,
                           f"Policy {policy.name}: `{field}` is not a valid CEL expression: {message}",
                           _expression_location(graph, policy.origin, field, text, str(error)))
        if len(programs) == (2 if policy.spec.when is not None else 1):
            compiled.append(CompiledPolicy(policy, programs["rule"], programs.get("when")))
    return compiled


def _dump(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def objects_of(graph: MeshGraph, kind: str) -> Iterator[tuple[str, Origin, dict[str, Any]]]:
    """(display name, origin, `self`) of every linked object of one kind."""
    if kind == "Mesh":
        yield f"Mesh {graph.mesh.name}", graph.mesh_origin, _dump(graph.mesh)
        return
    if kind == "Service":
        for key, node in graph.services.items():
            data = _dump(node.spec)
            data.update(namespace=key.namespace, mtls=node.mtls, resilience=_dump(node.resilience))
            yield f"Service {key}", node.origin, data
        return
    tables: dict[str, Mapping[Key, RouteNode | AccessPolicyNode | GatewayNode | ExternalNode]] = {
        "Route": graph.routes, "AccessPolicy": graph.access_policies, "Gateway": graph.gateways,
        "ExternalService": graph.externals}
    for key, linked in tables[kind].items():
        data = _dump(linked.spec)
        data["namespace"] = key.namespace
        yield f"{kind} {key}", linked.origin, data


def _evaluate(program: Any, data: dict[str, Any], environment: str) -> tuple[bool | None, str | None]:
    """(result, None), or (None, why) when the expression fails or is not a boolean."""
    try:
        result = program.execute({"self": data, "environment": environment})
    except KeyError as error:
        return None, f"no field {error}"
    except Exception as error:  # noqa: BLE001 - whatever the evaluator raises is the expression's failure
        return None, f"{type(error).__name__}: {error}"
    if not isinstance(result, bool):
        return None, f"the result is {type(result).__name__} {result!r}, not a boolean"
    return result, None


# The `cel` package (common-expression-language 0.10) has no cost limit, and its evaluator
# runs in Rust, where no Python signal can stop it. Every evaluation therefore runs in a forked
# process that the build can stop: each (Policy, object) evaluation gets EVALUATION_SECONDS of
# wall time and EVALUATION_MEMORY bytes of address space beyond what the build already uses.
# One that exceeds either is reported (MESH372) and the rest go on in a fresh process.
EVALUATION_SECONDS = 5.0
EVALUATION_MEMORY = 1024 * 1024 * 1024


def _judge(policy: CompiledPolicy, data: dict[str, Any], environment: str) -> tuple[str, str | None]:
    """("ok" | "violation" | the field that failed, why it failed) for one object."""
    for field, program in (("when", policy.when), ("rule", policy.rule)):
        if program is None:
            continue
        result, failure = _evaluate(program, data, environment)
        if failure is not None:
            return field, failure
        if not result:
            return ("violation" if field == "rule" else "ok"), None
    return "ok", None


def _limit_memory() -> None:
    import resource

    with open("/proc/self/statm", encoding="ascii") as statm:
        in_use = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (in_use + EVALUATION_MEMORY, in_use + EVALUATION_MEMORY))


def _judge_all(jobs: list[tuple[CompiledPolicy, dict[str, Any]]], environment: str) -> list[tuple[str, str | None]]:
    """_judge of every job, in forked processes (one unless an evaluation is stopped)."""
    import pickle
    import select
    import signal

    verdicts: list[tuple[str, str | None]] = []
    while len(verdicts) < len(jobs):
        first = len(verdicts)
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child, which never returns
            try:
                os.close(read_end)
                _limit_memory()
                for policy, data in jobs[first:]:
                    record = pickle.dumps(_judge(policy, data, environment))
                    os.write(write_end, len(record).to_bytes(4, "big") + record)
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb", buffering=0) as stream:
            # poll, not select: select refuses a descriptor numbered 1024 or more, which a
            # long-running process (a test run, an editor's language server) may well hand out
            waiting = select.poll()
            waiting.register(stream, select.POLLIN)
            while len(verdicts) < len(jobs):
                ready = waiting.poll(EVALUATION_SECONDS * 1000)
                header = stream.read(4) if ready else b""
                if len(header) < 4:
                    break
                size = int.from_bytes(header, "big")
                body = b""
                while len(body) < size:
                    body += stream.read(size - len(body))
                verdicts.append(pickle.loads(body))
        stopped = len(verdicts) < len(jobs)
        if stopped:
            os.kill(child, signal.SIGKILL)
        _, status = os.waitpid(child, 0)
        if stopped:
            timed_out = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            verdicts.append(("budget", f"it ran past {EVALUATION_SECONDS:g} s" if timed_out else
                             f"it needed more than {EVALUATION_MEMORY // (1024 * 1024)} MiB of memory"))
    return verdicts


def check(graph: MeshGraph, report: Report) -> None:
    if not graph.policies:
        return
    at = graph.sources.locate
    # the environment compiled (docs/policies.md): CEL's `environment`, and what Policy.environments selects
    environment = graph.sources.environment or ""
    declared = {e.name for e in graph.mesh.environments}
    for node in graph.policies.values():
        for index, name in enumerate(node.spec.environments):
            if name not in declared:
                report.add(codes.POLICY_UNKNOWN_ENVIRONMENT,
                           f"Policy {node.name} names environment {name!r}, which the mesh does not declare "
                           f"({', '.join(sorted(declared)) or 'it declares none'}): it never judges anything there",
                           at(node.origin, "environments", index))
    jobs = []
    for policy in compile_policies(graph, report):
        if policy.node.spec.environments and environment not in policy.node.spec.environments:
            continue
        jobs += [(policy, name, origin, data) for name, origin, data in objects_of(graph, policy.node.spec.appliesTo)]
    verdicts = _judge_all([(policy, data) for policy, _, _, data in jobs], environment)
    for (policy, name, origin, _), (verdict, failure) in zip(jobs, verdicts, strict=True):
        spec = policy.node.spec
        if verdict == "ok":
            continue
        where = at(origin, "name")  # located only when reported: a position may mean reading the file again
        if verdict == "violation":
            report.add(codes.POLICY_VIOLATION, f"{name}: {spec.message} (Policy {spec.name})", where,
                       related=(Related(at(policy.node.origin, "rule"), f"`rule` of Policy {spec.name}"),),
                       severity=spec.severity)
        elif verdict == "budget":
            report.add(codes.POLICY_EVALUATION_FAILED,
                       f"Policy {spec.name} cannot be evaluated for {name} within the evaluation budget: {failure}",
                       where, related=(Related(at(policy.node.origin, "rule"), f"Policy {spec.name}"),),
                       hint="a comprehension (all, exists, map, filter) nested in another multiplies the work: "
                            "flatten it")
        else:
            report.add(codes.POLICY_EVALUATION_FAILED,
                       f"Policy {spec.name}: `{verdict}` cannot be evaluated for {name}: {failure}", where,
                       related=(Related(at(policy.node.origin, verdict), f"`{verdict}` of Policy {spec.name}"),),
                       hint="guard optional fields with has()")


CHECK = Check(
    name="cel-policies",
    summary="the organisation's Policy documents",
    reads=frozenset({"Mesh", "Service", "ExternalService", "Route", "Gateway", "AccessPolicy", "Policy"}),
    codes=(codes.POLICY_EXPRESSION_INVALID, codes.POLICY_VIOLATION, codes.POLICY_EVALUATION_FAILED,
           codes.POLICY_UNKNOWN_ENVIRONMENT),
    run=check,
)
