"""Prefect flows: the only place that runs `dvc`."""
