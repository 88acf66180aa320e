"""The deployment table: prefect.yaml is generated from it, serve and pool names never clash."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import yaml

from deployments import prefect_yaml
from deployments.table import TABLE, for_target


def test_checked_in_prefect_yaml_is_the_generated_one() -> None:
    assert prefect_yaml.PATH.read_text(encoding="utf-8") == prefect_yaml.render(), (
        "deployments/prefect.yaml is stale: run `kizuna deployments write`"
    )
    k8s = prefect_yaml.K8S_PATH.read_text(encoding="utf-8")
    assert k8s == prefect_yaml.render(kind="kubernetes"), "run `kizuna deployments write`"
    doc = yaml.safe_load(k8s)
    assert [d["work_pool"]["job_variables"]["image"] for d in doc["deployments"]] == [
        "{{ build-image.image }}"
    ] * len(doc["deployments"])
    assert doc["build"][0]["prefect_docker.deployments.steps.build_docker_image"]["dockerfile"] == (
        "deployments/Dockerfile"
    )


def test_every_entrypoint_is_an_installed_flow_with_the_named_flow_name() -> None:
    from prefect import Flow

    for d in TABLE:
        module, attr = d.entrypoint.rsplit(".", 1)
        flow = getattr(importlib.import_module(module), attr)
        assert isinstance(flow, Flow) and flow.name == d.flow_name, d
        # The workspace comes from the worker when the deployment does not pass it.
        assert flow.parameters.properties["workspace_file"].get("default") is None


def test_both_targets_have_all_five_flows_under_distinct_names() -> None:
    five = {"sync-all", "reminders", "campaigns", "daily-reports", "pipeline-report"}
    for target in ("serve", "pool"):
        assert five <= {d.name for d in for_target(target)}
    serve = {(d.flow_name, d.name_for("serve")) for d in for_target("serve")}
    pool = {(d.flow_name, d.name_for("pool")) for d in for_target("pool")}
    assert not serve & pool


def test_prefect_yaml_reads_the_workspace_on_the_worker_and_needs_no_pull_step() -> None:
    doc = yaml.safe_load(prefect_yaml.render())
    assert doc["pull"] == []
    text = prefect_yaml.render()
    assert "{{ $" not in text  # nothing filled in on the deploying machine
    assert "KIZUNA_HOME" not in text
    for d in doc["deployments"]:
        assert "workspace_file" not in d["parameters"]
        env = d["work_pool"]["job_variables"]["env"]
        assert env["KIZUNA_WAREHOUSE_SECRET"] == prefect_yaml.WAREHOUSE_SECRET


def test_pool_runs_start_kizunas_engine_command_not_prefects_supervisor() -> None:
    """A process worker given a command starts it directly, with no supervisor process
    (another interpreter, Prefect imported twice) in front of every flow run; a Kubernetes
    job's default, ``prefect flow-run execute``, starts the same supervisor in the pod."""
    doc = yaml.safe_load(prefect_yaml.render())
    for d in doc["deployments"]:
        assert d["work_pool"]["job_variables"]["command"] == prefect_yaml.ENGINE_COMMAND
    installed = Path(sys.executable).with_name(prefect_yaml.ENGINE_COMMAND)
    assert installed.exists(), "pip install -e . (the console script comes with the package)"
    k8s = yaml.safe_load(prefect_yaml.render(kind="kubernetes"))
    for d in k8s["deployments"]:
        assert d["work_pool"]["job_variables"]["command"] == prefect_yaml.ENGINE_COMMAND


def test_serve_deployments_load_as_prefect_flows_where_the_runner_loads_them() -> None:
    """`kizuna serve`'s runner loads each deployment's entrypoint in a new process: it must be
    a real Prefect flow there (the flow modules' own names are lazy, flows.ops.lazy)."""
    from prefect import Flow
    from prefect.flows import load_flow_from_entrypoint

    from deployments.serve import deployments

    made = deployments("/nowhere/kizuna.yaml", "Asia/Tokyo", {})
    assert {d.name for d in made} == {d.name_for("serve") for d in for_target("serve")}
    for d in made:
        assert d.entrypoint.startswith("flows.ops.entry."), d.entrypoint
        assert isinstance(load_flow_from_entrypoint(d.entrypoint), Flow), d.entrypoint
