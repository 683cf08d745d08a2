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
