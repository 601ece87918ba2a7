"""How clients reach each service: the names and ports an error must name to be its fault.

Root causes are linked on evidence (``reconcile.root_causes``): a dependent's connection
error is the dependency's fault when it names one of these. They come from:

- the compose model: the service name, ``container_name``, ``hostname``, network
  ``aliases``, the alias another service's ``links`` give it (only for a service on a
  Compose network: under a ``network_mode`` no client resolves them), ``ports``
  (published and target) and ``expose`` (compose's own ``<project>-<service>-<n>``
  container names are matched by ``reconcile``, which knows the project);
- the service's own checks, which talk to the service itself: the port of a ``localhost``
  URL or ``127.0.0.1:PORT`` in its healthcheck or an exec probe, their ``-p``/``--port``
  flags and a number from 1024 to 65535 on its own (``healthcheck.py 18080``); the host
  and port of its http and tcp probes;
- the declaration's ``addresses``, for what none of these tells: under ``network_mode:
  host`` a service listens on 127.0.0.1:PORT and the port often lives only in an
  environment variable or a command line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from controller.desired.errors import Problems
from controller.model import Endpoint, ProbeKind, ProbeSpec, ServiceAddress

MAX_RANGE = 100  # ports of one ``expose``/``ports`` range taken at most
_PORT_FLAGS = frozenset({"-p", "-P", "--port"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_PORT = re.compile(
    r"^(?:\[(?P<v6>[0-9a-fA-F:.%]+)\]|(?P<host>[A-Za-z0-9_.-]+)):(?P<port>\d+)$"
)
_RANGE = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?(?:/\w+)?$")


def parse_address(text: str) -> Endpoint | None:
    """A declared address: ``HOST``, ``HOST:PORT``, ``:PORT``, ``PORT`` or ``[V6]:PORT``."""
    text = text.strip()
    if text.isdigit():
        text = ":" + text
    return Endpoint.parse(text)


def declared_addresses(
    service: str, declared: Sequence[str], problems: Problems
) -> list[ServiceAddress]:
    found = []
    for i, text in enumerate(declared):
        endpoint = parse_address(text)
        if endpoint is None:
            problems.add(
                ("services", service, "addresses", i),
                f"{text!r} is not HOST, HOST:PORT or :PORT (a host name or IP address, "
                "a port from 1 to 65535)",
            )
            continue
        found.append(ServiceAddress(endpoint, "declared"))
    return found


def service_addresses(
    name: str,
    compose_service: Mapping[str, Any],
    compose_services: Mapping[str, Any],
    probes: Sequence[ProbeSpec],
    declared: Sequence[ServiceAddress],
) -> tuple[ServiceAddress, ...]:
    """Every way ``name`` is reached, each once, the first source that told it kept."""
    found: list[ServiceAddress] = []
    if named_on_a_network(compose_service):
        found.append(ServiceAddress(Endpoint(name.lower()), "service name"))
        found += _names(compose_service.get("container_name"), "container_name")
        found += _names(compose_service.get("hostname"), "hostname")
        for network in (compose_service.get("networks") or {}).values():
            found += _names((network or {}).get("aliases"), "network alias")
        for other, spec in sorted(compose_services.items()):
            for link in (spec or {}).get("links") or []:
                target, _, alias = str(link).partition(":")
                if target == name and alias:
                    found += _names(alias, f"its alias in {other}'s links")
    found += _compose_ports(compose_service)
    healthcheck = compose_service.get("healthcheck") or {}
    if not healthcheck.get("disable"):
        ports = _check_ports(healthcheck.get("test"))
        found += [ServiceAddress(Endpoint("", port), "its healthcheck") for port in ports]
    for probe in probes:
        found += _probe(probe)
    found += declared
    unique: dict[Endpoint, ServiceAddress] = {}
    for address in found:
        unique.setdefault(address.endpoint, address)
    return tuple(unique.values())


def named_on_a_network(compose_service: Mapping[str, Any]) -> bool:
    """Whether clients can reach the service by a name: it is on a Compose network. Under
    ``network_mode: host`` it listens on the host's loopback (reached by port), under
    ``none`` it is reached by nothing, and under ``service:X``/``container:X`` by X's names.
    """
    return not str(compose_service.get("network_mode") or "")


def _names(value: object, source: str) -> list[ServiceAddress]:
    values = value if isinstance(value, list) else [value] if value else []
    return [
        ServiceAddress(endpoint, source)
        for v in values
        if (endpoint := Endpoint.parse(str(v))) is not None and endpoint.host and not endpoint.port
    ]


def _compose_ports(compose_service: Mapping[str, Any]) -> list[ServiceAddress]:
    found: list[ServiceAddress] = []
    for entry in compose_service.get("ports") or []:
        if isinstance(entry, Mapping):
            found += _range(entry.get("target"), "target port")
            found += _range(entry.get("published"), "published port")
        else:  # a short form, where a loader did not normalise it: [IP:][PUBLISHED:]TARGET
            parts = str(entry).rsplit(":", 2)
            found += _range(parts[-1], "target port")
            if len(parts) > 1:
                found += _range(parts[-2], "published port")
    for entry in compose_service.get("expose") or []:
        found += _range(entry, "expose")
    return found


def _range(value: object, source: str) -> list[ServiceAddress]:
    found = _RANGE.match(str(value)) if value is not None else None
    if found is None:
        return []
    low = int(found[1])
    high = int(found[2] or low)
    return [
        ServiceAddress(Endpoint("", port), source)
        for port in range(low, min(high, low + MAX_RANGE - 1) + 1)
        if 0 < port < 65536
    ]


def _probe(probe: ProbeSpec) -> list[ServiceAddress]:
    source = f"its {probe.kind} probe"
    if probe.kind is ProbeKind.TCP:
        host = probe.host.lower()
        return [ServiceAddress(Endpoint(host, probe.port), source)]
    if probe.kind is ProbeKind.HTTP:
        url = _url(probe.url)
        return [ServiceAddress(url, source)] if url is not None else []
    return [ServiceAddress(Endpoint("", p), source) for p in _check_ports(list(probe.argv))]


def _url(text: str) -> Endpoint | None:
    try:
        parts = urlsplit(text)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 0)
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    return Endpoint(host, port) if host or port else None


def _check_ports(test: object) -> list[int]:
    """The ports a check of the service talks to: of a local URL or ``HOST:PORT``, after
    ``-p``/``-P``/``--port``, or a number from 1024 to 65535 on its own."""
    if isinstance(test, str):
        words = test.split()
    elif isinstance(test, list):
        parts = [str(part) for part in test]
        if parts and parts[0] in ("CMD", "CMD-SHELL"):
            parts = parts[1:]
        words = [word for part in parts for word in part.split()]
    else:
        return []
    return list(dict.fromkeys(_ports_in(words)))


def _ports_in(words: Sequence[str]) -> Iterator[int]:
    after_flag = False
    for word in words:
        word = word.strip("\"'")
        if after_flag and word.isdigit():
            yield from _valid(int(word))
        after_flag = word in _PORT_FLAGS
        if word.startswith("--port="):
            value = word.removeprefix("--port=")
            if value.isdigit():
                yield from _valid(int(value))
        elif "://" in word:
            url = _url(word)
            if url is not None and url.local and url.port:
                yield url.port
        elif (found := _HOST_PORT.match(word)) is not None:
            host = Endpoint((found["v6"] or found["host"]).lower())
            if host.local:
                yield from _valid(int(found["port"]))
        elif word.isdigit() and 1024 <= int(word) < 65536:
            yield int(word)


def _valid(port: int) -> Iterable[int]:
    return [port] if 0 < port < 65536 else []
