"""The pytest plugin, exercised on generated test suites with pytester."""

from __future__ import annotations

import re

# httpx maps httpcore's exceptions through a table it fills on first use. pytester drops the
# modules an in-process run imported; if httpcore were first imported inside one, later tests
# would see a fresh httpcore whose exceptions that table no longer recognises.
import httpcore  # noqa: F401
import pytest

pytest_plugins = ["pytester"]

_CONFTEST = """
from kubernaut_audit.emulator import make_event

def emit(client, cid, *types):
    client.create_audit_events([make_event(cid, t) for t in types])
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(_CONFTEST)
    pytester.makeini("[pytest]\naudit_correlation_prefix = svc\n")
    return pytester


def test_correlation_ids_are_unique_and_name_the_test(suite: pytest.Pytester) -> None:
    """Each test gets its own id: prefix, worker, test-name slug, uuid fragment."""
    suite.makepyfile(
        """
        seen = []
        def test_one(correlation_id):
            seen.append(correlation_id)
            assert correlation_id.startswith("svc-main-test-one-")
        def test_two(correlation_id):
            seen.append(correlation_id)
            assert len(correlation_id) <= 255
            assert correlation_id != seen[0]
        """
    )
    suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_audit_fixture_waits_against_the_embedded_emulator(suite: pytest.Pytester) -> None:
    """--audit-emulator serves a Data Storage the audit helper waits on."""
    suite.makepyfile(
        """
        from conftest import emit
        def test_wait(audit, audit_client):
            emit(audit_client, audit.correlation_id, "a.b.c", "a.b.d")
            got = audit.wait(event_types=["a.b.c", "a.b.d"])
            assert len(got) == 2
            assert len(audit.events()) == 2
            audit.assert_none(event_type="x.y.z", during=0.1)
        """
    )
    suite.runpytest("-p", "no:cacheprovider", "--audit-emulator").assert_outcomes(passed=1)


def test_a_failed_wait_is_a_failure_with_an_audit_report_section(suite: pytest.Pytester) -> None:
    """A timeout is reported as FAILED (not ERROR) with the events seen and the poll timeline."""
    suite.makepyfile(
        """
        import pytest
        from conftest import emit
        @pytest.mark.audit(flush_interval=0.1, timeout=0.4)
        def test_missing(audit, audit_client):
            emit(audit_client, audit.correlation_id, "gateway.crd.failed")
            audit.wait(event_type="gateway.crd.created")
        """
    )
    result = suite.runpytest("-p", "no:cacheprovider", "--audit-emulator")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "AuditWaitTimeout" in out
    assert "flush interval 0.1s assumed" in out
    assert "kubernaut-audit" in out
    assert re.search(r"events seen \(1\):\n\s+\S+\s+gateway\.crd\.failed", out)
    assert "poll timeline" in out


def test_other_failures_also_list_the_audit_events(suite: pytest.Pytester) -> None:
    """A plain assertion failure in a test using `audit` still gets the audit section."""
    suite.makepyfile(
        """
        from conftest import emit
        def test_fails(audit, audit_client):
            emit(audit_client, audit.correlation_id, "a.b.c")
            audit.wait()
            assert False, "the code under test is wrong"
        """
    )
    result = suite.runpytest("-p", "no:cacheprovider", "--audit-emulator")
    result.assert_outcomes(failed=1)
    assert "events seen (1)" in result.stdout.str()


def test_marker_rejects_unknown_settings(suite: pytest.Pytester) -> None:
    """@pytest.mark.audit with an unknown keyword is a usage error, not a silent no-op."""
    suite.makepyfile(
        """
        import pytest
        @pytest.mark.audit(flush=1)
        def test_x(audit):
            pass
        """
    )
    result = suite.runpytest("-p", "no:cacheprovider", "--audit-emulator")
    result.assert_outcomes(errors=1)
    assert "flush_interval= and timeout= only" in result.stdout.str()


def test_missing_url_fails_with_a_clear_message(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without any address the client fixtures fail naming every way to configure one."""
    monkeypatch.delenv("DATA_STORAGE_URL", raising=False)
    suite.makepyfile("def test_x(audit_client):\n    pass\n")
    result = suite.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    assert "--data-storage-url" in result.stdout.str()


def test_url_option_and_ini_configure_the_clients(suite: pytest.Pytester) -> None:
    """--data-storage-url wins over the ini value; the flush interval option reaches clients."""
    suite.makeini("[pytest]\ndata_storage_url = http://from-ini:1\naudit_flush_interval = 0.5\n")
    suite.makepyfile(
        """
        def test_x(audit_client, data_storage_url):
            assert data_storage_url == "http://from-option:2"
            assert audit_client.base_url == "http://from-option:2"
            assert audit_client.flush_interval == 0.5
        """
    )
    result = suite.runpytest("-p", "no:cacheprovider", "--data-storage-url", "http://from-option:2")
    result.assert_outcomes(passed=1)


def test_async_client_fixture_under_anyio(suite: pytest.Pytester) -> None:
    """async_audit_client works in anyio tests under asyncio and trio."""
    suite.makepyfile(
        """
        import pytest
        from kubernaut_audit.emulator import make_event

        @pytest.fixture(params=["asyncio", "trio"])
        def anyio_backend(request):
            return request.param

        @pytest.mark.anyio
        async def test_x(async_audit_client, correlation_id):
            await async_audit_client.create_audit_event(make_event(correlation_id))
            got = await async_audit_client.wait_for_audit_events(correlation_id)
            assert len(got) == 1
        """
    )
    suite.runpytest("-p", "no:cacheprovider", "--audit-emulator").assert_outcomes(passed=2)


def test_audit_emulator_fixture_gives_a_private_server(suite: pytest.Pytester) -> None:
    """audit_emulator serves its own emulator with a client on it."""
    suite.makepyfile(
        """
        from conftest import emit
        def test_x(audit_emulator, correlation_id):
            emit(audit_emulator.client, correlation_id, "a.b.c")
            assert audit_emulator.url.startswith("http://127.0.0.1:")
            assert len(audit_emulator.client.wait_for_audit_events(correlation_id)) == 1
            assert audit_emulator.emulator.stats.requests >= 2
        """
    )
    suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


_SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "one payload", "version": "1"},
    "paths": {},
    "components": {
        "schemas": {
            "AuditEventRequest": {
                "type": "object",
                "properties": {
                    "event_data": {
                        "oneOf": [{"$ref": "#/components/schemas/Signal"}],
                        "discriminator": {
                            "propertyName": "event_type",
                            "mapping": {"gateway.signal.received": "#/components/schemas/Signal"},
                        },
                    }
                },
            },
            "Signal": {
                "type": "object",
                "required": ["event_type", "signal_name"],
                "properties": {
                    "event_type": {"type": "string", "enum": ["gateway.signal.received"]},
                    "signal_name": {"type": "string"},
                },
            },
        }
    },
}

_SPEC_TESTS = """
import pytest
from kubernaut_audit import DataStorageError
from kubernaut_audit.emulator import make_event

def check(client, cid):
    with pytest.raises(DataStorageError) as refused:
        client.create_audit_events([make_event(cid, "a.b.c")])
    assert refused.value.status_code == 400
    client.create_audit_events([make_event(cid, "gateway.signal.received")])
    assert len(client.wait_for_audit_events(cid)) == 1

def test_session_emulator(audit_client, correlation_id):
    check(audit_client, correlation_id)

def test_private_emulator(audit_emulator, correlation_id):
    check(audit_emulator.client, correlation_id)
"""


@pytest.mark.parametrize("where", ["option", "ini"])
def test_the_embedded_emulators_hold_writes_to_the_spec_given(
    suite: pytest.Pytester, where: str
) -> None:
    """--audit-emulator-spec (or ini audit_emulator_spec, relative to the ini file): the session
    emulator and audit_emulator refuse a payload outside the spec's event_data union with 400,
    as the service does, and take one inside it."""
    import json

    (suite.path / "conf" / "specs").mkdir(parents=True)
    (suite.path / "conf" / "specs" / "ds.json").write_text(json.dumps(_SPEC))
    suite.makepyfile(_SPEC_TESTS)
    args = ["-p", "no:cacheprovider", "--audit-emulator"]
    if where == "option":
        args += ["--audit-emulator-spec", "conf/specs/ds.json"]
    else:
        # An ini file elsewhere than the directory pytest runs in: the path is the ini's.
        (suite.path / "conf" / "pytest.ini").write_text(
            "[pytest]\naudit_correlation_prefix = svc\naudit_emulator_spec = specs/ds.json\n"
        )
        args += ["-c", "conf/pytest.ini", "--rootdir", str(suite.path)]
    suite.runpytest(*args).assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the spec"),
        ('{"openapi": "3.0.3", "components": {}}', "event_data"),
        ('{"openapi": "3.0.3", "components": {', "neither JSON nor YAML"),
    ],
)
def test_a_spec_that_cannot_serve_stops_the_run_before_any_test(
    suite: pytest.Pytester, content: str | None, message: str
) -> None:
    """A missing file, a spec without the event_data union, or a file that is neither JSON nor
    YAML is a usage error naming the option, before any test runs."""
    if content is not None:
        (suite.path / "ds.json").write_text(content)
    suite.makepyfile("def test_x(): pass")
    result = suite.runpytest("-p", "no:cacheprovider", "--audit-emulator-spec", "ds.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--audit-emulator-spec:*{message}*"])


def test_audit_emulator_emitter_flushes_like_a_service(suite: pytest.Pytester) -> None:
    """Events emitted through the kit's buffered writer become visible on its flush."""
    suite.makepyfile(
        """
        from kubernaut_audit.emulator import make_event
        def test_x(audit_emulator, correlation_id):
            writer = audit_emulator.emitter(flush_interval=2.0)
            writer.emit(make_event(correlation_id, "a.b.c"))
            assert audit_emulator.client.list_audit_events(correlation_id=correlation_id) == []
            got = audit_emulator.client.wait_for_audit_events(correlation_id, flush_interval=2.0)
            assert [e.event_type for e in got] == ["a.b.c"]
        """
    )
    suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_audit_emulator_emitter_offers_the_since_last_write_kind(suite: pytest.Pytester) -> None:
    """kind="since-last-write" gives the Python service's writer (one POST per event); an
    unknown kind is refused."""
    suite.makepyfile(
        """
        import pytest
        from kubernaut_audit.emitters import SinceLastWriteEmitter
        from kubernaut_audit.emulator import make_event
        def test_x(audit_emulator, correlation_id):
            writer = audit_emulator.emitter(kind="since-last-write", flush_interval=0.2)
            assert isinstance(writer, SinceLastWriteEmitter)
            writer.emit(make_event(correlation_id, "a.b.c"))
            writer.emit(make_event(correlation_id, "a.b.d"))
            got = audit_emulator.client.wait_for_audit_events(
                correlation_id, min_count=2, flush_interval=0.2
            )
            assert sorted(e.event_type for e in got) == ["a.b.c", "a.b.d"]
            assert audit_emulator.emulator.stats.by_route.get("write") == 2
            with pytest.raises(ValueError, match="kind"):
                audit_emulator.emitter(kind="grid")
        """
    )
    suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.slow
def test_parallel_workers_get_distinct_ids_and_servers(suite: pytest.Pytester) -> None:
    """Under xdist -n 2 every worker has its own emulator and worker-tagged correlation ids."""
    suite.makepyfile(
        """
        import pytest
        from conftest import emit
        @pytest.mark.parametrize("n", range(6))
        def test_x(audit, audit_client, n):
            assert "-gw" in audit.correlation_id
            emit(audit_client, audit.correlation_id, "a.b.c")
            assert len(audit.wait(count=1)) == 1
        """
    )
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--audit-emulator")
    result.assert_outcomes(passed=6)
