"""Host name patterns as gateways and SNI matches use them: exact names, `*.` wildcards, `*`.

The one definition of coverage: the checks (policies) and the targets both ask here."""

from __future__ import annotations


def covers(pattern: str, host: str) -> bool:
    """Whether every name `host` stands for is also served by `pattern`."""
    if pattern == "*" or pattern == host:
        return True
    if host == "*":
        return False
    if pattern.startswith("*."):
        # `*.example.com` serves `a.example.com` and `*.a.example.com`, not `example.com`.
        return host.endswith(pattern[1:])
    return False


def overlap(first: str, second: str) -> bool:
    """Whether some name is served by both patterns."""
    return covers(first, second) or covers(second, first)


def specificity(pattern: str) -> tuple[int, int]:
    """Larger is more specific: exact names, then longer wildcard suffixes, then `*` (Gateway
    API "Listeners that are distinct only by Hostname"; Envoy picks virtual hosts and filter
    chains by SNI the same way)."""
    if pattern == "*":
        return (0, 0)
    if pattern.startswith("*."):
        return (1, len(pattern))
    return (2, len(pattern))


def most_specific(patterns: list[str], name: str) -> str | None:
    """The pattern that serves `name` (a host name, or a pattern: then the pattern that covers
    it) most specifically; None when none does. Case is ignored."""
    matching = [p for p in patterns if covers(p.lower(), name.lower())]
    return max(matching, key=specificity) if matching else None
