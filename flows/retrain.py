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

from flows.pipeline import dvc_transfer, sr_pipeline, stage_task
from sr.package import SELECTION_FILE
from sr.publish import exists_s3, latest_version, publish, version_uri
from sr.storage import StorageError, read_s3_bytes


class RetrainParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    publish_prefix: str  # s3://bucket/models
    package_name: str = "sr-onestep"
    repo: str = "."
    placement: str | None = None  # a placement table (flows/placement.py): which stages run on which work pool
    refresh_stage: str = "download"  # forced, since new objects under an s3:// source change no dvc dependency
    dist_dir: str = "dist"
    push: bool = True  # `dvc push` before publishing, so the published model's lineage is in the DVC remote
    s3_retries: int = 3
    s3_retry_delay_s: float = 10.0


def find_package(dist: Path, name: str) -> tuple[Path, str]:
    """The one `dist/<name>-<version>.tar.gz` the package stage wrote, and its version."""
    found = sorted(dist.glob(f"{name}-*.tar.gz"))
    if len(found) != 1:
        raise FileNotFoundError(f"{dist}: expected one {name}-<version>.tar.gz, found {[p.name for p in found]}")
    return found[0], found[0].name[len(name) + 1 : -len(".tar.gz")]


@task(cache_policy=NO_CACHE)
def published_selection(params: RetrainParams) -> tuple[str, dict | None] | None:
    """(version, selection.json) of what `latest` names; None when nothing is published, the record None when the
    version has none."""
    version = latest_version(params.publish_prefix, params.package_name, retries=0)
    if version is None:
        return None
    uri = version_uri(params.publish_prefix, params.package_name, version, SELECTION_FILE)
    if not exists_s3(uri, retries=0):
        return version, None
    try:
        return version, json.loads(read_s3_bytes(uri, retries=0))
    except ValueError as exc:  # an unreadable record must not block every later release
        get_run_logger().warning(f"{uri}: cannot compare with the published model: {exc}")
        return version, None


def s3_trouble(task, task_run, state) -> bool:
    """Prefect retry condition: retry an S3 outage, never a package conflict or a bad metrics file."""
    return isinstance(state.data, StorageError)


def gate(candidate: dict, current: tuple[str, dict | None] | None) -> tuple[bool, str]:
    """Promote only a strict improvement of the package's own rule (selection.json); returns (promote, why)."""
    what = f"{candidate['student']} {candidate['metric']} on {candidate['dataset']} = {candidate['value']:.6g}"
    if current is None:
        return True, f"nothing published yet; candidate {what}"
    version, published = current
    if published is None:
        return True, f"published {version} has no {SELECTION_FILE} to compare; candidate {what}"
    if (published["dataset"], published["metric"]) != (candidate["dataset"], candidate["metric"]):
        return True, (f"published {version} was chosen by {published['metric']} on {published['dataset']}, not "
                      f"comparable; candidate {what}")
    value = published["value"]
    better = candidate["value"] < value if candidate["lower_is_better"] else candidate["value"] > value
    verdict = "better than" if better else "not better than"
    return better, f"candidate {what} is {verdict} published {version} ({published['student']}) = {value:.6g}"


@flow(name="sr-retrain")
def retrain(params: RetrainParams) -> str:
    """Refresh sources, rebuild, gate on the metric, push and publish; returns what happened in one line."""
    log = get_run_logger()
    repo = Path(params.repo).resolve()
    stage_task(params.refresh_stage)(params.refresh_stage, str(repo), force=True)
    sr_pipeline(repo=str(repo), placement=params.placement)
    tarball, version = find_package(repo / params.dist_dir, params.package_name)
    selection = repo / params.dist_dir / f"{params.package_name}-{version}" / SELECTION_FILE
    s3_options = {"retries": params.s3_retries, "retry_delay_seconds": params.s3_retry_delay_s}
    s3_options["retry_condition_fn"] = s3_trouble
    promote, why = gate(json.loads(selection.read_text()), published_selection.with_options(**s3_options)(params))
    if not promote:
        outcome = f"kept the published model: {why}"
    else:
        if params.push:
            dvc_transfer("push", str(repo))
        publish_task = task(publish, cache_policy=NO_CACHE, name="publish", **s3_options)
        publish_task(tarball, params.publish_prefix, params.package_name, version, selection, retries=0)
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
