"""Route rules that can never match, and match entries that repeat earlier ones."""

from __future__ import annotations

from compiler import codes
from compiler.diagnostics import Related, Report
from compiler.graph import MeshGraph, RouteNode
from compiler.hostnames import covers as host_covers
from compiler.model import Match, PathMatch, StringMatch
from policies.check import Check

# A rule without `match` matches every request, like an empty match entry.
CATCH_ALL = Match()


def _string_covers(broad: StringMatch | PathMatch, narrow: StringMatch | PathMatch) -> bool:
    if getattr(broad, "present", None):
        return True  # any condition on a header implies that it is present
    if broad.exact is not None:
        return narrow.exact == broad.exact
    if broad.prefix is not None:
        return any(v is not None and v.startswith(broad.prefix) for v in (narrow.exact, narrow.prefix))
    return narrow.regex == broad.regex


def _path_covers(broad: PathMatch | None, narrow: PathMatch | None) -> bool:
    if broad is None:
        return True
    if narrow is None:
        return False
    return _string_covers(broad, narrow)


def _conditions_cover(broad: dict[str, StringMatch], narrow: dict[str, StringMatch], fold: bool) -> bool:
    if fold:  # header names are case-insensitive
        broad = {k.lower(): v for k, v in broad.items()}
        narrow = {k.lower(): v for k, v in narrow.items()}
    return all(name in narrow and _string_covers(condition, narrow[name]) for name, condition in broad.items())


def match_covers(broad: Match, narrow: Match) -> bool:
    """Whether every request `narrow` matches is also matched by `broad`."""
    if broad.method is not None and broad.method != narrow.method:
        return False
    if broad.port is not None and broad.port != narrow.port:
        return False
    if broad.sni and not (narrow.sni and all(any(host_covers(b, n) for b in broad.sni) for n in narrow.sni)):
        return False
    return (
        _path_covers(broad.path, narrow.path)
        and _conditions_cover(broad.headers, narrow.headers, fold=True)
        and _conditions_cover(broad.query, narrow.query, fold=False)
    )


def _check_route(graph: MeshGraph, route: RouteNode, report: Report) -> None:
    at = graph.sources.locate
    earlier: list[tuple[Match, int, int | None]] = []  # entry, rule index, entry index (None: catch-all)
    for rule_index, rule in enumerate(route.spec.rules):
        entries: list[tuple[Match, int | None]] = (
            [(entry, e_index) for e_index, entry in enumerate(rule.match)] if rule.match else [(CATCH_ALL, None)]
        )
        covering = [
            next((prior for prior in earlier if match_covers(prior[0], entry)), None) for entry, _ in entries
        ]
        covers = [cover for cover in covering if cover is not None]
        if len(covers) == len(covering):
            cover_rule = covers[0][1]
            report.add(
                codes.UNREACHABLE_RULE,
                f"rule {rule_index} of Route {route.key} can never match: rule {cover_rule} before it "
                "matches every request it would",
                at(route.origin, "rules", rule_index),
                related=(Related(at(route.origin, "rules", cover_rule), f"rule {cover_rule} matches first"),),
                hint="move the rule before the broader one, or remove it",
            )
        else:
            seen_here: list[tuple[Match, int, int | None]] = []
            for entry, e_index in entries:
                if e_index is not None:
                    twin = next((prior for prior in (*earlier, *seen_here)
                                 if match_covers(prior[0], entry) and match_covers(entry, prior[0])), None)
                    if twin is not None:
                        twin_path = ("rules", twin[1], "match", twin[2]) if twin[2] is not None else ("rules", twin[1])
                        report.add(
                            codes.DUPLICATE_MATCH,
                            f"match entry {e_index} of rule {rule_index} in Route {route.key} repeats an earlier entry",
                            at(route.origin, "rules", rule_index, "match", e_index),
                            related=(Related(at(route.origin, *twin_path), "the same match, earlier"),),
                        )
                seen_here.append((entry, rule_index, e_index))
        earlier.extend((entry, rule_index, e_index) for entry, e_index in entries)


def check(graph: MeshGraph, report: Report) -> None:
    for route in graph.routes.values():
        _check_route(graph, route, report)


CHECK = Check(
    name="reachability",
    summary="every route rule can match; no match entry repeats an earlier one",
    reads=frozenset({"Mesh", "Service", "Route"}),
    codes=(codes.UNREACHABLE_RULE, codes.DUPLICATE_MATCH),
    run=check,
)
