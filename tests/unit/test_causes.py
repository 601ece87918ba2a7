"""causes.root_causes: a link needs evidence (what the error names, what broke first),
never the dependency graph alone."""

from datetime import UTC, datetime, timedelta

import pytest

from controller.causes import naming, root_causes, upstream
from controller.model import Endpoint, Issue, ServiceAddress
from tests.fakes import desired, spec

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def drift(service: str, began: float, kind: str = "exited", **fields: object) -> Issue:
    fp = f"drift:{service}:{kind}"
    return Issue(
        id=f"{service}-{kind}",
        fingerprint=fp,
        env="dev",
        service=service,
        kind=kind,
        category="health",
        severity="high",
        title=f"{service} {kind}",
        first_seen=at(began),
        last_seen=at(began),
        opened_at=at(began),
        **fields,  # type: ignore[arg-type]
    )


def error(
    service: str,
    began: float,
    *named: str,
    category: str = "connection",
    name: str = "refused",
) -> Issue:
    return Issue(
        id=f"{service}-{name}",
        fingerprint=f"log:{service}:{name}",
        env="dev",
        service=service,
        source="log",
        kind="log",
        category=category,
        severity="high",
        title=f"{service} {name}",
        first_seen=at(began),
        last_seen=at(began),
        opened_at=at(began),
        named=list(named),
    )


def addr(text: str, source: str = "declared") -> ServiceAddress:
    endpoint = Endpoint.parse(text)
    assert endpoint is not None, text
    return ServiceAddress(endpoint, source)


def stack(**addresses: list[ServiceAddress]):  # type: ignore[no-untyped-def]
    """The report's stack: api depends on web and cache; web depends on db."""

    def with_name(name: str, *deps: str):  # type: ignore[no-untyped-def]
        own = [ServiceAddress(Endpoint(name), "service name"), *addresses.get(name, [])]
        return spec(name, depends_on=deps, addresses=tuple(own))

    return desired(
        with_name("db"),
        with_name("cache"),
        with_name("web", "db"),
        with_name("api", "web", "cache"),
        with_name("other"),
    )


# --- the report ---------------------------------------------------------------------------


def test_an_error_naming_a_host_that_is_no_service_is_not_linked_to_a_broken_dependency():
    # api printed `connection refused to db:5432`; db is not a service of this stack
    state = desired(
        spec("web", addresses=(addr("web", "service name"), addr(":8080", "its healthcheck"))),
        spec("api", depends_on=("web",)),
    )
    issues = [drift("web", 0), error("api", 10, "db:5432")]
    assert root_causes(state, issues) == {}


def test_the_same_error_naming_the_dependencys_port_is_linked_with_its_evidence():
    state = desired(
        spec("web", addresses=(addr("web", "service name"), addr(":8080", "its healthcheck"))),
        spec("api", depends_on=("web",)),
    )
    issues = [drift("web", 0), error("api", 10, "127.0.0.1:8080")]
    assert root_causes(state, issues) == {
        "log:api:refused": {
            "web-exited": "names 127.0.0.1:8080, port 8080 of web (its healthcheck)"
        }
    }


# --- naming: each kind of evidence ------------------------------------------------------------


@pytest.mark.parametrize(
    ("named", "source", "why"),
    [
        ("db:5432", "service name", "names db:5432, a name of db (service name)"),
        ("the-db", "container_name", "names the-db, a name of db (container_name)"),
        ("dbhost:5432", "hostname", "names dbhost:5432, a name of db (hostname)"),
        ("database", "network alias", "names database, a name of db (network alias)"),
        ("sql", "its alias in web's links", "names sql, a name of db (its alias in web's links)"),
        ("db.internal", "declared", "names db.internal, a name of db (declared)"),
        ("127.0.0.1:5432", "target port", "names 127.0.0.1:5432, port 5432 of db (target port)"),
        (
            "localhost:15432",
            "published port",
            "names localhost:15432, port 15432 of db (published port)",
        ),
        ("[::1]:6000", "expose", "names [::1]:6000, port 6000 of db (expose)"),
        (":18432", "its healthcheck", "names :18432, port 18432 of db (its healthcheck)"),
        (
            "host.docker.internal:7777",
            "its tcp probe",
            "names host.docker.internal:7777, port 7777 of db (its tcp probe)",
        ),
        (
            "172.18.0.2:9000",
            "its http probe",
            "names 172.18.0.2:9000, port 9000 of db (its http probe)",
        ),
    ],
)
def test_each_kind_of_address_names_its_service(named: str, source: str, why: str) -> None:
    known = {
        "service name": "db",
        "container_name": "the-db",
        "hostname": "dbhost",
        "network alias": "database",
        "its alias in web's links": "sql",
        "declared": "db.internal",
        "target port": ":5432",
        "published port": ":15432",
        "expose": ":6000",
        "its healthcheck": ":18432",
        "its tcp probe": "127.0.0.1:7777",
        "its http probe": "127.0.0.1:9000",
    }
    state = desired(spec("db", addresses=(addr(known[source], source),)))
    endpoint = Endpoint.parse(named)
    assert endpoint is not None
    assert naming(state, "db", endpoint) == why


def test_compose_container_names_name_their_service():
    state = desired(spec("db"))
    assert (
        naming(state, "db", Endpoint("demo-db-1"))
        == "names demo-db-1, a name of db (compose container name)"
    )
    assert naming(state, "db", Endpoint("demo_db_2", 5432)) is not None
    assert naming(state, "db", Endpoint("demo-dbx-1")) is None
    assert naming(state, "db", Endpoint("other-db-1")) is None


def test_a_host_name_decides_alone_and_a_loopback_host_by_its_port():
    state = desired(spec("db", addresses=(addr("db", "service name"), addr(":5432", "expose"))))
    assert naming(state, "db", Endpoint("db", 9999)) is not None  # the name is db's
    assert naming(state, "db", Endpoint("elsewhere", 5432)) is None  # a name, not db's
    assert naming(state, "db", Endpoint("localhost", 5432)) is not None
    assert naming(state, "db", Endpoint("127.0.0.1", 6379)) is None
    assert naming(state, "db", Endpoint("localhost")) is None  # loopback alone: no service


def test_a_declared_ip_names_its_service_with_any_port_and_other_ips_by_port():
    state = desired(spec("db", addresses=(addr("10.0.3.7"), addr(":5432", "expose"))))
    assert naming(state, "db", Endpoint("10.0.3.7", 15000)) is not None
    assert naming(state, "db", Endpoint("10.0.3.8", 5432)) is not None
    assert naming(state, "db", Endpoint("10.0.3.8", 15000)) is None


# --- log errors -------------------------------------------------------------------------


def test_the_naming_rule_beats_the_graph():
    # web broke first and api depends on it, but api's error names db
    state = stack(db=[addr(":5432", "expose")])
    issues = [drift("web", 0), drift("db", 5), error("api", 10, "127.0.0.1:5432")]
    links = root_causes(state, issues)
    assert list(links["log:api:refused"]) == ["db-exited"]  # not web, which broke first
    assert "drift:web:exited" not in links  # web broke before db: on its own


def test_a_named_dependency_is_linked_even_when_its_fault_came_later():
    state = stack(db=[addr(":5432", "expose")])
    issues = [drift("db", 20), error("api", 10, "127.0.0.1:5432")]
    links = root_causes(state, issues)
    assert links["log:api:refused"] == {
        "db-exited": "names 127.0.0.1:5432, port 5432 of db (expose)"
    }


def test_an_error_naming_only_a_dependency_that_is_fine_is_its_own():
    state = stack(cache=[addr(":6379", "expose")])
    issues = [drift("web", 0), error("api", 10, "127.0.0.1:6379")]
    assert root_causes(state, issues) == {}


def test_an_error_naming_a_broken_service_that_is_no_dependency_is_not_linked():
    state = stack(other=[addr(":7000", "expose")])
    issues = [drift("other", 0), error("api", 10, "127.0.0.1:7000")]
    assert root_causes(state, issues) == {}


def test_an_error_naming_nothing_is_linked_only_when_the_dependency_broke_first():
    state = stack()
    before = [drift("web", 0), error("api", 12, name="bare")]
    assert root_causes(state, before) == {
        "log:api:bare": {
            "web-exited": "names no host or port, and web's fault began 12 s before it"
        }
    }
    after = [drift("web", 30), error("api", 12, name="bare")]
    assert root_causes(state, after) == {}


def test_a_loopback_host_without_a_port_names_nothing():
    state = stack()
    links = root_causes(state, [drift("web", 0), error("api", 3, "localhost")])
    assert links["log:api:refused"] == {
        "web-exited": "names no host or port, and web's fault began 3 s before it"
    }
    assert root_causes(state, [drift("web", 9), error("api", 3, "localhost")]) == {}


def test_the_engines_record_of_a_death_counts_before_the_issue_opened():
    # web died at 0 s; the pass that opened its issue came at 2 s; the error came at 1 s
    state = stack()
    issues = [drift("web", 2, fault_since=at(0)), error("api", 1, name="bare")]
    assert root_causes(state, issues)["log:api:bare"] == {
        "web-exited": "names no host or port, and web's fault began 1 s before it"
    }


def test_transitive_dependencies_are_named_and_ordered_too():
    state = stack(db=[addr(":5432", "expose")])
    assert upstream(state, "api") == ["web", "cache", "db"]
    named = root_causes(state, [drift("db", 0), error("api", 5, "127.0.0.1:5432")])
    assert list(named["log:api:refused"]) == ["db-exited"]
    bare = root_causes(state, [drift("db", 0), error("api", 5, name="bare")])
    assert list(bare["log:api:bare"]) == ["db-exited"]


def test_several_upstream_issues():
    state = stack(db=[addr(":5432", "expose")])
    issues = [
        drift("db", 0),
        drift("db", 1, kind="probe-failed"),
        drift("web", 2),
        drift("cache", 50),
        error("api", 10, name="bare"),
        error("api", 10, "127.0.0.1:5432", "redis:6379", name="named"),
    ]
    links = root_causes(state, issues)
    # naming nothing: every dependency that broke first, not the one that broke after
    assert set(links["log:api:bare"]) == {"db-exited", "db-probe-failed", "web-exited"}
    # naming db (and a host that is no service): every issue of db, nothing else
    assert set(links["log:api:named"]) == {"db-exited", "db-probe-failed"}
    assert links["drift:web:exited"] == {"db-exited": "db's fault began 2 s before it"} | {
        "db-probe-failed": "db's fault began 1 s before it"
    }


def test_other_categories_resolved_and_non_blocking_upstreams_are_never_causes():
    state = stack()
    issues = [
        drift("web", 0, blocking=False),
        drift("cache", 0, state="resolved"),
        error("api", 10, name="bare"),
        error("api", 10, category="config", name="config"),
    ]
    assert root_causes(state, issues) == {}


# --- drifts -------------------------------------------------------------------------------


def test_a_dependents_drift_is_linked_only_when_the_dependency_broke_first():
    state = stack()
    assert root_causes(state, [drift("web", 0), drift("api", 4, kind="unhealthy")]) == {
        "drift:api:unhealthy": {"web-exited": "web's fault began 4 s before it"}
    }
    assert root_causes(state, [drift("web", 9), drift("api", 4, kind="unhealthy")]) == {}


def test_a_crash_explained_by_an_error_follows_what_that_error_names():
    state = stack(db=[addr(":5432", "expose")])
    crash = drift("api", 12)
    outsider = error("api", 11, "db.example.com:5432", name="out")
    ours = error("api", 11, "127.0.0.1:5432", name="ours")
    broken = [drift("web", 0), drift("db", 1)]
    # the error that explains the crash names a host that is no service: its own fault
    assert "drift:api:exited" not in root_causes(
        state, [*broken, crash, outsider], {crash.fingerprint: [outsider.fingerprint]}
    )
    # it names db's port: linked to db, not to web, which broke first too
    links = root_causes(state, [*broken, crash, ours], {crash.fingerprint: [ours.fingerprint]})
    assert links["drift:api:exited"] == {
        "db-exited": "its crash is explained by its error api-ours, which names "
        "127.0.0.1:5432, port 5432 of db (expose)"
    }


def test_a_crash_explained_by_a_config_error_is_its_own():
    state = stack()
    crash = drift("api", 12)
    config = error("api", 11, category="config", name="config")
    links = root_causes(
        state, [drift("web", 0), crash, config], {crash.fingerprint: [config.fingerprint]}
    )
    assert links == {}


def test_engine_restart_issues_follow_the_temporal_rule():
    state = stack()
    restarts = drift("api", 5, kind="restart").model_copy(
        update={"source": "engine", "fingerprint": "engine:api:docker-restart"}
    )
    links = root_causes(state, [drift("web", 0), restarts])
    assert links == {"engine:api:docker-restart": {"web-exited": "web's fault began 5 s before it"}}
