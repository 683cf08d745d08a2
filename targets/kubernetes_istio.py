"""Istio-flavoured routing: VirtualServices from Routes and Istio Gateways from Gateways.

Field names follow the Istio 1.30 CRDs (networking.istio.io/v1). Hosts are resolved by the
caller of these functions, so this module only translates one Route or Gateway at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from compiler.graph import GatewayNode, Key, ResolvedRule, RouteNode, Target
from compiler.hostnames import covers, overlap
from compiler.model import (
    BACKOFF_MAX_FACTOR,
    Cors,
    HeaderModifier,
    ListenerTls,
    Match,
    Retries,
    StringMatch,
    duration_seconds,
    timeout_seconds,
)
from targets.envoylib import origin_matchers
from targets.kubernetes_meta import document, gateway_selector, metadata
from targets.kubernetes_support import ISTIO_NETWORKING, RouteGroup, proto_duration, protocol_name, rule_kind


class HostOf(Protocol):
    """How callers on one platform address a service, and whether its versions are subsets there."""

    def __call__(self, key: Key) -> str: ...

    def has_subsets(self, key: Key) -> bool: ...


def _string_match(match: StringMatch) -> dict:
    if match.present:
        # Istio checks only the presence of a header or parameter whose match is empty.
        return {}
    for field in ("exact", "prefix", "regex"):
        value = getattr(match, field)
        if value is not None:
            return {field: value}
    raise ValueError("a validated StringMatch holds one of exact, prefix, regex, present")


def _http_matches(match: Match) -> list[tuple[dict, str]]:
    """Istio match entries for one intent entry, each with how its path was matched.

    Istio's `uri.prefix` is a character prefix, so a path-segment prefix (docs/intents.md) is
    the exact stem plus the prefix `stem/`; the prefix `/` stays a prefix. The second item is
    "exact", "stem", "prefix", "regex" or "" (no path match), which decides the rewrite.
    """
    out: dict = {}
    if match.method is not None:
        out["method"] = {"exact": match.method}
    if match.headers:
        out["headers"] = {name.lower(): _string_match(value) for name, value in match.headers.items()}
    if match.query:
        out["queryParams"] = {name: _string_match(value) for name, value in match.query.items()}
    if match.port is not None:
        out["port"] = match.port
    path = match.path
    if path is None:
        return [(out, "")]
    if path.exact is not None:
        return [({"uri": {"exact": path.exact}, **out}, "exact")]
    if path.regex is not None:
        return [({"uri": {"regex": path.regex}, **out}, "regex")]
    stem = (path.prefix or "").rstrip("/")  # neither exact nor regex: a prefix
    if not stem:
        return [({"uri": {"prefix": "/"}, **out}, "")]
    return [({"uri": {"exact": stem}, **out}, "stem"), ({"uri": {"prefix": f"{stem}/"}, **out}, "prefix")]


def _rewrite(replacement: str, how: str) -> dict:
    """The Istio rewrite giving docs/intents.md's path: Istio replaces the matched uri prefix
    (or the whole exact path) with `uri`, so the replacement is adjusted to what was matched."""
    head = replacement.rstrip("/")
    if how == "exact":
        return {"uri": replacement}
    if how == "regex":
        return {"uriRegexRewrite": {"match": "^.*$", "rewrite": replacement}}
    if how == "stem":
        return {"uri": head or "/"}
    return {"uri": f"{head}/"} if head or how == "prefix" else {}


def _destination(target: Target, host_of: HostOf) -> dict:
    destination: dict = {"host": host_of(target.service), "port": {"number": target.port}}
    if target.version is not None and host_of.has_subsets(target.service):
        destination["subset"] = target.version
    return destination


def _headers(modifier: HeaderModifier | None) -> dict:
    """Istio Headers (HeaderOperations `set` overwrites, `add` appends, `remove`), names lower-case."""
    if modifier is None:
        return {}
    return {"headers": {direction: edits.lowered() for direction, edits in modifier.directions()}}


def _route(rule: ResolvedRule, host_of: HostOf, http: bool = True) -> list[dict]:
    """Route destinations; on HTTP with each destination's own header edits."""
    weighted = len(rule.destinations) > 1
    return [
        {"destination": _destination(target, host_of), **({"weight": target.weight} if weighted else {}),
         **(_headers(written.headers) if http else {})}
        for target, written in zip(rule.destinations, rule.spec.to, strict=True)
    ]


# Methods Istio's HTTPRetry would retry but meshc retries only with allowNonIdempotent
NON_IDEMPOTENT_METHODS = ("CONNECT", "PATCH", "POST")


def _retries(retries: Retries) -> dict:
    """HTTPRetry: status codes are numbers in retryOn (retry.go parseRetryOn adds
    retriable-status-codes itself); `backoff` is Envoy's base interval, whose cap Envoy keeps at
    10 x base; a per-try timeout of zero is Istio's default (the route's timeout)."""
    conditions = [c for c in retries.conditions() if c != "retriable-status-codes"]
    retry_on = ",".join([*conditions, *map(str, retries.statusCodes)])
    if not retries.attempts or not retry_on:
        # Istio fills an empty retryOn with its default conditions: no condition is no retry
        return {"attempts": 0}
    out: dict = {"attempts": retries.attempts, "retryOn": retry_on}
    if retries.perTryTimeout is not None and timeout_seconds(retries.perTryTimeout) is not None:
        out["perTryTimeout"] = proto_duration(retries.perTryTimeout)
    if retries.backoff is not None:
        out["backoff"] = proto_duration(retries.backoff.base)
    return out


def _timeout(timeout: str | None, retries: Retries | None) -> dict:
    """HTTPRoute.timeout: none for no limit (Istio's default is none, and its CRD refuses 0s);
    a single try's perTryTimeout, which Istio drops with `attempts: 0`, bounds the request."""
    single_try = retries.perTryTimeout if retries is not None and retries.attempts == 0 else None
    limits = [t for t in (timeout_seconds(timeout), timeout_seconds(single_try)) if t is not None]
    return {"timeout": proto_duration(f"{min(limits)}s")} if limits else {}


BACKOFF_CAP = ("Istio's HTTPRetry.backoff is the base interval only, so Envoy caps the back-off at 10 x base; "
               "backoff.max is not carried on flavor istio")


def backoff_capped_otherwise(retries: Retries) -> bool:
    """A back-off whose cap is not Envoy's default 10 x base, which is all Istio can write."""
    backoff = retries.backoff
    return (backoff is not None and backoff.max is not None
            and duration_seconds(backoff.max) != duration_seconds(backoff.base) * BACKOFF_MAX_FACTOR)


def with_retries(entries: list[dict], retries: Retries | None, timeout: str | None) -> list[dict]:
    """http entries carrying a rule's timeout and retries (unset: nothing, Istio's default is
    meshc's built-in one). HTTPRetry retries every method, so unless `allowNonIdempotent` each
    entry is preceded by its twin for POST, PATCH and CONNECT without retries."""
    timed = [{**entry, **_timeout(timeout, retries)} for entry in entries]
    if retries is None:
        return timed
    policy = _retries(retries)
    retried = [{**entry, "retries": policy} for entry in timed]
    if retries.allowNonIdempotent or not policy["attempts"]:
        return retried
    once = {"attempts": 0}
    out: list[dict] = []
    for entry in retried:
        twins = []
        for match in entry.get("match") or [{}]:
            method = match.get("method", {}).get("exact")
            if method is None:
                twins.append({**match, "method": {"regex": "|".join(NON_IDEMPOTENT_METHODS)}})
            elif method in NON_IDEMPOTENT_METHODS:
                twins.append(match)
        if twins == entry.get("match"):
            out.append({**entry, "retries": once})  # only POST, PATCH or CONNECT: never retried
            continue
        if twins:
            out.append({**entry, "match": twins, "retries": once})
        out.append(entry)
    return out


def _http_rules(rule: ResolvedRule, host_of: HostOf) -> list[dict]:
    """One http entry for a rule; with a rewrite one per Istio match, whose rewrites differ."""
    matches = [expanded for m in rule.spec.match for expanded in _http_matches(m)]
    action = _http_action(rule, host_of)
    if rule.spec.rewrite is None:
        return [{"match": [m for m, _ in matches], **action} if matches else action]
    written = rule.spec.rewrite
    authority = {"authority": written.host} if written.host is not None else {}
    if written.prefix is None:
        path = {"uriRegexRewrite": {"match": "^.*$", "rewrite": written.path}} if written.path is not None else {}
        rewrite = {**path, **authority}
        return [{"match": [m for m, _ in matches], **action, "rewrite": rewrite} if matches else
                {**action, "rewrite": rewrite}]
    entries = []
    for match, how in matches or [({}, "")]:
        rewrite = {**_rewrite(written.prefix, how), **authority}
        entries.append({**({"match": [match]} if match else {}), **action, **({"rewrite": rewrite} if rewrite else {})})
    return entries


def redirect_prefix_uri(replacement: str, how: str) -> str | None:
    """The HTTPRedirect `uri` giving docs/intents.md's prefix replacement after a match of kind
    `how`, or None where the new path depends on the request: Istio's redirect `uri` "overwrite[s]
    the Path portion of the URL", whole, whatever was matched."""
    head = replacement.rstrip("/")
    if how in ("exact", "regex"):
        return replacement
    if how == "stem":
        return head or "/"
    return None


def _redirect_rules(rule: ResolvedRule, host_of: HostOf, inexpressible: list[tuple[ResolvedRule, str]]) -> list[dict]:
    """A redirect replacing the matched prefix: one http entry per Istio match, each with the
    path it gives; where that path depends on the request the path is kept and reported."""
    redirect = rule.spec.redirect
    assert redirect is not None and redirect.prefix is not None  # only called for prefix redirects
    action = _http_action(rule, host_of)
    entries = []
    for match, how in [expanded for m in rule.spec.match for expanded in _http_matches(m)] or [({}, "")]:
        uri = redirect_prefix_uri(redirect.prefix, how)
        if uri is None and (how or redirect.prefix.rstrip("/")):
            inexpressible.append((rule, ("Istio's HTTPRedirect replaces the whole path, so a redirect that "
                                         "replaces a matched path prefix keeps the request's path on flavor istio")))
        entries.append({**({"match": [match]} if match else {}),
                        "redirect": {**action["redirect"], **({"uri": uri} if uri is not None else {})}})
    return entries


def _http_action(rule: ResolvedRule, host_of: HostOf) -> dict:
    spec = rule.spec
    out: dict = {}
    if spec.redirect is not None:
        written = spec.redirect
        redirect: dict = {"redirectCode": written.status}
        if written.scheme is not None:
            redirect["scheme"] = written.scheme
        if written.host is not None:
            redirect["authority"] = written.host
        # without a port: the scheme's well-known port when the scheme is given, else the port
        # the request arrived on. The scheme's port is written out: for derivePort
        # FROM_PROTOCOL_DEFAULT pilot writes no port and Envoy keeps a port in the Host header.
        if written.port is not None:
            redirect["port"] = written.port
        elif written.scheme is not None:
            redirect["port"] = SCHEME_PORTS[written.scheme]
        else:
            redirect["derivePort"] = "FROM_REQUEST_PORT"
        if written.path is not None:
            redirect["uri"] = written.path
        out["redirect"] = redirect
        return out
    out["route"] = _route(rule, host_of)
    if spec.fault is not None:
        fault: dict = {}
        if spec.fault.delay is not None:
            fault["delay"] = {"fixedDelay": proto_duration(spec.fault.delay.fixed),
                              "percentage": {"value": float(spec.fault.delay.percent)}}
        if spec.fault.abort is not None:
            fault["abort"] = {"httpStatus": spec.fault.abort.status,
                              "percentage": {"value": float(spec.fault.abort.percent)}}
        out["fault"] = fault
    if rule.mirrors:  # HTTPRoute.mirrors: "each ... with its own percentage" (`mirror` is deprecated)
        out["mirrors"] = [{"destination": _destination(target, host_of), "percentage": {"value": float(m.percent)}}
                          for target, (_, m) in zip(rule.mirrors, spec.written_mirrors(), strict=True)]
    out.update(_headers(spec.headers))
    if spec.cors is not None:
        out["corsPolicy"] = cors_policy(spec.cors)
    return out


def cors_policy(cors: Cors) -> dict:
    """Istio CorsPolicy: the origins as the StringMatches Envoy's filter takes (Istio passes them
    through), a preflight whose Origin is not allowed answered, not forwarded
    (`unmatchedPreflights: IGNORE`), and the max age written out (docs/intents.md, CORS)."""
    origins = [{"regex": m["safe_regex"]["regex"]} if "safe_regex" in m else m
               for pattern in cors.allowOrigins for m in origin_matchers(pattern)]
    policy: dict = {"allowOrigins": origins}
    for field in ("allowMethods", "allowHeaders", "exposeHeaders"):
        if getattr(cors, field):
            policy[field] = list(getattr(cors, field))
    policy["maxAge"] = f"{cors.max_age_seconds}s"
    if cors.allowCredentials:
        policy["allowCredentials"] = True
    policy["unmatchedPreflights"] = "IGNORE"
    return policy


def _l4_rule(rule: ResolvedRule, host_of: HostOf, with_sni: bool) -> dict:
    matches = []
    for match in rule.spec.match:
        entry: dict = {}
        if with_sni:
            entry["sniHosts"] = list(match.sni)
        if match.port is not None:
            entry["port"] = match.port
        matches.append(entry)
    out: dict = {"route": _route(rule, host_of, http=False)}
    if matches:
        out["match"] = matches
    return out


def routing_spec(route: RouteNode, protocol_of: Callable[[Target], str], host_of: HostOf,
                 inexpressible: list[tuple[ResolvedRule, str]]) -> dict:
    """http, tcp and tls sections of a VirtualService, each rule in the order written; rules
    whose meaning Istio cannot carry are added to `inexpressible` with the reason."""
    sections: dict[str, list[dict]] = {}
    for rule in route.rules:
        kind = rule_kind(rule, protocol_of)
        if kind == "http" and rule.spec.redirect is not None and rule.spec.redirect.prefix is not None:
            sections.setdefault("http", []).extend(_redirect_rules(rule, host_of, inexpressible))
        elif kind == "http" and rule.spec.redirect is not None:
            sections.setdefault("http", []).extend(_http_rules(rule, host_of))
        elif kind == "http":
            sections.setdefault("http", []).extend(with_retries(_http_rules(rule, host_of), rule.retries, rule.timeout))
            if rule.retries is not None and backoff_capped_otherwise(rule.retries):
                inexpressible.append((rule, BACKOFF_CAP))
        else:
            sections.setdefault(kind, []).append(_l4_rule(rule, host_of, with_sni=kind == "tls"))
    return sections


def virtual_service(group: RouteGroup, hosts: list[str], protocol_of: Callable[[Target], str], host_of: HostOf,
                    inexpressible: list[tuple[RouteNode, ResolvedRule, str]],
                    gateways: list[str] | None = None) -> dict:
    """One VirtualService for the merged Routes of `group`: their sections in merge order, each
    Route's rules as written (Istio keeps the order within one VirtualService only)."""
    sections: dict[str, list[dict]] = {}
    for route in group.routes:
        found: list[tuple[ResolvedRule, str]] = []
        for kind, entries in routing_spec(route, protocol_of, host_of, found).items():
            sections.setdefault(kind, []).extend(entries)
        inexpressible.extend((route, rule, reason) for rule, reason in found)
    spec: dict = {"hosts": hosts, **sections}
    if gateways is not None:
        spec["gateways"] = gateways
    return document(ISTIO_NETWORKING, "VirtualService", metadata(group.key.name, group.key.namespace, group.files),
                    spec=spec)


def default_virtual_service(name: str, namespace: str, host: str, ports: list[int], timeout: str | None,
                            retries, sources: tuple[str, ...]) -> dict:
    """The service's own timeout and retries for HTTP callers when no Route says otherwise."""
    rules = []
    for port in ports:
        rule: dict = {"route": [{"destination": {"host": host, "port": {"number": port}}}]}
        if len(ports) > 1:
            rule["match"] = [{"port": port}]
        rules.extend(with_retries([rule], retries, timeout))
    return document(ISTIO_NETWORKING, "VirtualService", metadata(name, namespace, sources),
                    spec={"hosts": [host], "http": rules})




def https_redirect_rule(port: int) -> dict:
    """An http listener's `httpsRedirect`: every request on its port goes to https on 443.
    Istio's Server `tls.httpsRedirect` (Envoy `require_tls`) keeps a port written in the Host
    header (`Host: a:8080` is sent to `https://a:8080/`); HTTPRedirect `port` ("On a redirect,
    overwrite the port portion of the URL with this value", istio/api virtual_service.proto;
    pilot writes it as Envoy's `port_redirect`) sends every client to 443, as docs/intents.md
    says. `derivePort: FROM_PROTOCOL_DEFAULT` would not: pilot writes no port for it and Envoy
    keeps the Host's."""
    return {"match": [{"port": port}], "redirect": {"scheme": "https", "port": 443, "redirectCode": 301}}


SCHEME_PORTS = {"http": 80, "https": 443}


@dataclass
class HttpsRedirects:
    """How a Gateway's httpsRedirect listeners are carried: a VirtualService per listener for
    its hosts no Route writes, the redirect rule first in each VirtualService of Routes whose
    hosts the listener serves (Istio keeps one virtual host per domain, so a Route covering a
    listener host decides that host on the listener's port too), and the (listener, Routes)
    pairs where the Routes' hosts also reach a listener of that port that does not redirect,
    which one rule matching on the port cannot tell apart."""

    services: list[dict] = dataclasses.field(default_factory=list)
    group_ports: dict[Key, list[int]] = dataclasses.field(default_factory=dict)
    conflicts: list[tuple[int, RouteGroup]] = dataclasses.field(default_factory=list)  # (listener index, Routes)


def https_redirects(gateway: GatewayNode, groups: Sequence[RouteGroup]) -> HttpsRedirects:
    out = HttpsRedirects()
    for index, listener in enumerate(gateway.listeners):
        if not listener.httpsRedirect:
            continue
        port = listener.port
        plain = [other for other in gateway.listeners
                 if other.port == port and other.protocol == "http" and not other.httpsRedirect]
        for group in groups:
            if not any(overlap(lh, h) for lh in listener.hosts for h in group.hosts):
                continue
            if any(overlap(oh, h) for other in plain for oh in other.hosts for h in group.hosts):
                out.conflicts.append((index, group))
            elif port not in out.group_ports.setdefault(group.key, []):
                out.group_ports[group.key].append(port)
        own = [h for h in listener.hosts
               if not any(covers(h_route, h) for group in groups for h_route in group.hosts)]
        if own:
            out.services.append(document(
                ISTIO_NETWORKING, "VirtualService",
                metadata(f"{gateway.key.name}-{listener.name}-https-redirect", gateway.key.namespace,
                         (gateway.origin.file,)),
                spec={"hosts": own, "gateways": [f"{gateway.key.namespace}/{gateway.key.name}"],
                      "http": [https_redirect_rule(port)]}))
    return out


def server_tls(tls: ListenerTls) -> dict:
    """Istio ServerTLSSettings of a terminating listener: MUTUAL with `caCertCredentialName`
    ("For mutual TLS, the name of the secret or the configmap that holds CA certificates") when
    clients are validated, else SIMPLE; `minProtocolVersion` and `cipherSuites` as written."""
    settings: dict = {"mode": "MUTUAL" if tls.clientValidation is not None else "SIMPLE",
                      "credentialName": tls.certificate}
    if tls.clientValidation is not None:
        settings["caCertCredentialName"] = tls.clientValidation.ca
    if tls.minVersion is not None:
        settings["minProtocolVersion"] = "TLSV" + tls.minVersion.replace(".", "_")
    if tls.cipherSuites:
        settings["cipherSuites"] = list(tls.cipherSuites)
    return settings


def istio_gateway(gateway: GatewayNode) -> dict:
    servers = []
    for listener in gateway.listeners:
        server: dict = {
            "port": {"number": listener.port, "name": listener.name,
                     "protocol": protocol_name(listener.protocol)},
            "hosts": list(listener.hosts),
        }
        if listener.tls is not None:
            if listener.tls.mode == "passthrough":
                server["tls"] = {"mode": "PASSTHROUGH"}
            else:
                server["tls"] = server_tls(listener.tls)
        servers.append(server)
    return document(
        ISTIO_NETWORKING,
        "Gateway",
        metadata(gateway.key.name, gateway.key.namespace, (gateway.origin.file,)),
        spec={"selector": gateway_selector(gateway), "servers": servers},
    )
