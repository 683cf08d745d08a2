"""Locality failover through real Envoy (docs/intents.md, Placements and failover).

`catalog` runs on three vm platforms at once: `east-a` (the caller's own locality), `east-b`
(the caller's region, another zone) and `west` (another region). Its workloads are bare
backends at their endpoint addresses (mtls DISABLE: the failover under test happens in the
caller's sidecar); a failed one answers 503 to everything. `web`, on `east-a`, calls it
through its generated sidecar.

Envoy's documentation of priority levels: "if the hosts in priority level 0 are all unhealthy,
... traffic will be routed to priority level 1" (arch_overview/upstream/load_balancing/priority),
and of outlier detection: "If an upstream host returns some number of consecutive 5xx, it
will be ejected"; an ejected host is returned to service after base_ejection_time, at the
next interval. Each step below is what
the reference evaluator (compiler.evaluate.serving_placements over failover_tiers) says.
"""

from __future__ import annotations

import time

import pytest

from compiler.evaluate import failover_tiers, serving_placements
from compiler.graph import Key
from tests.e2e import harness
from tests.e2e.meshes import (
    NAMESPACE,
    compile_graph,
    ejecting,
    placed_mesh,
    sidecar_bootstrap,
    start_placed_backends,
)

pytestmark = pytest.mark.e2e

PLACES = {"east-a": {"region": "us-east", "zone": "a"},
          "east-b": {"region": "us-east", "zone": "b"},
          "west": {"region": "us-west", "zone": "a"}}
CONSECUTIVE_FAILURES = 2
# seconds: baseEjectionTime, long enough that a failing placement stays ejected while a step runs
EJECTION = 3


class Failover:
    def __init__(self, envoys, backends, addresses, workdir) -> None:
        web_address = addresses.next()
        outbound, admin = harness.free_ports(2)
        self.outbound = outbound
        self.catalog_address, self.catalog_port, self.running = start_placed_backends(backends, addresses, PLACES)
        documents = placed_mesh("failover", PLACES, "east-a", web_address, outbound, admin, {
            "ports": [{"name": "http", "port": self.catalog_port, "protocol": "http"}],
            "placements": [{"platform": place, "endpoints": [{"address": self.catalog_address[place]}]}
                           for place in ("west", "east-b", "east-a")],  # written order does not decide
            "resilience": ejecting(CONSECUTIVE_FAILURES, f"{EJECTION}s")})
        self.graph = compile_graph(harness.write_intents(workdir / "failover-mesh", documents))
        web = self.graph.services[Key(NAMESPACE, "web")]
        self.envoy = envoys.start("failover-web", sidecar_bootstrap(self.graph, "web", web_address), admin)
        self.tiers = failover_tiers(web.platform, self.graph.services[Key(NAMESPACE, "catalog")])

    def fail(self, place: str, failing: bool = True) -> None:
        self.running[place].failing(failing)

    def answers(self, count: int) -> set[tuple[int, str | None]]:
        """(status, answering backend) of `count` requests from web's application."""
        replies = [harness.http_get("127.0.0.1", self.outbound, "/items", host="catalog") for _ in range(count)]
        return {(reply.status, reply.backend) for reply in replies}

    def expected(self, down: set[str]) -> set[tuple[int, str]]:
        return {(200, f"catalog-{place}") for place in serving_placements(self.tiers, frozenset(down))}

    def after_failures(self, failed: str) -> set[tuple[int, str | None]]:
        """Fail one placement: its 503s eject it (Envoy applies an ejection to its load
        balancer within a moment, so requests are sent until one succeeds, well inside the
        ejection time); then 20 requests."""
        self.fail(failed)
        assert self.answers(CONSECUTIVE_FAILURES) == {(503, f"catalog-{failed}")}
        deadline = time.monotonic() + EJECTION - 1
        while time.monotonic() < deadline and self.answers(1) == {(503, f"catalog-{failed}")}:
            time.sleep(0.05)
        return self.answers(20)


@pytest.fixture(scope="module")
def failover(envoys, backends, addresses, workdir) -> Failover:
    return Failover(envoys, backends, addresses, workdir)


def test_the_evaluator_orders_the_placements_by_distance_from_the_caller(failover: Failover) -> None:
    order = [[r.placement.platform.name for r in tier] for tier in failover.tiers]
    assert order == [["east-a"], ["east-b"], ["west"]]


def test_traffic_stays_in_the_callers_locality_and_fails_over_by_distance_then_returns(
        failover: Failover) -> None:
    assert failover.answers(20) == failover.expected(set()) == {(200, "catalog-east-a")}
    assert failover.after_failures("east-a") == failover.expected({"east-a"}) == {(200, "catalog-east-b")}
    assert failover.after_failures("east-b") == failover.expected({"east-a", "east-b"}) == {(200, "catalog-west")}

    # the caller's own locality recovers: once its ejection time is over it takes the traffic back
    failover.fail("east-a", False)
    deadline = time.monotonic() + 2 * EJECTION
    while time.monotonic() < deadline and failover.answers(1) != {(200, "catalog-east-a")}:
        time.sleep(0.1)
    assert failover.answers(20) == failover.expected({"east-b"}) == {(200, "catalog-east-a")}
    failover.fail("east-b", False)


def test_the_sidecar_carries_localities_and_priorities(failover: Failover) -> None:
    """What Envoy loaded: its /clusters view names each endpoint's locality and priority."""
    status, body = failover.envoy.admin("/clusters?format=json")
    assert status == 200
    import json

    cluster = next(c for c in json.loads(body)["cluster_statuses"] if c["name"].endswith("|catalog.shop"))
    seen = {(s["locality"]["zone"], s["locality"]["region"], s.get("priority", 0)) for s in cluster["host_statuses"]}
    assert seen == {("a", "us-east", 0), ("b", "us-east", 1), ("a", "us-west", 2)}
