"""The GitHub workflows, checked offline: GitHub's schema, a security audit, and what the review loop runs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
DEPENDABOT = ROOT / ".github" / "dependabot.yml"
BIN = Path(sys.executable).parent


def _load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def _run_lines(workflow: dict, job: str) -> str:
    return "\n".join(step.get("run", "") for step in workflow["jobs"][job]["steps"])


def _serious_findings(path: Path) -> list[str]:
    """zizmor's medium and high findings, as `audit: file`."""
    done = subprocess.run([BIN / "zizmor", "--offline", "--format", "json", path], capture_output=True, text=True)
    assert done.stdout, done.stderr
    return [
        f"{f['ident']}: {f['locations'][0]['symbolic']['key']['Local']['verbatim_path']}"
        for f in json.loads(done.stdout)
        if f["determinations"]["severity"] in ("Medium", "High")
    ]


@pytest.mark.parametrize("name", ["ci.yaml", "cml.yaml"])
def test_workflow_matches_githubs_schema(name):
    done = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", WORKFLOWS / name],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_schema_check_rejects_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("on: push\njobs:\n  test:\n    steps:\n      - run: echo no runs-on\n")
    done = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", broken],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0


def _dependabot_schema_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.dependabot", path], capture_output=True, text=True
    )


def test_dependabot_config_matches_its_schema_and_updates_pip_and_actions():
    done = _dependabot_schema_check(DEPENDABOT)
    assert done.returncode == 0, done.stdout + done.stderr
    updates = yaml.safe_load(DEPENDABOT.read_text())["updates"]
    assert {update["package-ecosystem"] for update in updates} == {"pip", "github-actions"}


def test_dependabot_schema_check_rejects_an_update_without_a_schedule(tmp_path):
    broken = tmp_path / "dependabot.yml"
    broken.write_text("version: 2\nupdates:\n  - package-ecosystem: pip\n    directory: /\n")
    assert _dependabot_schema_check(broken).returncode != 0


def test_dependabot_config_has_no_medium_or_high_security_findings():
    assert _serious_findings(DEPENDABOT) == []


def test_workflows_have_no_medium_or_high_security_findings():
    assert _serious_findings(WORKFLOWS) == []


def test_audit_catches_a_script_injection(tmp_path):
    unsafe = tmp_path / ".github" / "workflows" / "unsafe.yaml"
    unsafe.parent.mkdir(parents=True)
    unsafe.write_text(
        "on: pull_request_target\npermissions: {}\njobs:\n  greet:\n    runs-on: ubuntu-latest\n    steps:\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
    )
    assert any(f.startswith("template-injection") for f in _serious_findings(unsafe.parent))


def test_ci_runs_the_readme_test_command_on_push_and_pull_request():
    ci = _load("ci.yaml")
    assert {"push", "pull_request"} <= set(ci[True])  # YAML 1.1 reads the key `on` as True
    assert "bash .ci/run" in _run_lines(ci, "test")
    assert "ruff check" in _run_lines(ci, "lint")
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("bash scripts/setup.sh && .venv/bin/python -m pytest")


def test_cml_reproduces_and_comments_on_pull_requests_with_full_history():
    cml = _load("cml.yaml")
    assert "pull_request" in cml[True]
    checkout = cml["jobs"]["report"]["steps"][0]
    assert checkout["uses"].startswith("actions/checkout@") and checkout["with"]["fetch-depth"] == 0
    script = _run_lines(cml, "report")
    order = ["dvc pull", "dvc repro", "fer report", "cml comment update --target=pr"]
    assert all(step in script for step in order)
    assert sorted(order, key=script.index) == order


# `cml runner launch` flags and, where CML 0.20.6 documents a fixed set, their values
CML_LAUNCH_FLAGS = {
    "--single": None,
    "--labels": None,
    "--cloud": {"aws", "azure", "gcp", "kubernetes"},
    "--cloud-region": None,
    "--cloud-type": None,
    "--cloud-gpu": {"nogpu", "k80", "v100", "tesla"},
    "--cloud-hdd-size": None,
}


def _docs_block_after(page: str, sentence: str) -> list[str]:
    """The command lines of the first fenced block after `sentence` in docs/<page>."""
    text = (ROOT / "docs" / page).read_text()
    block = text[text.index(sentence) :].split("```bash\n", 1)[1].split("```", 1)[0]
    return block.strip().splitlines()


def test_cml_gpu_job_launches_a_valid_runner_and_runs_the_docs_gpu_sweep():
    cml = _load("cml.yaml")
    launch = _run_lines(cml, "launch-gpu-runner")
    command = launch[launch.index("cml runner launch") :].replace("\\\n", " ").split("\n")[0]
    for flag in command.split()[3:]:
        name, _, value = flag.partition("=")
        assert name in CML_LAUNCH_FLAGS, name
        assert CML_LAUNCH_FLAGS[name] is None or value in CML_LAUNCH_FLAGS[name], flag
    gpu = cml["jobs"]["gpu"]
    assert gpu["needs"] == "launch-gpu-runner" and "cml-gpu" in gpu["runs-on"]
    sweep = _docs_block_after("tuning.md", "A GPU sweep on real FER2013")
    assert "fer profile params-fer2013-gpu.yaml" in sweep and "dvc queue start -j 1" in sweep
    step = next(step for step in gpu["steps"] if step.get("name") == "the GPU sweep of docs/tuning.md")
    assert step["run"].strip().splitlines() == sweep  # the same commands, in the same order


def test_code_passes_ruff():
    done = subprocess.run([BIN / "ruff", "check", ROOT], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
