"""The directory where gunicorn's workers keep their Prometheus metrics.

In prometheus_client's multiprocess mode each worker writes its values to files of
its own in `PROMETHEUS_MULTIPROC_DIR`, and a scrape, served by any worker, sums
every file there. Each worker's prometheus_client reads the variable when it is
first imported, so the master sets it before any worker starts:

- set by the operator: that directory is used; the `*.db` files an earlier run
  left there are removed first, or their counts would be added in forever;
- otherwise: a new temporary directory of this master's own, removed at its exit.

When a worker dies its live gauges' files are removed (`sluice_active_streams`
then counts only the streams of workers that are alive); its counters and
histograms stay, so totals never go down while the server runs.

The master must not import prometheus_client before the variable is set: its
workers are forked from it and would inherit a single-process prometheus_client.
So nothing here imports it at module level.
"""
from __future__ import annotations

import glob
import os
import shutil
import tempfile
from collections.abc import MutableMapping

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
# The temporary directory that this master (or the one it re-executed from) created.
_OWN_DIR = "SLUICE_PROMETHEUS_OWN_DIR"


def prepare_metrics_dir(environ: MutableMapping[str, str]) -> str:
    """An empty directory for this server's workers' metrics, named in `environ`
    (the master's `os.environ`, which its workers inherit)."""
    given = environ.get(MULTIPROC_DIR, "").strip()
    if given and given != environ.get(_OWN_DIR):
        try:
            os.makedirs(given, exist_ok=True)
            for path in glob.glob(os.path.join(given, "*.db")):
                os.remove(path)
        except OSError as exc:
            raise SystemExit(f"sluice: {MULTIPROC_DIR}={given} cannot be used: "
                             f"{exc.strerror}") from None
        environ[MULTIPROC_DIR] = given
        return given
    # A master started by an upgrading one (USR2) inherits that one's directory, which
    # the old master removes when it exits: this one makes its own.
    path = tempfile.mkdtemp(prefix="sluice-prometheus-")
    environ[MULTIPROC_DIR] = environ[_OWN_DIR] = path
    return path


def forget_worker(pid: int, environ: MutableMapping[str, str]) -> None:
    """Drop a dead worker's share of the live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, environ[MULTIPROC_DIR])


def remove_own_metrics_dir(environ: MutableMapping[str, str]) -> None:
    """Remove the directory if this master created it (never an operator's)."""
    path = environ.get(_OWN_DIR)
    if path and environ.get(MULTIPROC_DIR) == path:
        shutil.rmtree(path, ignore_errors=True)
