"""detect.names: what a connection or database error names, over real error lines (most
of them the examples of the library's packs, controller/detect/packs/)."""

import pytest

from controller.detect.library import library_specs
from controller.detect.names import named_endpoints
from controller.model import Endpoint

CASES = [
    # the report
    ("ERROR: connection refused to db:5432", ("db:5432",)),
    # PostgreSQL server and psycopg2
    ('2026-11-28 04:36:36.782 UTC [57] FATAL:  database "netra" does not exist', ()),
    (
        'psycopg2.OperationalError: connection to server at "127.0.0.1", port 5432 failed: '
        "Connection refused",
        ("127.0.0.1:5432",),
    ),
    (
        'psycopg2.OperationalError: connection to server at "db" (172.18.0.2), port 5432 '
        'failed: FATAL:  role "postgres" does not exist',
        ("db:5432",),
    ),
    (
        "could not connect to server: Connection refused Is the server running on host "
        '"localhost" (127.0.0.1) and accepting TCP/IP connections on port 5432?',
        ("localhost:5432",),
    ),
    (
        'psycopg2.OperationalError: could not translate host name "db" to address: '
        "Temporary failure in name resolution",
        ("db",),
    ),
    ("postgres://app:***@db:5432/app connection failed", ("db:5432",)),
    (
        "org.postgresql.util.PSQLException: Connection to localhost:5432 refused. Check "
        "that the hostname and port are correct",
        ("localhost:5432",),
    ),
    # Redis
    ("Error 111 connecting to redis:6379. Connection refused.", ("redis:6379",)),
    ("redis.exceptions.ConnectionError: max number of clients reached", ()),
    # Node
    ("Error: connect ECONNREFUSED 127.0.0.1:6379", ("127.0.0.1:6379",)),
    ("Error: connect ECONNREFUSED ::1:5432", ("[::1]:5432",)),
    ("Error: getaddrinfo ENOTFOUND db", ("db",)),
    ("Error: getaddrinfo EAI_AGAIN redis", ("redis",)),
    ("Error: read ECONNRESET", ()),
    (
        "    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)",
        (),
    ),
    # Java
    ("java.net.ConnectException: Connection refused (Connection refused)", ()),
    ("java.net.UnknownHostException: kafka: Name or service not known", ("kafka",)),
    (
        "io.netty.channel.AbstractChannel$AnnotatedConnectException: Connection refused: "
        "localhost/127.0.0.1:8080",
        ("127.0.0.1:8080",),
    ),
    (
        "\tat com.zaxxer.hikari.pool.HikariPool.createPoolEntry(HikariPool.java:456)",
        (),
    ),
    (
        "com.mongodb.MongoTimeoutException: Timed out after 30000 ms while waiting to "
        "connect. Client view of cluster state is {type=UNKNOWN, servers=[{address="
        "mongo:27017, type=UNKNOWN, state=CONNECTING}]",
        ("mongo:27017",),
    ),
    # Go
    ("dial tcp 127.0.0.1:8080: connect: connection refused", ("127.0.0.1:8080",)),
    ("dial tcp [::1]:5432: connect: connection refused", ("[::1]:5432",)),
    ("dial tcp: lookup postgres on 127.0.0.11:53: no such host", ("postgres",)),
    (
        "read tcp 172.18.0.4:43512->172.18.0.6:5432: read: connection reset by peer",
        ("172.18.0.6:5432",),
    ),
    (
        "failed to connect to `host=db user=app database=app`: dial error (dial tcp "
        "172.18.0.2:5432: connect: connection refused)",
        ("db", "172.18.0.2:5432"),
    ),
    ("2026/11/28 04:36:36 main.go:42: dial tcp 10.0.3.7:5432: i/o timeout", ("10.0.3.7:5432",)),
    # nginx: the upstream, never the client, the server name or the request's Host
    (
        "2026/11/28 04:36:36 [error] 29#29: *1 connect() failed (111: Connection refused) "
        'while connecting to upstream, client: 172.18.0.1, server: localhost, request: "GET '
        '/api/orders HTTP/1.1", upstream: "http://172.18.0.5:8000/api/orders", host: '
        '"localhost:8080"',
        ("172.18.0.5:8000",),
    ),
    (
        "2026/11/28 04:38:01 [error] 30#30: *25 no live upstreams while connecting to "
        'upstream, client: 172.18.0.1, server: localhost, request: "GET / HTTP/1.1", '
        'upstream: "http://backend/", host: "localhost:8080"',
        ("backend",),
    ),
    (
        "2026/11/28 04:36:36 [error] 30#30: *5 app could not be resolved (3: Host not "
        'found), client: 172.18.0.1, server: localhost, request: "GET / HTTP/1.1", host: '
        '"localhost"',
        ("app",),
    ),
    # MySQL, MongoDB, Python clients
    (
        "pymysql.err.OperationalError: (2003, \"Can't connect to MySQL server on 'db' "
        '([Errno 111] Connection refused)")',
        ("db",),
    ),
    (
        "ERROR 2013 (HY000): Lost connection to MySQL server at 'reading initial "
        "communication packet', system error: 0",
        (),
    ),
    (
        "ERROR 2002 (HY000): Can't connect to local MySQL server through socket "
        "'/var/run/mysqld/mysqld.sock' (2)",
        (),
    ),
    (
        "pymongo.errors.ServerSelectionTimeoutError: mongo:27017: [Errno 111] Connection "
        "refused, Timeout: 30s, servers: [<ServerDescription ('mongo', 27017) server_type: "
        "Unknown, rtt: None>]>",
        ("mongo:27017",),
    ),
    (
        "requests.exceptions.ConnectionError: HTTPConnectionPool(host='web', port=8000): Max "
        "retries exceeded with url: /health (Caused by NewConnectionError('<urllib3."
        "connection.HTTPConnection object at 0x7f2b1c3d4e50>: Failed to establish a new "
        "connection: [Errno 111] Connection refused'))",
        ("web:8000",),
    ),
    ("socket.gaierror: [Errno -2] Name or service not known", ()),
    # structured logs
    ('{"level":"error","msg":"connection refused","host":"db","port":5432}', ("db:5432",)),
    ('level=error msg="cannot connect" host=db port=5432', ("db:5432",)),
    ("Server=sql.internal;Port=1433;Database=app: login timeout expired", ("sql.internal:1433",)),
    # words and numbers that are not addresses
    ("2026-11-28T04:36:36.100Z ERROR app.db: connection refused", ()),
    ("retry:3 attempt:2 code:500 connection refused", ()),
    ("could not connect to server: Connection refused", ()),
]


@pytest.mark.parametrize(("line", "named"), CASES)
def test_what_an_error_line_names(line: str, named: tuple[str, ...]) -> None:
    assert named_endpoints(line) == named


def test_a_patterns_named_captures_come_first():
    line = "upstream db-primary:5432 refused (via 127.0.0.1:6432)"
    assert named_endpoints(line, {"host": "db-primary", "port": "5432"}) == ("db-primary:5432",)
    assert named_endpoints(line, {"addr": "10.0.0.5:5432"}) == ("10.0.0.5:5432",)
    assert named_endpoints(line, {"url": "redis://cache:6379/0"}) == ("cache:6379",)
    assert named_endpoints(line, {"port": "6432"}) == (":6432",)
    # a capture that is no address, or a masked one, leaves the line to be read
    assert named_endpoints(line, {"database": "app"}) == ("db-primary:5432", "127.0.0.1:6432")
    assert named_endpoints(line, {"host": "***"}) == ("db-primary:5432", "127.0.0.1:6432")


def test_a_bare_port_stands_alone_when_no_host_came_before_it():
    assert named_endpoints("FATAL: could not connect on port 5432") == (":5432",)


def test_every_connection_and_database_example_of_the_library_is_read_without_error():
    lines = [
        example
        for pattern in library_specs()
        if pattern.category in ("connection", "database")
        for example in pattern.examples
    ]
    assert len(lines) > 60
    for line in lines:
        for text in named_endpoints(line):
            endpoint = Endpoint.parse(text)
            assert endpoint is not None and str(endpoint) == text, (line, text)


@pytest.mark.parametrize(
    ("text", "endpoint"),
    [
        ("db:5432", Endpoint("db", 5432)),
        ("DB", Endpoint("db", 0)),
        (":5432", Endpoint("", 5432)),
        ("[::1]:5432", Endpoint("::1", 5432)),
        ("[fe80::1]", Endpoint("fe80::1", 0)),
        ("db:0", None),
        ("db:70000", None),
        ("", None),
        ("bad host", None),
        ("-db", None),
        ("db:", None),
    ],
)
def test_endpoint_text_reads_back(text: str, endpoint: Endpoint | None) -> None:
    assert Endpoint.parse(text) == endpoint
    if endpoint is not None:
        assert Endpoint.parse(str(endpoint)) == endpoint


def test_what_is_local_and_what_is_specific():
    assert Endpoint("127.0.0.5").local and Endpoint("localhost").local
    assert Endpoint("host.docker.internal").local and Endpoint("::1").local
    assert not Endpoint("db").local
    assert not Endpoint("localhost").specific and Endpoint("localhost", 1).specific
    assert Endpoint("db").specific and Endpoint("", 80).specific
    assert Endpoint("10.0.0.1").literal and not Endpoint("db").literal
