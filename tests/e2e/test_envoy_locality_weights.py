"""Placement weights through real Envoy (docs/intents.md, Placements and failover, 4. Weights).

`catalog` runs on two vm platforms of one tier for its caller: `west-a` (us-west/a, weight 3)
and `west-b` (us-west/b, weight 1), both in another region than `web` (us-east/a), so both at
distance 3. Each placement is one bare backend at its endpoint address (mtls DISABLE: the split
under test happens in the caller's sidecar). `web` calls it through its generated sidecar.

Envoy, "Locality weighted load balancing" (arch_overview/upstream/load_balancing/locality_weight):
"When all endpoints are available, the locality is picked using a weighted round-robin
schedule, where the locality weight is used for weighting"; it "is configured by setting
locality_weighted_lb_config in the cluster configuration and providing weights in
LocalityLbEndpoints via load_balancing_weight"; and "effective_weight(L_X) = locality_weight_X
* min(100, availability(L_X))", so a locality with no healthy endpoint takes nothing. What each
step expects is the reference evaluator's (compiler.evaluate.tier_shares).
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from compiler.evaluate import failover_tiers, tier_shares
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

PLACES = {"home": {"region": "us-east", "zone": "a"},
          "west-a": {"region": "us-west", "zone": "a"},
          "west-b": {"region": "us-west", "zone": "b"}}
WEIGHTS = {"west-a": 3, "west-b": 1}
CONSECUTIVE_FAILURES = 2
REQUESTS = 400
# The split is a weighted round robin, so it is close to exact; the tolerance leaves room for
# where the schedule starts on each worker. An even split (what Envoy does without the
# weights, one endpoint per placement) is 25 points away from the expected 75%.
TOLERANCE = 0.06


class Weighted:
    def __init__(self, envoys, backends, addresses, workdir) -> None:
        web_address = addresses.next()
        outbound, admin = harness.free_ports(2)
        self.outbound = outbound
        self.address, port, self.running = start_placed_backends(backends, addresses, WEIGHTS)
        documents = placed_mesh("weights", PLACES, "home", web_address, outbound, admin, {
            "ports": [{"name": "http", "port": port, "protocol": "http"}],
            "placements": [{"platform": place, "weight": weight, "endpoints": [{"address": self.address[place]}]}
                           for place, weight in WEIGHTS.items()],
            # a long ejection keeps a failed placement out while the step runs
            "resilience": ejecting(CONSECUTIVE_FAILURES, "30s")})
        self.graph = compile_graph(harness.write_intents(workdir / "weights-mesh", documents))
        web = self.graph.services[Key(NAMESPACE, "web")]
        self.envoy = envoys.start("weights-web", sidecar_bootstrap(self.graph, "web", web_address), admin)
        self.catalog = self.graph.services[Key(NAMESPACE, "catalog")]
        self.tiers = failover_tiers(web.platform, self.catalog)

    def expected(self, healthy: dict[str, tuple[int, int]]) -> dict[str, float]:
        assert len(self.tiers) == 1  # both placements in one tier: the weights split it
        shares = tier_shares(self.catalog, self.tiers[0], {place: healthy.get(place, (1, 1)) for place in WEIGHTS})
        return {f"catalog-{place}": float(share) for place, share in shares.items()}

    def observed(self, count: int) -> tuple[Counter, dict[str, float]]:
        replies = [harness.http_get("127.0.0.1", self.outbound, "/items", host="catalog") for _ in range(count)]
        answered = Counter((reply.status, reply.backend) for reply in replies)
        by_backend = Counter(reply.backend for reply in replies if reply.status == 200)
        return answered, {backend: n / count for backend, n in by_backend.items()}


@pytest.fixture(scope="module")
def weighted(envoys, backends, addresses, workdir) -> Weighted:
    return Weighted(envoys, backends, addresses, workdir)


def test_the_weights_split_the_tier_as_the_evaluator_says(weighted: Weighted) -> None:
    expected = weighted.expected({})
    assert expected == {"catalog-west-a": 0.75, "catalog-west-b": 0.25}
    answered, shares = weighted.observed(REQUESTS)
    assert {status for status, _ in answered} == {200}
    assert set(shares) == set(expected)
    for backend, share in expected.items():
        assert abs(shares[backend] - share) < TOLERANCE, (backend, shares)


def test_a_wholly_ejected_placement_gives_its_share_to_the_other(weighted: Weighted) -> None:
    """west-a (weight 3) fails: its 503s eject it, and west-b takes every request, as the
    evaluator says with west-a's only endpoint unhealthy."""
    expected = weighted.expected({"west-a": (0, 1)})
    assert expected == {"catalog-west-b": 1.0}
    weighted.running["west-a"].failing(True)
    try:
        deadline = time.monotonic() + 10
        failures = 0
        while time.monotonic() < deadline and failures < CONSECUTIVE_FAILURES:
            answered, _ = weighted.observed(1)
            failures += answered[(503, "catalog-west-a")]
        assert failures == CONSECUTIVE_FAILURES
        deadline = time.monotonic() + 5  # Envoy applies the ejection to its load balancer within a moment
        while time.monotonic() < deadline and weighted.observed(1)[0] != Counter({(200, "catalog-west-b"): 1}):
            time.sleep(0.05)
        answered, shares = weighted.observed(40)
        assert answered == Counter({(200, "catalog-west-b"): 40})
        assert shares == expected
    finally:
        weighted.running["west-a"].failing(False)


def test_the_sidecar_loaded_the_weights(weighted: Weighted) -> None:
    """What Envoy loaded: its /clusters view names each endpoint's locality and weight."""
    import json

    status, body = weighted.envoy.admin("/clusters?format=json")
    assert status == 200
    cluster = next(c for c in json.loads(body)["cluster_statuses"] if c["name"].endswith("|catalog.shop"))
    seen = {(s["locality"]["zone"], s["locality"]["region"], s.get("priority", 0)) for s in cluster["host_statuses"]}
    assert seen == {("a", "us-west", 0), ("b", "us-west", 0)}
