"""Flavor gateway-api: Gateway API routes (GAMMA for mesh Routes) on top of Istio.

Mesh Routes become HTTPRoutes whose parent is the Kubernetes Service (group "", kind Service);
versions become Services of their own (`<service>-<version>`), the GAMMA way to split traffic.
What the standard channel (v1.6.1) has no field for is reported, never dropped silently.
Traffic policy, security and scoping stay Istio's (see targets.kubernetes.PlatformEmitter).
"""

from __future__ import annotations

import re
from functools import cached_property

from compiler import codes
from compiler.addressing import cluster_dns_name, version_service_name
from compiler.diagnostics import Related
from compiler.graph import GATEWAY_API_CLASS, GatewayNode, Key, ResolvedRule, RouteNode, ServiceNode, Target
from compiler.hostnames import covers, overlap
from compiler.model import (
    HTTP_PROTOCOLS,
    Cors,
    HeaderModifier,
    Listener,
    Match,
    Retries,
    StringMatch,
    duration_seconds,
    timeout_seconds,
)
from targets.kubernetes_meta import document, metadata
from targets.kubernetes_platform import PlatformEmitter
from targets.kubernetes_support import (
    GATEWAY_API,
    RouteGroup,
    gateway_api_duration,
    gateway_groups,
    protocol_name,
    rule_kind,
    whole_milliseconds,
)

_PATH_TYPES = {"exact": "Exact", "prefix": "PathPrefix", "regex": "RegularExpression"}


class GatewayApiEmitter(PlatformEmitter):
    def on_platform(self, key: Key) -> bool:
        service = self.graph.services[key]
        return service.platform.name == self.platform.name or service.placement(self.platform.name) is not None

    def destination_rule(self, service: ServiceNode, with_subsets: bool = True) -> dict:
        # Versions of a service on this platform are Services of their own, not subsets.
        return super().destination_rule(service, with_subsets and not self.on_platform(service.key))

    def extra_callee_hosts(self, callee: Key) -> list[str]:
        if not self.on_platform(callee):
            return []
        return [self.hosts(callee, version) for version in self.graph.services[callee].spec.versions]

    def routing(self, service: ServiceNode) -> list[dict]:
        if not self.on_platform(service.key):
            # A callee off the platform has no Kubernetes Service to be a parent: Istio routes it.
            return super().routing(service)
        routes = self.graph.routes_for(service.key)
        if routes:
            parent = {"group": "", "kind": "Service", "name": service.name}
            group = RouteGroup(routes)
            translated = self.http_route(group, [parent], None, group.rules())
            # A Route of tcp and tls rules only leaves nothing the standard channel can carry.
            return [translated] if translated["spec"]["rules"] else []
        return self.default_routes(service)

    def default_routes(self, service: ServiceNode) -> list[dict]:
        resilience = service.resilience
        http_ports = [p for p in service.spec.ports if p.protocol in HTTP_PROTOCOLS]
        if not http_ports or (resilience.timeout is None and resilience.retries is None):
            return []
        if resilience.retries is not None:
            self.report_default_retries(service)
        timeouts = self.timeouts(resilience.timeout, resilience.retries, service.origin, ("resilience", "timeout"),
                                 ("resilience", "retries", "perTryTimeout"))
        if not timeouts:
            return []
        docs = []
        for port in http_ports:
            rule = {"backendRefs": [{"name": service.name, "port": port.port}], "timeouts": timeouts}
            name = service.name if len(http_ports) == 1 else f"{service.name}-{port.name}"
            docs.append(document(GATEWAY_API, "HTTPRoute",
                                 metadata(name, service.namespace, (service.origin.file, self.graph.mesh_origin.file)),
                                 spec={"parentRefs": [{"group": "", "kind": "Service", "name": service.name,
                                                       "port": port.port}],
                                       "rules": [rule]}))
        return docs

    def report_default_retries(self, service: ServiceNode) -> None:
        """Retries a service inherits, reported once where they are written: at the service's
        own resilience, or once for the whole platform at Mesh.defaults."""
        if service.spec.resilience is not None and service.spec.resilience.retries is not None:
            self.report.add(codes.K8S_GATEWAY_API_RETRIES,
                            f"retries of {service.key} are not applied on platform {self.platform.name!r} "
                            "(flavor gateway-api has no retry field in the standard channel)",
                            self.graph.sources.locate(service.origin, "resilience", "retries"))
        else:
            self.report.add(codes.K8S_GATEWAY_API_RETRIES,
                            f"Mesh.defaults.retries are not applied on platform {self.platform.name!r} "
                            "(flavor gateway-api has no retry field in the standard channel)",
                            self.graph.sources.locate(self.graph.mesh_origin, "defaults", "retries"))

    # -- route translation -------------------------------------------------------------------

    def timeouts(self, timeout: str | None, retries: Retries | None, origin, timeout_at: tuple,
                 per_try_at: tuple) -> dict:
        """HTTPRouteTimeouts: `request` the whole request ("0s" disables it), `backendRequest`
        each request to a backend, the per-try timeout, never above `request` (the CRD's rule:
        "backendRequest timeout cannot be longer than request timeout"), which cuts it anyway."""
        out: dict = {}
        if timeout is not None:
            out["request"] = self.duration(timeout, origin, timeout_at)
        per_try = retries.perTryTimeout if retries is not None else None
        if per_try is not None and timeout_seconds(per_try) is None:
            out["backendRequest"] = "0s"  # no limit of its own, written out: unset is the implementation's
        elif timeout_seconds(per_try) is not None:
            assert per_try is not None  # a limit was found in it
            limit = timeout_seconds(timeout)
            if limit is not None and limit < duration_seconds(per_try):
                out["backendRequest"] = out["request"]
            else:
                out["backendRequest"] = self.duration(per_try, origin, per_try_at)
        return out

    def duration(self, text: str, origin, path: tuple) -> str:
        millis, rounded = whole_milliseconds(text)
        if rounded:
            self.report.add(codes.K8S_GATEWAY_API_UNSUPPORTED,
                            f"duration {text} is rounded up to {millis}ms: "
                            "Gateway API durations are whole milliseconds",
                            self.graph.sources.locate(origin, *path))
        return gateway_api_duration(millis)

    def backend(self, target: Target, weighted: bool) -> dict:
        if self.on_platform(target.service):
            name = target.service.name
            if target.version is not None:
                name = version_service_name(target.service.name, target.version)
            ref: dict = {"name": name, "namespace": target.service.namespace, "port": target.port}
        else:
            # No Kubernetes Service fronts a callee off the platform: Istio's Hostname backend
            # names the host of its ServiceEntry (versions there are DestinationRule subsets).
            ref = {"group": "networking.istio.io", "kind": "Hostname", "name": self.hosts(target.service),
                   "port": target.port}
        if weighted:
            ref["weight"] = target.weight
        return ref

    def header_matches(self, route: RouteNode, path: tuple, matches: dict[str, StringMatch]) -> list[dict]:
        out = []
        for name, match in matches.items():
            if match.present:
                self.report.add(codes.K8S_GATEWAY_API_MATCH,
                                f"a presence match on {name!r} has no Gateway API form and is left out",
                                self.graph.sources.locate(route.origin, *path, name))
            elif match.exact is not None:
                out.append({"type": "Exact", "name": name, "value": match.exact})
            elif match.prefix is not None:
                out.append({"type": "RegularExpression", "name": name, "value": re.escape(match.prefix) + ".*"})
            elif match.regex is not None:
                out.append({"type": "RegularExpression", "name": name, "value": match.regex})
        return out

    def http_matches(self, route: RouteNode, rule: ResolvedRule) -> list[dict]:
        out = []
        for index, match in enumerate(rule.spec.match):
            at = ("rules", rule.index, "match", index)
            entry: dict = {}
            if match.path is not None:
                kind, value = next((k, v) for k, v in match.path.model_dump().items() if v is not None)
                entry["path"] = {"type": _PATH_TYPES[kind], "value": value}
            if match.method is not None:
                entry["method"] = match.method
            headers = self.header_matches(route, (*at, "headers"), match.headers)
            if headers:
                entry["headers"] = headers
            query = self.header_matches(route, (*at, "query"), match.query)
            if query:
                entry["queryParams"] = query
            if match.port is not None:
                self.report.add(codes.K8S_GATEWAY_API_MATCH,
                                "an HTTPRoute match has no port: the port match is left out",
                                self.graph.sources.locate(route.origin, *at, "port"))
            out.append(entry)
        return out

    def http_rule(self, route: RouteNode, rule: ResolvedRule) -> dict:
        spec, at = rule.spec, ("rules", rule.index)
        out: dict = {}
        matches = self.http_matches(route, rule)
        if replaces_root_prefix(rule):
            # "If no matches are specified, the default is a prefix path match on "/"" (and a
            # match without `path` is PathPrefix "/"): written out, as ReplacePrefixMatch needs
            # "exactly one PathPrefix match"
            matches = [{**(matches[0] if matches else {}), "path": {"type": "PathPrefix", "value": "/"}}]
        if matches:
            out["matches"] = matches
        filters = []
        if spec.redirect is not None:
            out["filters"] = [{"type": "RequestRedirect", "requestRedirect": self.redirect(route, rule)}]
            return out
        weighted = len(rule.destinations) > 1
        out["backendRefs"] = []
        for target, written in zip(rule.destinations, spec.to, strict=True):
            ref = self.backend(target, weighted)
            if written.headers is not None:
                ref["filters"] = header_filters(written.headers)  # HTTPBackendRef.filters, Extended support
            out["backendRefs"].append(ref)
        timeout_at = (*at, "timeout") if spec.timeout is not None else ("rules", rule.index)
        per_try_at = (*at, "retries", "perTryTimeout") if spec.retries is not None else ("rules", rule.index)
        timeouts = self.timeouts(rule.timeout, rule.retries, route.origin, timeout_at, per_try_at)
        if timeouts:
            out["timeouts"] = timeouts
        if spec.retries is not None:
            self.report.add(codes.K8S_GATEWAY_API_RETRIES,
                            f"retries of rule {rule.index} of Route {route.key} are not applied "
                            "(flavor gateway-api has no retry field in the standard channel)",
                            self.graph.sources.locate(route.origin, *at, "retries"))
        elif rule.retries is not None and rule.destinations:
            self.report_default_retries(self.graph.services[rule.destinations[0].service])
        self.report_rule_rate_limit(route, rule)
        if spec.fault is not None:
            self.report.add(codes.K8S_GATEWAY_API_FAULT,
                            f"fault injection of rule {rule.index} of Route {route.key} is not applied "
                            "(the Gateway API has no fault filter)",
                            self.graph.sources.locate(route.origin, *at, "fault"))
        filters.extend(self.mirror_filters(rule))
        if spec.headers is not None:
            filters.extend(header_filters(spec.headers))
        if spec.rewrite is not None:
            rewrite: dict = {}
            if spec.rewrite.host is not None:
                rewrite["hostname"] = spec.rewrite.host
            if spec.rewrite.path is not None:
                rewrite["path"] = {"type": "ReplaceFullPath", "replaceFullPath": spec.rewrite.path}
            elif spec.rewrite.prefix is not None:
                path = self.path_modifier(route, rule, spec.rewrite.prefix, (*at, "rewrite", "prefix"))
                if path is not None:
                    rewrite["path"] = path
            if rewrite:
                filters.append({"type": "URLRewrite", "urlRewrite": rewrite})
        if spec.cors is not None:
            filters.append({"type": "CORS", "cors": self.cors(route, rule, spec.cors)})
        if filters:
            out["filters"] = filters
        return out

    def mirror_filters(self, rule: ResolvedRule) -> list[dict]:
        """A RequestMirror filter per mirror (the filter may be repeated), with its percent."""
        filters = []
        for target, (_, mirrored) in zip(rule.mirrors, rule.spec.written_mirrors(), strict=True):
            mirror: dict = {"backendRef": self.backend(target, False)}
            percent = mirrored.percent
            if float(percent).is_integer():
                mirror["percent"] = int(percent)
            else:
                mirror["fraction"] = {"numerator": round(percent * 10_000), "denominator": 1_000_000}
            filters.append({"type": "RequestMirror", "requestMirror": mirror})
        return filters

    # -- GRPCRoute -------------------------------------------------------------------------

    def grpc_shaped(self, rules: tuple[ResolvedRule, ...]) -> bool:
        """Whether a GRPCRoute means what these rules mean (docs/intents.md, gRPC): every rule
        sends to `grpc` ports and uses only what a GRPCRoute rule has (method matches from
        gRPC-shaped paths, header matches, header edits, mirrors, weights), and the GRPCRoute's
        match precedence picks, for every call, the rule written first. Otherwise the Route
        stays an HTTPRoute, which routes gRPC calls alike (HTTP/2 to an appProtocol grpc port)."""
        for rule in rules:
            spec = rule.spec
            if (spec.redirect is not None or spec.rewrite is not None or spec.cors is not None or spec.fault is not None
                    or rule.timeout is not None or rule.retries is not None or not rule.destinations
                    or any(self.protocol_of(t) != "grpc" for t in (*rule.destinations, *rule.mirrors))):
                return False
            if any(grpc_method(m) is None for m in spec.match):
                return False
        entries: list[tuple[int, Match | None]] = []
        for index, rule in enumerate(rules):
            entries.extend((index, m) for m in rule.spec.match)
            if not rule.spec.match:
                entries.append((index, None))
        return not any(grpc_precedence(later) > grpc_precedence(earlier) and grpc_may_overlap(earlier, later)
                       for index, earlier in entries for later_index, later in entries if later_index > index)

    def grpc_route(self, group: RouteGroup, parents: list[dict], hostnames: list[str] | None,
                   rules: list[tuple[RouteNode, ResolvedRule]]) -> dict:
        """GRPCRoute (standard since v1.1): GRPCMethodMatch from the rule's paths, header matches,
        header filters, mirrors and weighted backends, in merge order."""
        translated = []
        for route, rule in rules:
            out: dict = {}
            matches = []
            for index, match in enumerate(rule.spec.match):
                entry: dict = {}
                method = grpc_method(match)
                if method:
                    entry["method"] = method
                headers = self.header_matches(route, ("rules", rule.index, "match", index, "headers"), match.headers)
                if headers:
                    entry["headers"] = headers
                matches.append(entry)
            if matches:
                out["matches"] = matches
            filters = self.mirror_filters(rule) + (header_filters(rule.spec.headers) if rule.spec.headers else [])
            if filters:
                out["filters"] = filters
            weighted = len(rule.destinations) > 1
            out["backendRefs"] = []
            for target, written in zip(rule.destinations, rule.spec.to, strict=True):
                ref = self.backend(target, weighted)
                if written.headers is not None:
                    ref["filters"] = header_filters(written.headers)
                out["backendRefs"].append(ref)
            translated.append(out)
        spec: dict = {"parentRefs": parents, "rules": translated}
        if hostnames and "*" not in hostnames:
            spec["hostnames"] = hostnames
        return document(GATEWAY_API, "GRPCRoute", metadata(group.key.name, group.key.namespace, group.files), spec=spec)

    def cors(self, route: RouteNode, rule: ResolvedRule, cors: Cors) -> dict:
        """HTTPCORSFilter (Extended): origins as written (its own `scheme://host[:port]` form with
        wildcard hosts), maxAge in seconds written out; a regex origin has no form there."""
        origins = []
        for index, pattern in enumerate(cors.allowOrigins):
            if isinstance(pattern, str):
                origins.append(pattern)
                continue
            self.report.add(codes.K8S_GATEWAY_API_CORS_ORIGIN,
                            f"the CORS origin regex `{pattern.regex}` has no Gateway API form and is left out: "
                            "the origins only it allows are refused on flavor gateway-api",
                            self.graph.sources.locate(route.origin, "rules", rule.index, "cors", "allowOrigins", index))
        out: dict = {"allowOrigins": origins} if origins else {}
        for field in ("allowMethods", "allowHeaders", "exposeHeaders"):
            if getattr(cors, field):
                out[field] = list(getattr(cors, field))
        out["maxAge"] = cors.max_age_seconds
        if cors.allowCredentials:
            out["allowCredentials"] = True
        return out

    def redirect(self, route: RouteNode, rule: ResolvedRule) -> dict:
        """HTTPRequestRedirectFilter with the status written out (the Gateway API's default is 302,
        meshc's 301). Its port rules are docs/intents.md's: without `port`, the scheme's port
        when `scheme` is given, else the listener's."""
        written = rule.spec.redirect
        assert written is not None  # called for redirect rules
        redirect: dict = {"statusCode": written.status}
        for field, name in (("scheme", "scheme"), ("host", "hostname"), ("port", "port")):
            if getattr(written, field) is not None:
                redirect[name] = getattr(written, field)
        if written.path is not None:
            redirect["path"] = {"type": "ReplaceFullPath", "replaceFullPath": written.path}
        elif written.prefix is not None:
            path = self.path_modifier(route, rule, written.prefix, ("rules", rule.index, "redirect", "prefix"))
            if path is not None:
                redirect["path"] = path
        return redirect

    def path_modifier(self, route: RouteNode, rule: ResolvedRule, replacement: str, at: tuple) -> dict | None:
        """HTTPPathModifier giving docs/intents.md's replacement of what the rule's match matched:
        ReplacePrefixMatch for the rule's one path prefix match (the CRD's rule: "exactly one
        PathPrefix match must be specified"; no path is PathPrefix "/", replaces_root_prefix),
        ReplaceFullPath when every match is an exact or regex path; anything else is reported
        and left out."""
        matches = rule.spec.match
        if replaces_root_prefix(rule) or (len(matches) == 1 and matches[0].path is not None
                                          and matches[0].path.prefix is not None):
            return {"type": "ReplacePrefixMatch", "replacePrefixMatch": replacement}
        if matches and all(m.path is not None and m.path.prefix is None for m in matches):
            return {"type": "ReplaceFullPath", "replaceFullPath": replacement}
        self.report.add(codes.K8S_GATEWAY_API_UNSUPPORTED,
                        "replacing a matched prefix needs at most one match entry, with a path prefix or no path, in "
                        "its rule (or only exact and regex paths) on flavor gateway-api; it is not applied",
                        self.graph.sources.locate(route.origin, *at))
        return None

    def http_route(self, group: RouteGroup, parents: list[dict], hostnames: list[str] | None,
                   rules: list[tuple[RouteNode, ResolvedRule]]) -> dict:
        """One HTTPRoute for the merged Routes of `group`, their rules in merge order: within one
        HTTPRoute the Gateway API gives ties to "the FIRST matching rule (in list order)", across
        HTTPRoutes to the older one, which the repository does not decide."""
        if rules and self.grpc_shaped(tuple(rule for _, rule in rules)):
            return self.grpc_route(group, parents, hostnames, rules)
        translated = []
        for route, rule in rules:
            if rule_kind(rule, self.protocol_of) == "http":
                translated.append(self.http_rule(route, rule))
            else:
                self.report.add(codes.K8S_GATEWAY_API_UNSUPPORTED,
                                f"rule {rule.index} of Route {route.key} routes tcp or tls traffic, which the "
                                "standard channel cannot route between mesh services; it is not emitted",
                                self.graph.sources.locate(route.origin, "rules", rule.index))
        spec: dict = {"parentRefs": parents, "rules": translated}
        if hostnames and "*" not in hostnames:  # `*` is an omitted hostnames list
            spec["hostnames"] = hostnames
        self.report_precedence(rules)
        return document(GATEWAY_API, "HTTPRoute", metadata(group.key.name, group.key.namespace, group.files),
                        spec=spec)

    # -- gateways ----------------------------------------------------------------------------

    def writes_gateway_account(self, gateway: GatewayNode) -> bool:
        # Istio's automated deployment makes `<gateway>-istio` with its account; a bound
        # deployment has its own
        return False

    def gateway_workload_ref(self, gateway: GatewayNode) -> dict:
        if gateway.bound:
            return super().gateway_workload_ref(gateway)
        # istio.io, Telemetry and AuthorizationPolicy: gateways are targeted with targetRefs
        return {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway.key.name}]}

    def deployment_address(self, gateway: GatewayNode) -> str | None:
        """The Service in front of a bound gateway's deployment, as a Gateway address: Istio then
        configures that deployment instead of making one (its manual deployment)."""
        deployment = gateway.spec.deployment
        if deployment is None:
            return None
        if deployment.service is None:  # the linker refused it (MESH211)
            return None
        namespace = deployment.namespace or gateway.key.namespace
        return cluster_dns_name(deployment.service, namespace, self.platform.clusterDomain)

    def version_services(self, service: ServiceNode) -> list[dict]:
        if not self.owns("Service"):
            # GAMMA routes to a version by its own Service, which the application's chart now owns
            for version in sorted(self.routed_versions.get(service.key, ())):
                name = version_service_name(service.name, version)
                self.report.add(codes.K8S_UNOWNED_REFERENCE,
                                f"routes to version {version} of {service.key} name Service {name!r}, which "
                                f"platform {self.platform.name!r} does not write (owns.kinds: "
                                f"{', '.join(self.platform.owns.kinds) or 'none'}) and no intent declares",
                                self.graph.sources.locate(service.origin, "versions", version, key=True),
                                hint=f"have the chart create Service {name} selecting the version's labels, "
                                     "or let the platform own Services")
        return super().version_services(service)

    @cached_property
    def routed_versions(self) -> dict[Key, set[str]]:
        """Service -> the versions some Route sends traffic to."""
        versions: dict[Key, set[str]] = {}
        for route in self.graph.routes.values():
            for rule in route.rules:
                for target in (*rule.destinations, *rule.mirrors):
                    if target.version is not None:
                        versions.setdefault(target.service, set()).add(target.version)
        return versions

    def listener_names(self, listener) -> list[tuple[str, str | None]]:
        """(name, hostname) of the Gateway API listeners of one intent listener: one per host."""
        if listener.protocol == "tcp" or "*" in listener.hosts:
            return [(listener.name, None)]  # Gateway API: an omitted hostname matches every host
        if len(listener.hosts) == 1:
            return [(listener.name, listener.hosts[0])]
        return [(f"{listener.name}-{index}", host) for index, host in enumerate(listener.hosts, start=1)]

    def gateway_documents(self, gateway: GatewayNode) -> list[dict]:
        gw_name, gw_ns = gateway.key.name, gateway.key.namespace
        sources = (gateway.origin.file,)
        routes = self.graph.gateway_routes.get(gateway.key, ())
        listeners, redirect_sections = [], []
        foreign_routes = any(route.key.namespace != gw_ns for route in routes)
        for listener in gateway.listeners:
            for name, hostname in self.listener_names(listener):
                entry: dict = {"name": name, "port": listener.port, "protocol": protocol_name(listener.protocol)}
                if hostname is not None:
                    entry["hostname"] = hostname
                if listener.tls is not None:
                    if listener.tls.mode == "passthrough":
                        entry["tls"] = {"mode": "Passthrough"}
                    else:
                        entry["tls"] = {"mode": "Terminate",
                                        "certificateRefs": [{"kind": "Secret", "name": listener.tls.certificate}]}
                if foreign_routes:
                    entry["allowedRoutes"] = {"namespaces": {"from": "All"}}
                listeners.append(entry)
                if listener.httpsRedirect:
                    redirect_sections.append(name)
        gateway_spec: dict = {"gatewayClassName": GATEWAY_API_CLASS}
        address = self.deployment_address(gateway)
        if address is not None:
            gateway_spec["addresses"] = [{"type": "Hostname", "value": address}]
        gateway_spec["listeners"] = listeners
        frontend = self.frontend_validation(gateway)
        if frontend:
            # `default` is required; empty, it validates no client: only the ports listed do
            gateway_spec["tls"] = {"frontend": {"default": {}, "perPort": frontend}}
        docs = [*self.gateway_workload_documents(gateway),
                document(GATEWAY_API, "Gateway", metadata(gw_name, gw_ns, sources), spec=gateway_spec)]
        if redirect_sections:
            docs.append(document(
                GATEWAY_API, "HTTPRoute", metadata(f"{gw_name}-https-redirect", gw_ns, sources),
                spec={"parentRefs": [{"name": gw_name, "sectionName": section} for section in redirect_sections],
                      "rules": [{"filters": [{"type": "RequestRedirect",
                                              "requestRedirect": {"scheme": "https", "statusCode": 301}}]}]}))
        parent = {"name": gw_name, "namespace": gw_ns}
        groups = gateway_groups(gateway, routes)
        self.report_route_merges(groups)
        for group in groups:
            http_rules = [(route, rule) for route, rule in group.rules() if rule_kind(rule, self.protocol_of) == "http"]
            if http_rules:
                docs.append(self.http_route(group, self.parent_refs(gateway, parent, group.listeners, group.hosts,
                                                                    group.routes), list(group.hosts), http_rules))
        for route in routes:
            tls_rules = [r for r in route.rules if rule_kind(r, self.protocol_of) != "http"]
            for kind, kind_rules in (("TLSRoute", [r for r in tls_rules if rule_kind(r, self.protocol_of) == "tls"]),
                                     ("TCPRoute", [r for r in tls_rules if rule_kind(r, self.protocol_of) == "tcp"])):
                if not kind_rules:
                    continue
                attached = tuple(lst for lst in gateway.listeners if route.attaches(lst))
                on = None if len(attached) == len(gateway.listeners) else attached
                spec: dict = {"parentRefs": self.parent_refs(gateway, parent, on, route.spec.hosts, (route,))}
                if kind == "TLSRoute" and "*" not in route.spec.hosts:
                    spec["hostnames"] = list(route.spec.hosts)
                spec["rules"] = [{"backendRefs": [self.backend(t, len(r.destinations) > 1) for t in r.destinations]}
                                 for r in kind_rules]
                docs.append(document(GATEWAY_API, kind,
                                     metadata(route.key.name, route.key.namespace, (route.origin.file,)), spec=spec))
        return docs

    # -- gateway TLS (issue 12, auth) ------------------------------------------------------------

    def frontend_validation(self, gateway: GatewayNode) -> list[dict]:
        """GatewaySpec.tls.frontend.perPort: client certificate validation "applied to all
        Listeners handling HTTPS traffic and matching given port", a ConfigMap with `ca.crt`
        (Core). What that cannot carry as written is reported (MESH467, MESH468)."""
        by_port: dict[int, list[tuple[int, Listener]]] = {}
        for index, listener in enumerate(gateway.listeners):
            tls = listener.tls
            if tls is None or tls.mode != "terminate":
                continue
            where = ("listeners", index, "tls")
            written = [f for f in ("minVersion", "cipherSuites") if getattr(tls, f)]
            if written:
                self.report.add(codes.K8S_GATEWAY_API_TLS_PARAMETERS,
                                f"Gateway {gateway.key} listener {listener.name!r} sets {' and '.join(written)}, which "
                                "the Gateway API has no field for (listener tls.options are implementation-specific): "
                                "the implementation's own defaults apply",
                                self.graph.sources.locate(gateway.origin, *where, written[0]),
                                hint="use flavor istio for this gateway (Server tls.minProtocolVersion, cipherSuites)")
            if listener.protocol == "https":
                by_port.setdefault(listener.port, []).append((index, listener))
            elif tls.clientValidation is not None:
                self.report.add(codes.K8S_GATEWAY_API_CLIENT_VALIDATION,
                                f"Gateway {gateway.key} listener {listener.name!r} (tls) validates client "
                                "certificates, but Gateway API frontend validation applies to HTTPS listeners only: "
                                "clients without a certificate would get in",
                                self.graph.sources.locate(gateway.origin, *where, "clientValidation"),
                                hint="use flavor istio for this gateway, or an https listener")
        per_port = []
        for port, group in sorted(by_port.items()):
            authorities = {listener.tls.clientValidation.ca if listener.tls and listener.tls.clientValidation else None
                           for _, listener in group}
            required = sorted(a for a in authorities if a is not None)
            if not required:
                continue
            if len(authorities) > 1:
                index, listener = group[0]
                self.report.add(codes.K8S_GATEWAY_API_CLIENT_VALIDATION,
                                f"Gateway {gateway.key}'s https listeners on port {port} validate client certificates "
                                f"differently ({', '.join(a or 'none' for a in sorted(authorities, key=str))}), but "
                                "Gateway API frontend validation is per port: every https listener of the port "
                                f"requires a certificate from {', '.join(required)}",
                                self.graph.sources.locate(gateway.origin, "listeners", index, "tls"),
                                hint="give the listeners one clientValidation, or ports of their own")
            per_port.append({"port": port, "tls": {"validation": {"caCertificateRefs": [
                {"group": "", "kind": "ConfigMap", "name": ca} for ca in required]}}})
        return per_port

    def parent_refs(self, gateway: GatewayNode, parent: dict, listeners: tuple | None, hosts, routes) -> list[dict]:
        """ParentReferences attaching an HTTPRoute to `listeners` of the Gateway (None: all):
        by `port` ("this targets all listeners listening on the specified port") where the
        Routes name ports only and those are exactly the listeners of the ports serving the
        hosts; else by `sectionName` (the Gateway API listener names of each listener, one
        per host), with `port` too where the Routes name ports ("When both Port and
        SectionName are specified, the name and port of the selected listener must match
        both specified values")."""
        if listeners is None:
            return [parent]
        ports = sorted({listener.port for listener in listeners})
        named = any(route.spec.listeners for route in routes)
        by_port = any(route.spec.ports for route in routes)
        on_ports = [lst for lst in gateway.listeners if lst.port in ports
                    and any(overlap(lh, h) for lh in lst.hosts for h in hosts)]
        if by_port and not named and all(lst in listeners for lst in on_ports):
            return [{**parent, "port": port} for port in ports]
        return [{**parent, "sectionName": name, **({"port": listener.port} if by_port else {})}
                for listener in listeners for name, _ in self.listener_names(listener)]

    # -- rule order --------------------------------------------------------------------------

    def report_route_merges(self, groups: list[RouteGroup]) -> None:
        """An error where the Gateway API's merge of HTTPRoutes with intersecting hostnames lets a
        request no rule of the most specific Routes matches reach a broader Route's rules (meshc:
        404, no fall-through). Conservative: the broader Routes are only required to have an HTTP
        rule, not one that matches such a request."""
        for specific in groups:
            rules = [rule for _, rule in specific.rules()]
            if any(self.matches_everything(rule) for rule in rules) or not self.http_rules(rules):
                continue
            for broader in groups:
                host = next(((mine, theirs) for mine in specific.hosts for theirs in broader.hosts
                             if theirs != mine and covers(theirs, mine)), None)
                if broader is specific or host is None or not self.http_rules([r for _, r in broader.rules()]):
                    continue
                [mine, other] = [self.routes_writing(g, h) for g, h in ((specific, host[0]), (broader, host[1]))]
                self.report.add(
                    codes.K8S_GATEWAY_API_ROUTE_MERGE,
                    f"requests to {host[0]!r} that no rule of Route {mine[0].key} matches go on to the rules of "
                    f"Route {other[0].key} on flavor gateway-api (HTTPRoutes with intersecting hostnames are "
                    "merged); everywhere else they are answered 404",
                    self.graph.sources.locate(mine[0].origin, "hosts", mine[1]),
                    related=(Related(self.graph.sources.locate(other[0].origin, "hosts", key=True),
                                     f"Route {other[0].key}, whose hosts cover it"),),
                    hint="end the Route with a rule without `match`, or fold the two Routes into one",
                )
                break

    @staticmethod
    def routes_writing(group: RouteGroup, host: str) -> tuple[RouteNode, int]:
        """The last Route of the group (whose rules come last) and the index of `host` in its hosts."""
        route = group.routes[-1]
        return route, list(route.spec.hosts).index(host)

    def http_rules(self, rules: list[ResolvedRule]) -> list[ResolvedRule]:
        return [r for r in rules if rule_kind(r, self.protocol_of) == "http"]

    def matches_everything(self, rule: ResolvedRule) -> bool:
        """A rule every HTTP request matches: no match, or an entry naming nothing but `/`."""
        if rule_kind(rule, self.protocol_of) != "http":
            return False
        return not rule.spec.match or any(
            (entry.path is None or entry.path.prefix == "/") and entry.method is None and not entry.headers
            and not entry.query and entry.port is None and not entry.sni for entry in rule.spec.match)

    def report_precedence(self, rules: list[tuple[RouteNode, ResolvedRule]]) -> None:
        """An error where the Gateway API's match precedence picks a later rule than written
        order for some request: meshc's rules are first match in written (merge) order
        (docs/intents.md), the Gateway API orders matches itself (HTTPRouteRule.matches: exact
        path, longest prefix, method, most headers, most query parameters; ties to the first rule)."""
        http_rules = [(route, r) for route, r in rules if rule_kind(r, self.protocol_of) == "http"]
        for later_index, (later_route, later) in enumerate(http_rules):
            for earlier_route, earlier in http_rules[:later_index]:
                firsts: list[Match | None] = list(earlier.spec.match) or [None]
                seconds: list[Match | None] = list(later.spec.match) or [None]
                clash = next(((a, b) for a in firsts for b in seconds
                              if not (has_regex_path(a) or has_regex_path(b))
                              and precedence(b) > precedence(a) and may_overlap(a, b)
                              and not any(precedence(cover) >= precedence(b) and covers_both(cover, a, b)
                                          for cover in firsts)), None)
                if clash is None:
                    continue
                earlier_name = (f"rule {earlier.index}" if earlier_route is later_route
                                else f"rule {earlier.index} of Route {earlier_route.key}")
                self.report.add(
                    codes.K8S_GATEWAY_API_ORDER,
                    f"rule {later.index} of Route {later_route.key} takes precedence over {earlier_name} under the "
                    "Gateway API's match ordering for requests both match, but "
                    f"{earlier_name} comes first in written order",
                    self.graph.sources.locate(later_route.origin, "rules", later.index),
                    related=(Related(self.graph.sources.locate(earlier_route.origin, "rules", earlier.index),
                                     "the earlier rule, which wins everywhere else"),),
                    hint="narrow the earlier rule or move the more specific rule first",
                )
                break


# A gRPC service (package and service, dotted) and method name: GRPCMethodMatch's Exact form.
GRPC_SERVICE = re.compile(r"[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*")
GRPC_METHOD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def grpc_method(match: Match | None) -> dict | None:
    """The GRPCMethodMatch of an entry (`{}` for none), or None when the entry has no GRPCRoute
    form: a path other than `/<service>/<method>` exact or the segment prefix `/<service>` (a
    gRPC call's path is always `/<service>/<method>`), an HTTP method, query, port or SNI
    match, or a presence header match."""
    if match is None:
        return {}
    if match.method is not None or match.query or match.port is not None or match.sni:
        return None
    if any(h.present for h in match.headers.values()):
        return None
    path = match.path
    if path is None:
        return {}
    if path.exact is not None:
        service, _, method = path.exact[1:].partition("/")
        if GRPC_SERVICE.fullmatch(service) and GRPC_METHOD.fullmatch(method):
            return {"type": "Exact", "service": service, "method": method}
        return None
    if path.prefix is not None and GRPC_SERVICE.fullmatch(path.prefix[1:].rstrip("/")):
        return {"type": "Exact", "service": path.prefix[1:].rstrip("/")}
    return None


def grpc_precedence(match: Match | None) -> tuple[int, int, int]:
    """GRPCRouteRule.matches precedence: "Characters in a matching service", "Characters in a
    matching method", "Header matches"."""
    method = grpc_method(match) or {}
    headers = len(match.headers) if match is not None else 0
    return (len(method.get("service", "")), len(method.get("method", "")), headers)


def grpc_may_overlap(first: Match | None, second: Match | None) -> bool:
    """Whether some call can match both entries; True when it cannot be ruled out."""
    a, b = grpc_method(first) or {}, grpc_method(second) or {}
    for field in ("service", "method"):
        if field in a and field in b and a[field] != b[field]:
            return False
    return first is None or second is None or may_overlap(first, second)


HEADER_FILTERS = {"request": "RequestHeaderModifier", "response": "ResponseHeaderModifier"}


def replaces_root_prefix(rule: ResolvedRule) -> bool:
    """A rewrite or redirect `prefix` after no path match: docs/intents.md's matched prefix is
    `/` then, which is the Gateway API's own default match (PathPrefix "/")."""
    spec = rule.spec
    prefix = (spec.rewrite is not None and spec.rewrite.prefix is not None) or \
        (spec.redirect is not None and spec.redirect.prefix is not None)
    return prefix and len(spec.match) <= 1 and all(m.path is None for m in spec.match)


def header_filters(modifier: HeaderModifier) -> list[dict]:
    """RequestHeaderModifier and ResponseHeaderModifier filters (HTTPHeaderFilter: `set`
    overwrites, `add` appends, `remove`), names lower-case."""
    filters = []
    for direction, edits in modifier.directions():
        operations = edits.lowered()
        for operation in ("set", "add"):
            if operation in operations:
                operations[operation] = [{"name": n, "value": v} for n, v in operations[operation].items()]
        kind = HEADER_FILTERS[direction]
        filters.append({"type": kind, f"{direction}HeaderModifier": operations})
    return filters


def has_regex_path(match: Match | None) -> bool:
    """Regular expression paths are ordered by each implementation (implementation-specific)."""
    return match is not None and match.path is not None and match.path.regex is not None


def precedence(match: Match | None) -> tuple:
    """Gateway API HTTPRouteRule.matches precedence: "Exact" path, then "Prefix" path with the
    largest number of characters, method, most header matches, most query param matches."""
    if match is None:
        return (0, 1, 0, 0, 0)
    path = match.path
    exact = path is not None and path.exact is not None
    prefix = len(path.prefix) if path is not None and path.prefix is not None else (0 if path is not None else 1)
    headers = len([h for h in match.headers.values() if not h.present])
    query = len([q for q in match.query.values() if not q.present])
    return (int(exact), 0 if exact else prefix, int(match.method is not None), headers, query)


def covers_both(cover: Match | None, first: Match | None, second: Match | None) -> bool:
    """Whether every request matching both `first` and `second` also matches `cover`: each
    condition of `cover` is one of theirs (same matcher) or, for the path, contains theirs.
    Conservative: False when it cannot be shown. Used to see that another entry of the earlier
    rule wins the overlap anyway (ties go to the first rule in list order)."""
    if cover is None:
        return True
    given = [m for m in (first, second) if m is not None]
    if cover.method is not None and all(m.method != cover.method for m in given):
        return False
    for field in ("headers", "query"):
        for name, matcher in getattr(cover, field).items():
            if all(getattr(m, field).get(name) != matcher for m in given):
                return False
    if cover.port is not None or cover.sni:
        return False
    return cover.path is None or any(path_contains(cover.path, m.path) for m in given)


def path_contains(outer, inner) -> bool:
    """Whether every path `inner` matches also matches `outer` (segment prefixes, exact paths)."""
    if outer.regex is not None:
        return False
    if inner is None:
        return outer.prefix is not None and outer.prefix.rstrip("/") == ""
    if inner.regex is not None:
        return False
    if outer.exact is not None:
        return inner.exact == outer.exact
    stem = outer.prefix.rstrip("/")
    path = inner.exact if inner.exact is not None else inner.prefix.rstrip("/")
    return stem == "" or path == stem or path.startswith(stem + "/")


def may_overlap(first: Match | None, second: Match | None) -> bool:
    """Whether some request can match both entries; True when it cannot be ruled out."""
    if first is None or second is None:
        return True
    if first.method is not None and second.method is not None and first.method != second.method:
        return False
    for mine, theirs in ((first.headers, second.headers), (first.query, second.query)):
        for name in set(mine) & set(theirs):
            a, b = mine[name], theirs[name]
            if a.exact is not None and b.exact is not None and a.exact != b.exact:
                return False
    return paths_may_overlap(first.path, second.path)


def paths_may_overlap(first, second) -> bool:
    def stem(path) -> tuple[str, bool] | None:
        """(path, is_prefix) for exact and segment-prefix matches; None for a regex."""
        if path is None:
            return ("", True)
        if path.exact is not None:
            return (path.exact, False)
        if path.prefix is not None:
            return (path.prefix.rstrip("/"), True)
        return None

    a, b = stem(first), stem(second)
    if a is None or b is None:
        return True
    def within(path: str, prefix: str) -> bool:
        return prefix == "" or path == prefix or path.startswith(prefix + "/")
    if a[1] and b[1]:
        return within(a[0], b[0]) or within(b[0], a[0])
    if a[1]:
        return within(b[0], a[0])
    if b[1]:
        return within(a[0], b[0])
    return a[0] == b[0]

