"""The bus schemas through a Confluent Schema Registry client, against the real API server.

The client is ``python-schema-registry-client`` (a maintained registry
client over HTTP), pointed at ``http://<api>/registry`` as a Spark, Flink or
Kafka Connect job would be.
"""
from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
import uvicorn
from schema_registry.client import SchemaRegistryClient

from infra.api.app import create_app
from schemas.codec import default_registry
from schemas.events import encode_event
from schemas.subjects import schema_id
from tests.test_domain_schemas import ENVELOPES


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def registry_url(make_system):
    system = make_system("sqlite", name="registry")
    server = uvicorn.Server(uvicorn.Config(create_app(system), host="127.0.0.1", port=_free_port(),
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.config.port}/registry"
    server.should_exit = True
    thread.join(10)


def test_a_registry_client_resolves_every_schema_by_subject_version_and_id(registry_url):
    client = SchemaRegistryClient(url=registry_url)
    registry = default_registry()
    assert sorted(client.get_subjects()) == registry.names()
    for name in registry.names():
        assert client.get_versions(name) == registry.versions(name)
        for version in registry.versions(name):
            entry = registry.entry(name, version)
            got = client.get_schema(name, version)
            assert got.version == version and got.schema_id == schema_id(entry.fingerprint)
            assert got.schema.raw_schema == entry.raw  # the .avsc as written, docs included
            assert client.get_by_id(got.schema_id).name == name
        latest = client.get_schema(name, "latest")
        assert latest.version == registry.latest_version(name)


def test_the_id_of_a_message_follows_from_its_single_object_fingerprint(registry_url):
    """A consumer reads the 8 fingerprint bytes after C3 01 and asks the registry for that id."""
    client = SchemaRegistryClient(url=registry_url)
    message = encode_event(ENVELOPES[0])
    assert message[:2] == b"\xc3\x01"
    schema = client.get_by_id(schema_id(message[2:10]))
    assert schema is not None and schema.name == default_registry().entry_by_fingerprint(message[2:10]).name


def test_unknown_subjects_versions_and_ids_answer_the_registry_error_codes(registry_url):
    with httpx.Client() as http:
        missing = http.get(f"{registry_url}/subjects/vip.domain.Nothing/versions")
        assert missing.status_code == 404 and missing.json()["error_code"] == 40401
        version = http.get(f"{registry_url}/subjects/vip.domain.OrderPaid/versions/99")
        assert version.status_code == 404 and version.json()["error_code"] == 40402
        schema = http.get(f"{registry_url}/schemas/ids/1")
        assert schema.status_code == 404 and schema.json()["error_code"] == 40403
        refused = http.post(f"{registry_url}/subjects/vip.domain.OrderPaid/versions",
                            json={"schema": "{\"type\": \"string\"}"})
        assert refused.status_code == 405  # read-only: nothing is registered here
        assert http.get(f"{registry_url}/config").json() == {"compatibilityLevel": "FULL_TRANSITIVE"}
