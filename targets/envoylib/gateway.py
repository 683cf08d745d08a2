"""Gateway listeners: HTTP with virtual hosts per attached Route, TLS termination with a named
certificate, SNI passthrough to tcp proxies, HTTPS redirects.

Gateway listeners that share a port become one Envoy listener whose filter chains are chosen by
SNI (the tls_inspector reads it), so `https` and `tls` hosts can share port 443.
"""

from __future__ import annotations

from typing import Any

from compiler import codes
from compiler.diagnostics import Related
from compiler.evaluate import most_specific_routes, passthrough_names
from compiler.graph import GatewayNode, Key, RouteNode
from compiler.hostnames import covers, most_specific, overlap, specificity
from compiler.model import Listener
from targets.envoylib.blocks import HTTP_RBAC, route_filters, socket_address, tcp_proxy, tls_inspector, typed
from targets.envoylib.outbound import http_only_fields, merged_routes, stream_rule
from targets.envoylib.proxy import Proxy


def listener_family(listener: Listener) -> str:
    """http, tcp, or tls for every listener that speaks TLS (https and tls)."""
    return "tls" if listener.tls is not None else listener.protocol


class _GatewayBuilder:
    def __init__(self, proxy: Proxy, gateway: GatewayNode) -> None:
        self.proxy = proxy
        self.gateway = gateway
        self.routes: tuple[RouteNode, ...] = proxy.graph.gateway_routes.get(gateway.key, ())

    def covered_hosts(self, listener: Listener, route: RouteNode) -> list[str]:
        if not route.attaches(listener):
            return []
        return [h for h in route.spec.hosts if any(covers(lh, h) for lh in listener.hosts)]

    def listeners(self, address: str) -> list[dict]:
        by_port: dict[int, list[tuple[int, Listener]]] = {}
        for index, listener in enumerate(self.gateway.listeners):
            by_port.setdefault(listener.port, []).append((index, listener))
        result = []
        for port, group in by_port.items():
            family = listener_family(group[0][1])
            kept: list[Listener] = []
            for index, listener in group:
                if listener_family(listener) != family or (family == "tcp" and kept):
                    self.clash(index, listener, group[0])
                else:
                    kept.append(listener)
            result.append(self.port_listener(port, family, kept, address))
        return result

    def clash(self, index: int, listener: Listener, first: tuple[int, Listener]) -> None:
        self.proxy.report.add(
            codes.ENVOY_LISTENER_PORT_CLASH,
            f"Gateway {self.gateway.key} listener {listener.name!r} ({listener.protocol}) shares port "
            f"{listener.port} with listener {first[1].name!r} ({first[1].protocol}), which Envoy cannot tell apart",
            self.proxy.at(self.gateway.origin, "listeners", index, "port"),
            related=(Related(self.proxy.at(self.gateway.origin, "listeners", first[0], "port"), "the other listener"),),
            hint="give the listener its own port",
        )

    def port_listener(self, port: int, family: str, listeners: list[Listener], address: str) -> dict:
        name = f"gateway|{port}"
        result: dict[str, Any] = {"name": name, "address": socket_address(address, port)}
        if family == "http":
            virtual_hosts = self.http_virtual_hosts(listeners, port)
            result["filter_chains"] = [{"filters": [self.http_manager(name, virtual_hosts, port)]}]
        elif family == "tcp":
            result["filter_chains"] = [{"filters": [self.stream_proxy(name, listeners[0], port)]}]
        else:
            result["listener_filters"] = [tls_inspector()]
            result["filter_chains"] = [chain for listener in listeners
                                       for chain in self.tls_chains(listener, listeners, port)]
            https = [listener for listener in listeners if listener.protocol == "https"]
            if https and not any("*" in listener.hosts for listener in listeners):
                result["default_filter_chain"] = self.unknown_sni_chain(https[0], port)
        return result

    def http_manager(self, name: str, virtual_hosts: list[dict], port: int) -> dict:
        http_filters = route_filters(virtual_hosts,
                                     self.proxy.authentication(self.gateway.spec.jwt) + self.access_filters(port))
        manager = self.proxy.http_connection_manager(name, virtual_hosts, http_filters, "inbound",
                                                     ignore_port_in_host=True)
        if self.gateway.spec.trustedProxies or self.proxy.graph.gateway_policies_for(self.gateway.key):
            # the edge: the client address is the connection's, or the trustedProxies-th
            # X-Forwarded-For entry from the right, never an entry a client wrote itself
            manager["typed_config"]["use_remote_address"] = True
            if self.gateway.spec.trustedProxies:
                manager["typed_config"]["xff_num_trusted_hops"] = self.gateway.spec.trustedProxies
        return manager

    def access_filters(self, port: int) -> list[dict]:
        """RBAC of the gateway's AccessPolicies on this port: deny rules, then allow rules when
        there are any (a gateway without allow rules admits every client)."""
        sections: dict[str, dict] = {"deny": {}, "allow": {}}
        for policy in self.proxy.graph.gateway_policies_for(self.gateway.key):
            for rule in (*policy.deny, *policy.allow):
                if rule.spec.ports and port not in rule.spec.ports:
                    continue
                sections[rule.section][f"{policy.key}/{rule.section}/{rule.index}"] = {
                    "permissions": [self.proxy.permission(rule)], "principals": self.proxy.rule_principals(rule, True)}
        allows = any(p.allow for p in self.proxy.graph.gateway_policies_for(self.gateway.key))
        return ([typed("envoy.filters.http.rbac", HTTP_RBAC, rules={"action": "DENY", "policies": sections["deny"]})]
                if sections["deny"] else []) + \
            ([typed("envoy.filters.http.rbac", HTTP_RBAC, rules={"action": "ALLOW", "policies": sections["allow"]})]
             if allows else [])

    def http_virtual_hosts(self, listeners: list[Listener], port: int, answering: Listener | None = None) -> list[dict]:
        """Virtual hosts for listeners that share one HTTP connection manager (an http port), or
        for the filter chain of the https listener `answering` among the https `listeners` of its
        port. Every listener host and every host of an attached Route is a domain exactly once
        (Envoy refuses a domain written twice); it goes to what docs/intents.md says serves that
        name: the listener whose hosts match it most specifically, and among that listener's
        Routes the one whose host does. Envoy then picks, per request, the most specific domain,
        so `foo.bar.com` and `*.bar.com` listeners share a port. In an https chain a name
        another listener serves is answered 421 (Gateway API Listener.hostname: "If another
        Listener has an exact match or more specific wildcard entry, the Gateway SHOULD return
        a 421")."""
        attached = [route for route in self.routes
                    if any(overlap(lh, h) for listener in listeners if route.attaches(listener)
                           for lh in listener.hosts for h in route.spec.hosts)]
        domains = dict.fromkeys([h for listener in listeners for h in listener.hosts]
                                + [h for route in attached for h in route.spec.hosts])
        by_key = {route.key: route for route in attached}
        # domain -> (listener index, the keys of the merged Routes), or None for 404
        served: dict[str, tuple[int, tuple[Key, ...]] | None] = {}
        for domain in domains:
            index = serving_listener(listeners, domain)
            if index is None or listeners[index].httpsRedirect:
                served[domain] = None if index is None else (index, ())
                continue
            merged = tuple(r.key for r in most_specific_routes(tuple(attached), listeners[index], domain))
            # in an https chain a name of another listener is misdirected even where no Route serves it
            served[domain] = ((index, merged) if merged else
                              (index, ()) if answering is not None and listeners[index] is not answering else None)
        groups: dict[tuple[int, tuple[Key, ...]] | None, list[str]] = {}
        for domain, decision in served.items():
            # Envoy takes the most specific domain written: one decided like its nearest broader
            # domain is left out, one decided otherwise (a 404 under a broader route) is written
            broader = most_specific([other for other in served if other != domain], domain)
            if decision != (served[broader] if broader is not None else None):
                groups.setdefault(decision, []).append(domain)
        virtual_hosts: list[dict] = []
        for decision, names in groups.items():
            listener = listeners[decision[0]] if decision else None
            routes = tuple(by_key[k] for k in decision[1]) if decision else ()
            if answering is not None and listener is not None and listener is not answering:
                virtual_hosts.append(self.misdirected_host(listener, routes, names))
            else:
                virtual_hosts.append(self.virtual_host(listener, routes, names, port))
        return virtual_hosts

    @staticmethod
    def misdirected_host(owner: Listener, routes: tuple[RouteNode, ...], domains: list[str]) -> dict:
        """Names another https listener of the port serves, reached through this listener's SNI
        (an HTTP/2 connection reused for another host): 421 Misdirected Request, so the client
        opens a connection of its own (RFC 9110 15.5.20)."""
        return {"name": f"{owner.name}|{route_names(routes) or 'unrouted'}|misdirected", "domains": domains,
                "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 421}}]}

    def virtual_host(self, listener: Listener | None, routes: tuple[RouteNode, ...], domains: list[str],
                     port: int) -> dict:
        if listener is None:
            return {"name": f"gateway|{port}|unserved", "domains": domains, "routes": []}  # 404
        if listener.httpsRedirect:
            # Envoy's https_redirect keeps a port written in the Host header; the semantics send
            # the client to the https port (Gateway API: "the redirect port MUST be the
            # well-known port associated with the redirect scheme"): 443 replaces it.
            ported = {"name": ":authority", "string_match": {"safe_regex": {"regex": ".*:[0-9]+"}}}
            return {"name": f"{listener.name}|https-redirect", "domains": domains, "routes": [
                {"match": {"prefix": "/", "headers": [ported]},
                 "redirect": {"https_redirect": True, "port_redirect": 443}},
                {"match": {"prefix": "/"}, "redirect": {"https_redirect": True}}]}
        assert routes  # an answered, non-redirect decision has a Route
        return {"name": f"{listener.name}|{route_names(routes)}", "domains": domains,
                "routes": merged_routes(self.proxy, routes, port)}

    def tls_chains(self, listener: Listener, on_port: list[Listener], port: int) -> list[dict]:
        tls = listener.tls
        assert tls is not None  # a tls or https listener has a tls block (Listener's validator)
        if tls.mode == "passthrough":
            return self.passthrough_chains(listener, on_port)
        if listener.protocol == "https":
            https = [other for other in on_port if other.protocol == "https"]
            filters = [self.http_manager(f"gateway|{port}|{listener.name}",
                                         self.http_virtual_hosts(https, port, answering=listener), port)]
        else:
            filters = [self.stream_proxy(f"gateway|{port}|{listener.name}", listener, port)]
        return [{"filter_chain_match": match, "transport_socket": self.proxy.certificates.terminate(tls),
                 "filters": filters} for match in server_names_matches(listener.hosts)]

    def unknown_sni_chain(self, first_https: Listener, port: int) -> dict:
        """A TLS connection whose SNI names no listener (or that sends none) is completed with the
        first https listener's certificate and TLS settings (client validation, versions, ciphers:
        a name no listener serves gets no weaker TLS than the first listener's) and answered 404
        (docs/intents.md; Gateway API: traffic
        that matches no Listener hostname "MUST be rejected ... HTTP returns a 404"); without
        this chain Envoy closes the connection ("If no matching FilterChain is found, the default
        filter chain will be used ..., otherwise the connection will be closed")."""
        assert first_https.tls is not None  # an https listener has one (Listener's validator)
        return {"transport_socket": self.proxy.certificates.terminate(first_https.tls),
                "filters": [self.http_manager(f"gateway|{port}|unknown-sni", [], port)]}

    def passthrough_chains(self, listener: Listener, on_port: list[Listener]) -> list[dict]:
        """One filter chain per rule: its `sni` names (or the Route's hosts, for a rule whose
        destinations take a byte stream; see passthrough_names) to its destinations,
        for the names this listener serves most specifically among those on its port (another
        listener's name is that listener's chain; Envoy refuses a server name written twice)."""
        mine = on_port.index(listener)
        chains: list[dict] = []
        claimed: set[str] = set()
        for route in self.routes:
            hosts = self.covered_hosts(listener, route)
            if not hosts:
                continue
            for rule in route.rules:
                if rule.spec.match and all(m.path or m.method or m.headers or m.query for m in rule.spec.match):
                    continue  # HTTP matches never match encrypted bytes (analysis reports MESH340)
                names = passthrough_names(self.proxy.graph, rule, list(rule.spec.match), hosts)
                names = [n for n in dict.fromkeys(names)
                         if n not in claimed and serving_listener(on_port, n) == mine]
                where = self.proxy.at(route.origin, "rules", rule.index)
                unusable = http_only_fields(rule.spec)
                if rule.spec.redirect is not None:
                    unusable.append("redirect")
                if unusable:
                    self.proxy.report.add(
                        codes.ENVOY_ROUTE_FEATURE_UNSUPPORTED,
                        f"Route {route.key} rule {rule.index} sets {', '.join(unusable)} on a TLS passthrough "
                        "listener, which forwards encrypted bytes by SNI only"
                        + ("; the rule is not applied" if rule.spec.redirect is not None else
                           "; its destinations are used without them"),
                        where,
                    )
                if rule.spec.redirect is not None or not names:
                    continue
                claimed.update(names)
                weighted = [(self.proxy.service_cluster(t), t.weight) for t in rule.destinations]
                stat_prefix = f"gateway|{listener.port}|{listener.name}|{route.key}|{rule.index}"
                chains.extend({"filter_chain_match": match, "filters": [tcp_proxy(stat_prefix, weighted)]}
                              for match in server_names_matches(names))
        return chains

    def stream_proxy(self, stat_prefix: str, listener: Listener, port: int) -> dict:
        """A tcp (or terminated tls) listener forwards to the first Route that covers it."""
        for route in self.routes:
            if self.covered_hosts(listener, route):
                rule = stream_rule(self.proxy, (route,), None)
                if rule is not None:
                    return tcp_proxy(stat_prefix, [(self.proxy.service_cluster(t), t.weight)
                                                   for t in rule.destinations])
        # Nothing routed here: Envoy needs a cluster, so connections are refused by an empty one.
        return tcp_proxy(stat_prefix, [(self.unrouted_cluster(), 100)])

    def unrouted_cluster(self) -> str:
        name = "gateway|unrouted"
        self.proxy.clusters[name] = {"name": name, "type": "STATIC",
                                     "load_assignment": {"cluster_name": name, "endpoints": []}}
        return name


def route_names(routes: tuple[RouteNode, ...]) -> str:
    """The keys of merged Routes, for a virtual host's name."""
    return "+".join(str(route.key) for route in routes)


def serving_listener(listeners: list[Listener], name: str) -> int | None:
    """The index of the listener whose hosts serve `name` most specifically (the first on a tie)."""
    scored = [(specificity(p), -index) for index, listener in enumerate(listeners)
              if (p := most_specific(list(listener.hosts), name)) is not None]
    return -max(scored)[1] if scored else None


def server_names_matches(names: list[str]) -> list[dict]:
    """Filter chain matches on SNI names; `*` (any name) is a chain without server_names, as
    Envoy refuses `*` there, and the other names keep a chain of their own: Envoy picks the
    chain with the most specific name first, so a name only covered by the catch-all would go
    to another listener's wildcard (`*.example.com`) instead."""
    named = [name for name in names if name != "*"]
    return ([{"server_names": named}] if named else []) + ([{}] if "*" in names else [])


def gateway_listeners(proxy: Proxy, gateway: GatewayNode, address: str) -> list[dict]:
    return _GatewayBuilder(proxy, gateway).listeners(address)
