"""terraform fmt, and every argument and block checked against the provider schema excerpt (no provider here)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from infra_support import (
    SCHEMA_PATH,
    TF_DIR,
    check_schema,
    copy_config,
    load_schema,
    parse_dir,
    terraform_bin,
    terraform_env,
)


def _fmt_check(directory: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [terraform_bin(), "fmt", "-check", "-recursive", "-diff", "-no-color", str(directory)],
        capture_output=True,
        text=True,
        env=terraform_env(tmp),
        timeout=60,
        check=False,
    )


def test_terraform_fmt_is_clean(tmp_path: Path) -> None:
    result = _fmt_check(TF_DIR, tmp_path)
    assert result.returncode == 0, f"terraform fmt -check found unformatted files:\n{result.stdout}{result.stderr}"
    assert "Warning" not in result.stderr


def test_backend_example_is_formatted_hcl(tmp_path: Path) -> None:
    (tmp_path / "example").mkdir()
    shutil.copy(TF_DIR / "backend.tf.example", tmp_path / "example" / "backend.tf")
    result = _fmt_check(tmp_path / "example", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    backend = parse_dir(tmp_path / "example")["backend.tf"]["terraform"][0]["backend"][0]
    assert '"gcs"' in backend


def test_fmt_check_catches_misformatting(tmp_path: Path) -> None:
    config = copy_config(tmp_path)
    text = (config / "apis.tf").read_text()
    (config / "apis.tf").write_text(text.replace("disable_on_destroy = false", "disable_on_destroy    =    false"))
    assert _fmt_check(config, tmp_path).returncode != 0


def test_schema_excerpt_records_its_provenance() -> None:
    schema = load_schema()
    assert schema["ref"] == "v7.45.0"
    assert len(schema["commit"]) == 40
    assert schema["commit"] in (SCHEMA_PATH.parent / "PROVENANCE.md").read_text()


def test_every_argument_and_block_is_in_the_provider_schema() -> None:
    report = check_schema(parse_dir(), load_schema())
    # Resources outside the excerpt are reported, never passed silently.
    assert not report.not_in_excerpt, "not in the schema excerpt (extend it):\n" + "\n".join(report.not_in_excerpt)
    assert not report.problems, "\n".join(report.problems)
    assert report.checked >= 30


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        (
            "run.tf",
            "max_instance_request_concurrency",
            "max_instance_request_concurency",
            "unknown argument 'max_instance_request_concurency'",
        ),
        ("pubsub.tf", "    oidc_token {", "    oidc_tokens {", "unknown block 'oidc_tokens'"),
        ("storage.tf", '  payload_format = "JSON_API_V1"\n', "", "required argument 'payload_format' is missing"),
        ("run.tf", "        for_each = local.service_env[each.key]", "        for_each = {}", None),
        ("storage.tf", 'dynamic "lifecycle_rule"', 'dynamic "lifecycle_rules"', "dynamic block 'lifecycle_rules'"),
        ("outputs.tf", "output", "output", None),
    ],
    ids=["misspelled-argument", "misspelled-block", "missing-required", "dynamic-ok", "misspelled-dynamic", "same"],
)
def test_schema_check_reports_mistakes(tmp_path: Path, file: str, old: str, new: str, expected: str | None) -> None:
    config = copy_config(tmp_path)
    text = (config / file).read_text()
    assert old in text, f"mutation anchor {old!r} not in {file}"
    (config / file).write_text(text.replace(old, new, 1))
    report = check_schema(parse_dir(config), load_schema())
    if expected is None:
        assert report.problems == []
    else:
        assert any(expected in problem for problem in report.problems), report.problems


def test_schema_check_reports_resources_outside_the_excerpt(tmp_path: Path) -> None:
    config = copy_config(tmp_path)
    (config / "extra.tf").write_text('resource "google_compute_network" "vpc" {\n  name = "x"\n}\n')
    report = check_schema(parse_dir(config), load_schema())
    assert report.not_in_excerpt == [
        "google_compute_network.vpc (extra.tf): resource type google_compute_network is not in the schema excerpt"
    ]


def test_output_only_attribute_cannot_be_set(tmp_path: Path) -> None:
    config = copy_config(tmp_path)
    text = (config / "artifact_registry.tf").read_text()
    (config / "artifact_registry.tf").write_text(
        text.replace('format        = "DOCKER"', 'format = "DOCKER"\n  registry_uri = "x"')
    )
    report = check_schema(parse_dir(config), load_schema())
    assert any("'registry_uri' is an output-only attribute" in p for p in report.problems), report.problems


def test_schema_excerpt_is_valid_json_with_both_sections() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    assert {"resources", "data_sources"} <= set(schema)
