"""The laws of the overlay merge (docs/intents.md, "Environments", Laws), as hypothesis
properties over Service documents: an empty overlay changes nothing, an overlay that only sets
values is idempotent, applying overlays in turn equals applying their merge (no deletions), and
every location a diagnostic names lies inside the file it names, whatever an overlay holds."""

from __future__ import annotations

import textwrap

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.build import check_mesh
from compiler.environments import merge_data
from tests.test_environments import MESH, SERVICES

NAMES = st.sampled_from(["http", "grpc", "admin", "metrics"])
DURATIONS = st.sampled_from(["1s", "250ms", "2m", "5s"])
LABELS = st.dictionaries(st.sampled_from(["track", "tier", "zone"]), st.sampled_from(["a", "b", "c"]), max_size=2)


def ports(min_size: int) -> st.SearchStrategy:
    item = st.fixed_dictionaries({"name": NAMES},
                                 optional={"port": st.integers(1, 65535), "protocol": st.sampled_from(["http", "tcp"])})
    return st.lists(item, min_size=min_size, max_size=4, unique_by=lambda p: p["name"])


ENDPOINTS = st.lists(st.fixed_dictionaries({"address": st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3"])},
                                           optional={"version": st.sampled_from(["v1", "v2"])}),
                    max_size=3, unique_by=lambda e: e["address"])
def placements(min_size: int) -> st.SearchStrategy:
    """A base's placements (min_size 1) each have their keyed list of endpoints (see BASES);
    an overlay's may leave it out."""
    endpoints = {"endpoints": ENDPOINTS} if min_size else {}
    item = st.fixed_dictionaries({"platform": st.sampled_from(["east", "west", "vms"]), **endpoints},
                                 optional={"priority": st.integers(0, 9), "weight": st.integers(1, 100),
                                           **({} if min_size else {"endpoints": ENDPOINTS})})
    return st.lists(item, min_size=min_size, max_size=3, unique_by=lambda p: p["platform"])


# keyed lists of the Service (docs/intents.md, Environments): field -> key, and their keyed sublists
KEYED = {"ports": ("name", {}), "placements": ("platform", {"endpoints": ("address", {})})}


def fields(min_ports: int) -> dict:
    """Optional Service fields, each always of one type (as the schema makes them)."""
    return {
        "owner": st.sampled_from(["team-a", "team-b"]),
        "public": st.booleans(),
        "calls": st.lists(NAMES, max_size=3),
        "ports": ports(min_ports),
        "resilience": st.fixed_dictionaries({}, optional={
            "timeout": DURATIONS, "retries": st.fixed_dictionaries({}, optional={
                "attempts": st.integers(0, 5), "perTryTimeout": DURATIONS})}),
        "versions": st.dictionaries(st.sampled_from(["v1", "v2", "v3"]),
                                    st.fixed_dictionaries({}, optional={"labels": LABELS}), max_size=3),
        "placements": placements(min_ports),
    }


IDENTITY = {"kind": st.just("Service"), "name": st.just("api")}
# a base has the keyed lists the overlays merge into, at every level (an overlay item the base's
# list lacks is then MESH021, as docs/intents.md says; a list the base lacks is set whole)
BASES = st.fixed_dictionaries({"apiVersion": st.just("meshc/v1"), **IDENTITY, "platform": st.just("k8s"),
                               "ports": ports(1), "placements": placements(1)},
                              optional={k: v for k, v in fields(1).items() if k not in ("ports", "placements")})
# overlays that set values only: no null, no $patch
OVERLAYS = st.fixed_dictionaries(IDENTITY, optional=fields(0))


@given(BASES)
def test_an_empty_overlay_changes_nothing(base: dict) -> None:
    assert merge_data(base, {"kind": "Service", "name": "api"}) == base


@given(BASES, OVERLAYS)
def test_an_overlay_that_sets_values_is_idempotent(base: dict, overlay: dict) -> None:
    once = merge_data(base, overlay)
    assert merge_data(once, overlay) == once


@given(BASES, OVERLAYS, OVERLAYS)
def test_applying_overlays_in_turn_equals_applying_their_merge(base: dict, first: dict, second: dict) -> None:
    composed = merge_data(first, second, compose=True)
    assert merge_data(merge_data(base, first), second) == merge_data(base, composed)


def assert_set_wins(base: dict, overlay: dict, merged: dict, keyed: dict) -> None:
    """What the overlay sets is in the merge, what it leaves is the base's, keyed lists merge
    item by item on their key: the base's items, in order (an item the base lacks is MESH021
    unless marked `$patch: add`, and is not merged)."""
    for field, value in overlay.items():
        if field in keyed and field in base:
            key, inner = keyed[field]
            before = [item[key] for item in base[field]]
            assert [item[key] for item in merged[field]] == before
            for item in value:
                if item[key] in before:
                    got = next(m for m in merged[field] if m[key] == item[key])
                    was = next(b for b in base[field] if b[key] == item[key])
                    assert_set_wins(was, item, got, inner)
        elif isinstance(value, dict) and isinstance(base.get(field), dict):
            assert all(k in merged[field] for k in value)
        else:
            assert merged[field] == value  # scalars, unkeyed lists and new fields are the overlay's
    for field, value in base.items():
        if field not in overlay:
            assert merged[field] == value


@given(BASES, OVERLAYS)
def test_what_an_overlay_sets_wins_and_what_it_leaves_stays(base: dict, overlay: dict) -> None:
    assert_set_wins(base, overlay, merge_data(base, overlay), KEYED)


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.sampled_from(["", "x", "5s", "http", "$patch"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["name", "port", "protocol", "timeout", "$patch", "weird", "address"]), inner,
                    max_size=3)), max_leaves=8)
HOSTILE = st.fixed_dictionaries(
    {"kind": st.sampled_from(["Service", "Mesh", "Route", "Nope"]), "name": st.sampled_from(["api", "shop", "zzz"])},
    optional={"$patch": st.sampled_from(["add", "delete", "replace", "merge"]), "ports": VALUES, "resilience": VALUES,
              "platform": VALUES, "endpoints": VALUES, "environments": VALUES, "owner": VALUES,
              "placements": VALUES})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(HOSTILE, min_size=1, max_size=3))
def test_every_diagnostic_location_lies_inside_the_file_it_names(tmp_path_factory, overlays: list[dict]) -> None:
    root = tmp_path_factory.mktemp("mesh")
    (root / "mesh.yaml").write_text(MESH)
    (root / "shop.yaml").write_text(SERVICES)
    (root / "environments" / "prod").mkdir(parents=True)
    (root / "environments" / "prod" / "overlay.yaml").write_text(
        yaml.safe_dump_all(overlays, sort_keys=False))
    compiled = check_mesh(root)
    for diagnostic in compiled.report.diagnostics:
        assert diagnostic.message.startswith(("[prod] ", "[staging] ", "[staging, prod] "))
        for location in (diagnostic.location, *(r.location for r in diagnostic.related)):
            if location is None:
                continue
            lines = (root / location.file).read_text().splitlines()
            assert (root / location.file).resolve().is_relative_to(root.resolve())
            assert 1 <= location.line <= max(1, len(lines)), (location, textwrap.indent("\n".join(lines), "  "))
            line = lines[location.line - 1] if lines else ""
            assert 1 <= location.column <= len(line) + 1, (location, line)


def test_the_keyed_lists_are_the_documented_ones() -> None:
    """docs/intents.md, "Environments": which lists merge item by item, on which key (a list of
    objects that each require a `name` is keyed by name, whatever kind adds one later)."""
    from compiler.environments import keyed_lists

    documented = {"Mesh.platforms": "name", "Service.ports": "name", "Gateway.listeners": "name",
                  "ExternalService.ports": "name", "RouteTest.cases": "name", "Service.endpoints": "address",
                  "Placement.endpoints": "address", "Service.placements": "platform"}
    assert documented.items() <= keyed_lists().items()
    assert "Route.rules" not in keyed_lists() and "Service.calls" not in keyed_lists()


def test_placements_merge_by_platform() -> None:
    base = {"apiVersion": "meshc/v1", "kind": "Service", "name": "api", "ports": [{"name": "http", "port": 80}],
            "placements": [{"platform": "east", "priority": 0},
                           {"platform": "vms", "endpoints": [{"address": "10.0.0.1"}, {"address": "10.0.0.2"}]}]}
    overlay = {"kind": "Service", "name": "api",
               "placements": [{"platform": "vms", "priority": 1,
                               "endpoints": [{"address": "10.0.0.2", "$patch": "delete"},
                                             {"address": "10.0.0.3", "$patch": "add"}]}]}
    assert merge_data(base, overlay)["placements"] == [
        {"platform": "east", "priority": 0},
        {"platform": "vms", "endpoints": [{"address": "10.0.0.1"}, {"address": "10.0.0.3"}], "priority": 1}]


def test_replace_and_delete_markers() -> None:
    base = {"apiVersion": "meshc/v1", "kind": "Service", "name": "api", "platform": "k8s", "owner": "a",
            "ports": [{"name": "http", "port": 80, "protocol": "http"}, {"name": "admin", "port": 81}],
            "resilience": {"timeout": "1s", "retries": {"attempts": 2}}}
    whole = merge_data(base, {"kind": "Service", "name": "api", "$patch": "replace", "platform": "vm",
                              "ports": [{"name": "tcp", "port": 9}]})
    assert whole == {"apiVersion": "meshc/v1", "kind": "Service", "name": "api", "platform": "vm",
                     "ports": [{"name": "tcp", "port": 9}]}  # identity kept, nothing else of the base
    item = merge_data(base, {"kind": "Service", "name": "api",
                             "ports": [{"name": "http", "port": 8080, "$patch": "replace"}, {"name": "admin",
                                                                                           "$patch": "delete"}],
                             "resilience": {"$patch": "replace", "timeout": "2s"}, "owner": None})
    assert item["ports"] == [{"name": "http", "port": 8080}]
    assert item["resilience"] == {"timeout": "2s"}
    assert "owner" not in item
    assert merge_data(base, {"kind": "Service", "name": "api", "$patch": "delete"}) is None
