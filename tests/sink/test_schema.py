"""Schema: contrib-compatible raw table, idempotent migrations, every statement parsed by the
engine in both modes, cluster DDL."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import chdb
import pytest

from shellspan_sink import schema, tables
from shellspan_sink.schema import MIGRATIONS, SchemaOptions
from shellspan_testing.sinkproc import REPO, SINK_BIN, SinkProcess

HERE = Path(__file__).resolve().parent
# Between them, every placeholder in both of its forms: plain and replicated engines, with and
# without ON CLUSTER, Distributed tables, with and without a TTL clause.
MODES = {
    "single node": SchemaOptions(),
    "cluster with TTL": SchemaOptions(database="audit", cluster="shells", ttl_days=30),
}

# Column names and types of the contrib ClickHouse exporter's traces table
# (exporter/clickhouseexporter/internal/sqltemplates/traces_table.sql).
CONTRIB_OTEL_TRACES = {
    "Timestamp": "DateTime64(9)",
    "TraceId": "String",
    "SpanId": "String",
    "ParentSpanId": "String",
    "TraceState": "String",
    "SpanName": "LowCardinality(String)",
    "SpanKind": "LowCardinality(String)",
    "ServiceName": "LowCardinality(String)",
    "ResourceAttributes": "Map(LowCardinality(String), String)",
    "ScopeName": "String",
    "ScopeVersion": "String",
    "SpanAttributes": "Map(LowCardinality(String), String)",
    "Duration": "UInt64",
    "StatusCode": "LowCardinality(String)",
    "StatusMessage": "String",
    "Events.Timestamp": "Array(DateTime64(9))",
    "Events.Name": "Array(LowCardinality(String))",
    "Events.Attributes": "Array(Map(LowCardinality(String), String))",
    "Links.TraceId": "Array(String)",
    "Links.SpanId": "Array(String)",
    "Links.TraceState": "Array(String)",
    "Links.Attributes": "Array(Map(LowCardinality(String), String))",
}


# Column names and types of the contrib ClickHouse exporter's logs table, v0.161.0 (the release
# collector_config/ builds): exporter/clickhouseexporter/internal/sqltemplates/logs_table.sql.
CONTRIB_OTEL_LOGS = {
    "Timestamp": "DateTime64(9)",
    "TraceId": "String",
    "SpanId": "String",
    "TraceFlags": "UInt8",
    "SeverityText": "LowCardinality(String)",
    "SeverityNumber": "UInt8",
    "ServiceName": "LowCardinality(String)",
    "Body": "String",
    "ResourceSchemaUrl": "LowCardinality(String)",
    "ResourceAttributes": "Map(LowCardinality(String), String)",
    "ScopeSchemaUrl": "LowCardinality(String)",
    "ScopeName": "String",
    "ScopeVersion": "LowCardinality(String)",
    "ScopeAttributes": "Map(LowCardinality(String), String)",
    "LogAttributes": "Map(LowCardinality(String), String)",
    "EventName": "String",
    **{f"__otel_materialized_{key}": "LowCardinality(String)" for key in (
        "k8s.cluster.name", "k8s.container.name", "k8s.deployment.name", "k8s.namespace.name",
        "k8s.node.name", "k8s.pod.name", "k8s.pod.uid", "deployment.environment.name")},
}


def migrate(store: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SINK_BIN), "migrate", "--store", store, *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_migrate_is_idempotent(tmp_path):
    store = f"chdb://{tmp_path / 'store'}"
    first = migrate(store)
    assert first.returncode == 0, first.stderr
    assert f"applied migrations: {[m.version for m in MIGRATIONS]}" in first.stdout
    second = migrate(store)
    assert second.returncode == 0 and "schema is up to date" in second.stdout


def test_raw_table_matches_contrib_columns(shared_sink):
    described = shared_sink.sql("DESCRIBE TABLE shellspan.otel_traces")
    columns = {row[0]: row[1] for row in described["rows"]}
    assert columns == CONTRIB_OTEL_TRACES


def test_logs_table_matches_contrib_columns(shared_sink):
    described = shared_sink.sql("DESCRIBE TABLE shellspan.otel_logs")
    assert {row[0]: row[1] for row in described["rows"]} == CONTRIB_OTEL_LOGS


@pytest.mark.slow
def test_second_sink_on_same_path_fails_clearly(shared_sink, tmp_path):
    second = SinkProcess(tmp_path / "second", store=shared_sink.store)
    with pytest.raises(RuntimeError) as err:
        second.start(timeout=60)
    assert "cannot" in str(err.value).lower()
    assert shared_sink.get("/health")["status"] == "ok"


def all_statements(options: SchemaOptions) -> list[str]:
    return [s for m in MIGRATIONS for s in m.statements(options)]


@pytest.mark.parametrize("mode", MODES)
def test_every_statement_parses(mode):
    """No ClickHouse server runs here: the embedded engine (the same ClickHouse version) parses
    each statement of both modes with EXPLAIN AST."""
    statements = schema.all_statements(MODES[mode])
    assert len(statements) >= 10
    for statement in statements:
        try:
            ast = chdb.query(f"EXPLAIN AST {statement}", "TSVRaw").bytes().decode()
        except Exception as exc:  # chdb raises its own error types
            pytest.fail(f"ClickHouse cannot parse:\n{statement}\n{exc}")
        assert ast.split(" ", 1)[0] in ("CreateQuery", "AlterQuery", "DropQuery", "InsertQuery"), \
            ast[:200]
    # The raw, trace-id, command, search, session index, annotation, access-log, logs and
    # recording tables expire rows when a TTL is set; nothing else does (but the update log,
    # kept two days in any case).
    with_ttl = [s for s in statements if "TTL toDateTime(" in s and tables.SESSION_UPDATES not in s]
    expiring = {re.match(r"CREATE TABLE IF NOT EXISTS `\w+`\.`(\w+?)(?:_local)?`", s).group(1)
                for s in with_ttl}
    assert len(with_ttl) == len(expiring)
    assert expiring == ({tables.OTEL_TRACES, tables.TRACE_ID_TS, tables.COMMANDS,
                         tables.COMMAND_SEARCH, tables.SESSION_INDEX, tables.ANNOTATIONS,
                         tables.ACCESS_LOG, tables.OTEL_LOGS, tables.RECORDINGS}
                        if MODES[mode].ttl_days else set())
    assert all("toIntervalDay(30)" in s for s in with_ttl)


def _words(sql: str) -> list[str]:
    return re.sub(r"\s+", " ", sql).strip().rstrip(";").split(" ")


@pytest.mark.parametrize("options,golden", [
    (SchemaOptions(), "single.sql"),
    (SchemaOptions(database="audit", cluster="shells"), "cluster-audit-shells.sql"),
])
def test_migration_1_is_the_schema_stores_already_have(options, golden):
    """Stores record version 1 as applied, so its statements never change (a schema change is a
    new migration). schema_v1/ holds what `migrate --print` printed when version 1 shipped."""
    released = [_words(s) for s in (HERE / "schema_v1" / golden).read_text().split(";\n\n")]
    version_1 = next(m for m in MIGRATIONS if m.version == 1)
    printed = schema.migrations_table_ddl(options) + version_1.statements(options)
    assert [_words(s) for s in printed] == released


def test_every_template_is_used_and_every_table_created():
    templates = {p.name for p in (REPO / "sink/src/shellspan_sink/sql").glob("*.sql")}
    steps = [step for m in MIGRATIONS for step in m.steps]
    used = {step.template for step in steps} | {"distributed.sql", f"{tables.MIGRATIONS}.sql"}
    included = {f"{name}.sql" for template in used
                for name in re.findall(r"\{\{\s*include\s+(\w+)\s*\}\}", schema.template(template))}
    assert templates == used | included
    assert {step.creates for step in steps if step.creates} | {tables.MIGRATIONS} == set(tables.ALL)


@pytest.mark.parametrize("text,error", [
    ("CREATE TABLE {{ table no_such_table }} (x UInt8)", "not a table of the shellspan schema"),
    ("SELECT {{ semconv NO_SUCH_NAME }}", "semconv has no name"),
    ("SELECT {{ drop_everything }}", "unknown placeholder"),
    ("ENGINE = {{ engine Memory }}", "MergeTree"),
    ("ENGINE = {{ engine ReplicatedMergeTree }}", "MergeTree"),
    ("SELECT {{ table otel_traces; DROP }}", "malformed placeholder"),
])
def test_renderer_refuses_what_it_does_not_know(text, error):
    with pytest.raises(ValueError, match=error):
        schema.render_text(text, SchemaOptions(), tables.OTEL_TRACES, name="test")


def test_docs_show_the_cluster_ddl_that_migrate_prints():
    printed = subprocess.run([str(SINK_BIN), "migrate", "--print", "--cluster", "shells"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    docs = (REPO / "docs/schema.md").read_text()
    block = docs.split("shellspan-sink migrate --print --cluster shells\n```\n\n```sql\n", 1)[1]
    assert block.split("\n```", 1)[0].strip() == printed.strip()


def test_single_node_ddl_has_no_cluster_parts():
    ddl = "\n".join(all_statements(SchemaOptions()))
    assert "ON CLUSTER" not in ddl and "Replicated" not in ddl and "Distributed" not in ddl


def test_cluster_ddl_is_replicated_distributed_and_on_cluster():
    statements = all_statements(SchemaOptions(database="audit", cluster="shells"))
    ddl = [s for s in statements if not s.startswith("INSERT INTO")]
    assert all(" ON CLUSTER `shells`" in s for s in ddl), "every DDL statement runs on the cluster"
    assert all(s.startswith("INSERT INTO `audit`.`shell_") and "_local`" not in s
               for s in statements if s not in ddl), "backfills go through the Distributed tables"
    data_tables = ["otel_traces", "otel_traces_trace_id_ts", "shell_sessions", "shell_commands",
                   "otel_logs", "shell_recordings", "shell_command_search", "shell_annotations",
                   "shell_access_log"]
    for table in data_tables:
        local = next(s for s in statements if f"CREATE TABLE IF NOT EXISTS `audit`.`{table}_local`" in s)
        assert re.search(rf"ENGINE = Replicated\w+MergeTree\('/clickhouse/tables/{{shard}}/audit/"
                         rf"{table}_local', '{{replica}}'\)", local), local
        dist = next(s for s in statements if f"CREATE TABLE IF NOT EXISTS `audit`.`{table}` " in s)
        assert f"AS `audit`.`{table}_local`" in dist
        assert re.search(rf"Distributed\('shells', 'audit', '{table}_local', cityHash64\(\w+\)\)", dist)
    for view, source in (("shell_sessions_mv", "otel_traces"), ("shell_commands_mv", "otel_traces"),
                         ("otel_traces_trace_id_ts_mv", "otel_traces"),
                         ("shell_recordings_mv", "otel_logs"),
                         ("shell_command_search_mv", "shell_commands")):
        mv = next(s for s in statements if f"`audit`.`{view}_local`" in s)
        assert f"FROM `audit`.`{source}_local`" in mv, "views fire on each shard's local inserts"


def test_migrate_print_emits_cluster_ddl_without_a_store():
    result = subprocess.run([str(SINK_BIN), "migrate", "--print", "--cluster", "shells"],
                            capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.count("ON CLUSTER `shells`") >= 10
    assert "ReplicatedAggregatingMergeTree" in result.stdout


@pytest.mark.parametrize("bad", ["db; DROP TABLE x", "a-b", "1abc", "x`y"])
def test_identifiers_are_validated(bad):
    with pytest.raises(ValueError):
        SchemaOptions(database=bad)
    with pytest.raises(ValueError):
        SchemaOptions(cluster=bad)


def test_store_password_never_reaches_output(tmp_path):
    from shellspan_testing.sinkproc import free_port

    dsn = f"http://shellspan:hunter2-secret@127.0.0.1:{free_port()}/audit"
    proc = SinkProcess(tmp_path, store=dsn)
    with pytest.raises(RuntimeError) as err:
        proc.start(timeout=60)
    output = str(err.value)
    assert "cannot start" in output and "127.0.0.1" in output
    assert "hunter2-secret" not in output


@pytest.mark.slow
def test_a_version_1_store_upgrades_and_its_sessions_show_their_own_identity(tmp_path):
    """A store made by version 1, where max() over all spans let a later span of another
    identity (sorting after the owner's) take over a session, upgrades on the sink's start: the
    session shows the identity of its own first span, its owner's commands, and the other
    identity's command apart."""
    from shellspan import semconv
    from shellspan_sink import rowbinary
    from shellspan_sink.store import Store
    from shellspan_testing.otlp_builders import Command, SessionSpec, request_for, session_spans

    dsn = f"chdb://{tmp_path / 'store'}"
    store = Store(dsn)
    for statement in (HERE / "schema_v1" / "single.sql").read_text().split(";\n\n"):
        store.command(statement.strip().rstrip(";"))
    store.command("INSERT INTO shellspan.shellspan_migrations (version, name) VALUES (1, 'initial schema')")
    owner = SessionSpec(user="victim-v1", commands=[Command("ls"), Command("make")])
    intruder = SessionSpec(user="zed-v1", trace_id=owner.trace_id, ended=False,
                           start_ns=owner.start_ns + 10**9, commands=[Command("rm -rf /srv")])
    for spec, sub in ((owner, "alice"), (intruder, "zed")):
        body = request_for(session_spans(spec)).SerializeToString()
        chunks = rowbinary.encode_request(
            body, {semconv.ENDUSER_ID: sub, semconv.AUTH_VERIFIED: "true"}, 128, 16384)[0]
        store.insert_rowbinary("otel_traces", rowbinary.COLUMNS, b"".join(c[1] for c in chunks))
    flipped = store.query("SELECT max(user_name), max(enduser_id) FROM shellspan.shell_sessions "
                          "GROUP BY session_id").rows
    assert flipped == [("zed-v1", "zed")], "version 1 showed the later identity"
    store.close()

    sink = SinkProcess(tmp_path / "sink", store=dsn).start()
    try:
        assert "applied schema migrations [2, " in sink.log()
        found = sink.session(owner.session_id)
        s = found["session"]
        assert (s["user_name"], s["enduser_id"], s["verified"]) == ("victim-v1", "alice", True)
        assert s["owner"]["enduser_id"] == "alice"
        assert [c["command"] for c in found["commands"]] == ["ls", "make"]
        assert [c["command"] for c in found["foreign_commands"]] == ["rm -rf /srv"]
        assert [x["session_id"] for x in sink.sessions(user="victim-v1")] == [owner.session_id]
    finally:
        sink.stop()
