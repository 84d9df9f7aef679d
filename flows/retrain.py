"""Scheduled retraining: refresh the sources, rebuild what changed, and publish the new model only if it is better.

python -m flows.retrain --cron "0 3 * * *" [--params retrain.json]    # serve: one run at a time, on a schedule
"""

# No `from __future__ import annotations`: a served run of `python -m flows.retrain` validates `params` against
# the flow's signature, and a string annotation there does not resolve to RetrainParams (pydantic "not fully defined").
import argparse
import json
import os
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from flows.artifacts import exists_s3, latest_version, publish, version_uri
from flows.pipeline import dvc_transfer, sr_pipeline, stage_task
from sr.storage import StorageError, read_s3_bytes


class RetrainParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    publish_prefix: str  # s3://bucket/models
    package_name: str = "sr-onestep"
    repo: str = "."
    metrics_path: str = "metrics/eval.json"  # eval.json or a package's model-card json, relative to repo
    method: str = "sinsr"  # the packaged student's key in the metrics json
    dataset: str | None = None  # set when the metrics are nested per dataset: {method: {dataset: {metric: v}}}
    metric: str = "lpips"
    lower_is_better: bool = True
    refresh_stage: str = "download"  # forced, since new objects under an s3:// source change no dvc dependency
    dist_dir: str = "dist"
    push: bool = True  # `dvc push` before publishing, so the published model's lineage is in the DVC remote
    s3_retries: int = 3
    s3_retry_delay_s: float = 10.0


def metric_value(metrics: dict, params: RetrainParams, where: str) -> float:
    keys = [params.method, *([params.dataset] if params.dataset else []), params.metric]
    value = metrics
    for depth, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            raise KeyError(f"{where}: no key {'/'.join(keys[: depth + 1])!r}")
        value = value[key]
    return float(value)


def find_package(dist: Path, name: str) -> tuple[Path, str]:
    """The one `dist/<name>-<version>.tar.gz` the package stage wrote, and its version."""
    found = sorted(dist.glob(f"{name}-*.tar.gz"))
    if len(found) != 1:
        raise FileNotFoundError(f"{dist}: expected one {name}-<version>.tar.gz, found {[p.name for p in found]}")
    return found[0], found[0].name[len(name) + 1 : -len(".tar.gz")]


@task(cache_policy=NO_CACHE)
def published_metric(params: RetrainParams) -> tuple[str, float | None] | None:
    """(version, metric) of what `latest` names; None when nothing is published, metric None when it has none."""
    version = latest_version(params.publish_prefix, params.package_name, retries=0)
    if version is None:
        return None
    uri = version_uri(params.publish_prefix, params.package_name, version, "metrics.json")
    if not exists_s3(uri, retries=0):
        return version, None
    try:
        return version, metric_value(json.loads(read_s3_bytes(uri, retries=0)), params, uri)
    except (KeyError, ValueError) as exc:  # a renamed metric must not block every later release
        get_run_logger().warning(f"cannot compare with the published model: {exc}")
        return version, None


def s3_trouble(task, task_run, state) -> bool:
    """Prefect retry condition: retry an S3 outage, never a package conflict or a bad metrics file."""
    return isinstance(state.data, StorageError)


def gate(candidate: float, current: tuple[str, float | None] | None, params: RetrainParams) -> tuple[bool, str]:
    """Promote only a strict improvement; returns (promote, why)."""
    name = f"{params.metric} ({'lower' if params.lower_is_better else 'higher'} is better)"
    if current is None:
        return True, f"nothing published yet; candidate {name} = {candidate:.6g}"
    version, value = current
    if value is None:
        return True, f"published {version} has no {params.metric} to compare; candidate = {candidate:.6g}"
    better = candidate < value if params.lower_is_better else candidate > value
    verdict = "better than" if better else "not better than"
    return better, f"candidate {name} = {candidate:.6g} is {verdict} published {version} = {value:.6g}"


@flow(name="sr-retrain")
def retrain(params: RetrainParams) -> str:
    """Refresh sources, rebuild, gate on the metric, push and publish; returns what happened in one line."""
    log = get_run_logger()
    repo = Path(params.repo).resolve()
    stage_task(params.refresh_stage)(params.refresh_stage, str(repo), force=True)
    sr_pipeline(repo=str(repo))
    metrics_file = repo / params.metrics_path
    candidate = metric_value(json.loads(metrics_file.read_text()), params, str(metrics_file))
    tarball, version = find_package(repo / params.dist_dir, params.package_name)
    s3_options = {"retries": params.s3_retries, "retry_delay_seconds": params.s3_retry_delay_s}
    s3_options["retry_condition_fn"] = s3_trouble
    promote, why = gate(candidate, published_metric.with_options(**s3_options)(params), params)
    if not promote:
        outcome = f"kept the published model: {why}"
    else:
        if params.push:
            dvc_transfer("push", str(repo))
        publish_task = task(publish, cache_policy=NO_CACHE, name="publish", **s3_options)
        publish_task(tarball, params.publish_prefix, params.package_name, version, metrics_file, retries=0)
        outcome = f"published {params.package_name}@{version}: {why}"
    log.info(outcome)
    create_markdown_artifact(markdown=f"# Retrain\n\n{outcome}\n", key="sr-retrain", description="promotion gate")
    return outcome


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.retrain", description="Serve the retrain flow on a cron.")
    parser.add_argument("--cron", default="0 3 * * *")
    parser.add_argument("--params", type=Path, help="json file of RetrainParams fields")
    parser.add_argument("--prefix", default=os.environ.get("SR_MODELS_PREFIX"), help="default: $SR_MODELS_PREFIX")
    args = parser.parse_args(argv)
    fields = json.loads(args.params.read_text()) if args.params else {}
    if args.prefix:
        fields["publish_prefix"] = args.prefix
    params = RetrainParams(**fields)
    # global_limit: the deployment's own concurrency limit, so a slow run and the next tick never overlap.
    retrain.serve(
        name="sr-retrain", cron=args.cron, parameters={"params": params.model_dump()}, global_limit=1, limit=1
    )


if __name__ == "__main__":
    main()
