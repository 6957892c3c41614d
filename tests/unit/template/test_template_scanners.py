"""template.yaml against checkov: no failed check, and every suppression says why.

checkov pins its own boto3, so it lives in its own virtual environment (``make tools``),
never in ``.venv``. A missing checkov fails these tests: a scanner that was not run passed
nothing.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "template.yaml"
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"

#: ``# checkov:skip=CKV_AWS_117:reason`` (checkov's own syntax for CloudFormation)
SKIP = re.compile(r"checkov:skip=(?P<id>[A-Z0-9_]+)(?::(?P<reason>.*))?")
#: a reason says what makes the check not apply here: a sentence, not a word
MIN_REASON_WORDS = 8


@pytest.fixture(scope="module")
def checkov() -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(f"checkov is not installed at {CHECKOV}: run `make tools`")
    # --skip-download: nothing from the vendor's platform (guidelines); the checks are local
    command = [str(CHECKOV), "-f", str(TEMPLATE), "--framework", "cloudformation"]
    proc = subprocess.run(
        [*command, "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=240,
    )
    # exit code 1 means failed checks; anything else without JSON is checkov itself failing
    try:
        report: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov gave no report (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    assert report["check_type"] == "cloudformation"
    return report


def test_checkov_reports_no_failed_check(checkov: dict[str, Any]) -> None:
    failed = [
        f"{c['check_id']} {c['check_name']}: {c['resource']} (lines {c['file_line_range']})"
        for c in checkov["results"]["failed_checks"]
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert checkov["summary"]["parsing_errors"] == 0
    # it really scanned the template: the resources and a good number of checks
    assert checkov["summary"]["resource_count"] >= 40
    assert checkov["summary"]["passed"] >= 50


def _skip_comments() -> list[tuple[int, str, str]]:
    found = []
    for number, line in enumerate(TEMPLATE.read_text().splitlines(), start=1):
        if "checkov:skip" in line:
            match = SKIP.search(line)
            assert match, f"template.yaml:{number}: unreadable checkov skip: {line.strip()}"
            found.append((number, match["id"], (match["reason"] or "").strip()))
    return found


def test_every_skip_in_the_template_gives_a_reason() -> None:
    skips = _skip_comments()
    assert skips  # the template has some, and they were found
    for number, check, reason in skips:
        assert len(reason.split()) >= MIN_REASON_WORDS, (
            f"template.yaml:{number}: skip of {check} needs a reason: {reason!r}"
        )


def test_every_skip_suppresses_a_check_that_would_fail(checkov: dict[str, Any]) -> None:
    """A skip that checkov no longer uses (a fixed or renamed check) is removed, not kept."""
    skipped = checkov["results"]["skipped_checks"]
    lines = {
        (c["check_id"], line)
        for c in skipped
        for line in range(c["file_line_range"][0], c["file_line_range"][1] + 1)
    }
    for number, check, _ in _skip_comments():
        assert (check, number) in lines, f"template.yaml:{number}: {check} skip is unused"
    for c in skipped:
        assert len(c["check_result"]["suppress_comment"].split()) >= MIN_REASON_WORDS, c
