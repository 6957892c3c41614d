"""retrievals.yaml: jobs load with their defaults; every problem names the file, job and field."""

from __future__ import annotations

import pytest

from connectors.jobfile import RetrievalJob, load_jobs
from ingest.errors import ConfigError

SOURCE = "s3://b/config/retrievals.yaml"

GOOD = """
retrievals:
  - name: acme-orders
    connector_id: c-0123456789abcdef0
    remote_directory: /outbox
    pattern: "*.csv"
    destination: inbound/acme/orders
    after_success: {move_to: /outbox/archive}
  - name: returns
    connector_id: c-0123456789abcdef0
    remote_directory: /returns
    destination: /inbound/acme/returns/
    after_success: delete
  - {name: " plain ", connector_id: c-1, remote_directory: /x, destination: inbound/a/b}
"""


def job(**options: str) -> str:
    """A jobs file with one job named x, with ``options`` over its valid settings."""
    entry = {"name": "x", "connector_id": "c-1", "remote_directory": "/o"}
    entry |= {"destination": "inbound/a/b"} | options
    body = ", ".join(f"{k}: {v}" for k, v in entry.items() if v != "<absent>")
    return f"retrievals:\n  - {{{body}}}\n"


def test_jobs_load_with_their_defaults():
    assert load_jobs(GOOD, SOURCE) == [
        RetrievalJob(
            name="acme-orders",
            connector_id="c-0123456789abcdef0",
            remote_directory="/outbox",
            destination="inbound/acme/orders",
            pattern="*.csv",
            after_success="move",
            move_to="/outbox/archive",
        ),
        RetrievalJob(
            name="returns",
            connector_id="c-0123456789abcdef0",
            remote_directory="/returns",
            destination="inbound/acme/returns",
            after_success="delete",
        ),
        RetrievalJob(
            name="plain", connector_id="c-1", remote_directory="/x", destination="inbound/a/b"
        ),
    ]


def test_no_retrievals_list_is_an_error():
    for text in ["", "retrievals: 3", "jobs: []", "[1]"]:
        with pytest.raises(ConfigError, match="top-level 'retrievals:' list") as info:
            load_jobs(text, SOURCE)
        assert info.value.source == SOURCE
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_jobs("retrievals: [", SOURCE)
    assert load_jobs("retrievals: []", SOURCE) == []


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        (job(destination="<absent>"), "destination", "'destination' is required"),
        (job(destination="tmp/b"), "destination", "under inbound/"),
        (job(connector_id="''"), "connector_id", "'connector_id' must be non-empty"),
        (job(remote_directory="5"), "remote_directory", "'remote_directory' must be a string"),
        (job(pattern="[1]"), "pattern", "'pattern' must be a string"),
        (job(after_success="shred"), "after_success", "must be leave, delete or {move_to: DIR}"),
        (job(after_success="{move: /a}"), "after_success", "must be leave, delete or"),
        (job(after_success="{move_to: ''}"), "after_success", "must be leave, delete or"),
        (job(patern="'*.csv'"), "patern", "unknown key 'patern' (known keys: name, "),
    ],
)
def test_a_bad_job_names_the_file_the_job_and_the_field(text, field, message):
    with pytest.raises(ConfigError) as info:
        load_jobs(text, SOURCE)
    err = info.value
    assert (err.source, err.job, err.feed, err.field) == (SOURCE, "x", None, field)
    assert str(err).startswith(f"file {SOURCE}, job 'x', field {field!r}: ")
    assert "feed 'x'" not in str(err)  # a job is a job (this used to say feed 'x')
    assert message in err.message
    assert err.errors == [err]


def test_every_problem_of_a_jobs_file_is_reported():
    text = """
retrievals:
  - {name: x, connector_id: c-1, remote_directory: /o, destination: inbound/a/b,
     after_success: shred}
  - {name: y, connector_id: '', remote_directory: /o, destination: tmp/b, patern: '*.csv'}
  - {connector_id: c, remote_directory: /o, destination: inbound/a/b}
  - 7
  - {name: x, connector_id: c-1, remote_directory: /o, destination: inbound/a/b,
     after_success: {move: /a}}
"""
    with pytest.raises(ConfigError) as info:
        load_jobs(text, SOURCE)
    err = info.value
    assert [(e.job, e.field) for e in err.errors] == [
        ("x", "after_success"),
        ("y", "connector_id"),
        ("y", "destination"),
        ("y", "patern"),
        ("#3", "name"),
        ("#4", None),
        ("x", "after_success"),
        ("x", "name"),
    ]
    assert all(e.source == SOURCE for e in err.errors)
    lines = str(err).splitlines()
    assert lines[0] == f"file {SOURCE}: 8 problems:"
    assert lines[6] == "  job '#4': each retrieval must be a mapping, got 7"
    assert lines[8] == "  job 'x', field 'name': job names must be unique (jobs #1 and #5)"
