"""Route rules that can never match, and match entries that repeat earlier ones."""

from __future__ import annotations

from compiler import codes
from compiler.diagnostics import Related, Report
from compiler.evaluate import segment_prefix_matches
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
    """Compared by meaning, not as written: a prefix `/` (or `//`) matches every path, as no
    path match does, and a prefix's trailing `/` is ignored (docs/intents.md, Match)."""
    if broad is None or (broad.prefix is not None and broad.prefix.rstrip("/") == ""):
        return True
    if narrow is None:
        return False
    if broad.prefix is not None:  # a segment prefix (docs/intents.md): `/port` does not cover `/port-and-host`
        path = narrow.exact if narrow.exact is not None else narrow.prefix
        return path is not None and segment_prefix_matches(broad.prefix, path.rstrip("/") or "/")
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


Entry = tuple[Match, int, "int | None"]  # a match entry, its rule index, its entry index (None: catch-all)


def _path_key(path: PathMatch | None) -> tuple[str | None, str | None]:
    """(exact | prefix | regex, its value) of a path match; (None, None) for none."""
    if path is None:
        return None, None
    for kind in ("exact", "prefix", "regex"):
        value = getattr(path, kind)
        if value is not None:
            return kind, value
    return None, None


class _EntryIndex:
    """Match entries by what an entry that covers another must share with it (method, port,
    and an equal path, a shorter path prefix, or no path), so that finding the entries that
    may cover a new one looks at those alone: a Route of thousands of rules is checked in
    about linear time, not by comparing every rule with every earlier one."""

    def __init__(self) -> None:
        self.buckets: dict[tuple, list[tuple[int, Entry]]] = {}
        self.prefix_lengths: set[int] = set()
        self.count = 0

    def add(self, entry: Entry) -> None:
        match = entry[0]
        kind, value = _path_key(match.path)
        if kind == "prefix" and value is not None:
            self.prefix_lengths.add(len(value))
        self.buckets.setdefault((match.method, match.port, kind, value), []).append((self.count, entry))
        self.count += 1

    def _candidates(self, narrow: Match):
        kind, value = _path_key(narrow.path)
        keys: list[tuple[str | None, str | None]] = [(None, None)]
        if kind == "regex":
            keys.append((kind, value))
        elif value is not None:
            if kind == "exact":
                keys.append((kind, value))
            keys += [("prefix", value[:length]) for length in sorted(self.prefix_lengths) if length <= len(value)]
        for method in {None, narrow.method}:
            for port in {None, narrow.port}:
                for kind, value in keys:
                    yield from self.buckets.get((method, port, kind, value), ())

    def first(self, narrow: Match, both_ways: bool = False) -> Entry | None:
        """The earliest entry that covers `narrow` (and that it covers, with both_ways)."""
        found = [(order, entry) for order, entry in self._candidates(narrow)
                 if match_covers(entry[0], narrow) and (not both_ways or match_covers(narrow, entry[0]))]
        return min(found, key=lambda pair: pair[0])[1] if found else None


def _check_route(graph: MeshGraph, route: RouteNode, report: Report) -> None:
    at = graph.sources.locate
    earlier = _EntryIndex()
    for rule_index, rule in enumerate(route.spec.rules):
        entries: list[tuple[Match, int | None]] = (
            [(entry, e_index) for e_index, entry in enumerate(rule.match)] if rule.match else [(CATCH_ALL, None)]
        )
        covering = [earlier.first(entry) for entry, _ in entries]
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
            here = _EntryIndex()
            for entry, e_index in entries:
                if e_index is not None:
                    twin = earlier.first(entry, both_ways=True) or here.first(entry, both_ways=True)
                    if twin is not None:
                        twin_path = ("rules", twin[1], "match", twin[2]) if twin[2] is not None else ("rules", twin[1])
                        report.add(
                            codes.DUPLICATE_MATCH,
                            f"match entry {e_index} of rule {rule_index} in Route {route.key} repeats an earlier entry",
                            at(route.origin, "rules", rule_index, "match", e_index),
                            related=(Related(at(route.origin, *twin_path), "the same match, earlier"),),
                        )
                here.add((entry, rule_index, e_index))
        for entry, e_index in entries:
            earlier.add((entry, rule_index, e_index))


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
