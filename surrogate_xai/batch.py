"""Explaining a large batch in partitions, in process or on a Dask cluster.

One pure function explains a partition of rows (:func:`_explain_partition`); the client checks
the whole batch, fixes the call's seed, ships the fitted explainer to every worker once, maps
the function over the partitions and merges the partial results in input order.

Why the merged result is bit-identical to ``explainer.explain(X)``:

* the seed is resolved once, on the client, exactly as one ``explain`` call resolves it, and
  every partition is explained with that integer seed;
* the native explainers compute each row from that row, the design (a pure function of the
  seed and the sizes) and the model's outputs for that row's own calls, so which partition a
  row is in, and on which worker, changes nothing (the determinism contract of
  ``explainers/_engine``);
* the merged :class:`~surrogate_xai.Provenance` is the one an ``explain`` call would write:
  the explainer's own parameters (not the shipped copy's fixed seed) and one ``created_at``.
  How the batch was partitioned is deliberately *not* recorded in it: it cannot change a
  value, and recording it would make a distributed result differ from the in-process one.

Distribution uses ``dask.distributed`` (the ``dask`` extra); nothing here schedules work itself.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .exceptions import ConfigurationError, ExplainerError
from .explainers import registry
from .explainers.base import BaseExplainer, jsonable_params
from .explanation import Diagnostics, Explanation
from .progress import ProgressOption, progress_bar
from .provenance import utc_now
from .seeding import resolve_seed
from .tabular import as_frame
from .validation import check_int

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["dask_client", "explain_batch"]

_LOCAL_SPEC = re.compile(r"local:(\d+)")
_ADDRESS_SPEC = re.compile(r"(tcp|tls)://[^\s/]+:\d+")


def explain_batch(
    explainer: BaseExplainer,
    X: pd.DataFrame | np.ndarray,
    *,
    client: Client | None = None,
    partition_rows: int = 256,
    progress: ProgressOption = None,
) -> Explanation:
    """Explain the rows of ``X`` in partitions; the result equals ``explainer.explain(X)``.

    Parameters
    ----------
    explainer : fitted explainer
        Any registered explainer whose rows are independent of each other (the registry's
        ``row_independent`` tag; not :class:`~surrogate_xai.ShapKernel`).
    X : DataFrame or array of shape (n_samples, n_features)
        The rows to explain, in the raw feature space. Checked whole, on the caller's side,
        before any work is shipped, so an input error names the row's position in ``X``.
    client : distributed.Client, optional
        Run the partitions on this Dask cluster; ``None`` runs them one after the other in
        this process. The fitted explainer (model bytes included) is sent to every worker
        once per call; each worker process builds one onnxruntime session per model.
    partition_rows : int
        Rows per task. Each partition's result comes back whole, so this also bounds what a
        task holds besides the perturbed rows (see :attr:`batch_rows` for those).
    progress : bool, callable or None
        A progress bar over the rows (:mod:`surrogate_xai.progress`): by default one only
        where a person is watching (a notebook, a terminal); ``True`` / ``False`` always /
        never; a callable is called with the number of rows of each partition as it finishes
        (in completion order on a cluster). It cannot change a value.

    Returns
    -------
    Explanation
        Bit-identical to ``explainer.explain(X)`` in values, standard errors, base values,
        diagnostics, data and provenance (``created_at`` aside), for a model whose output for
        a row does not depend on the other rows of the call (all ONNX tree ensembles and
        sklearn models; see ``docs/scale.md``).

    Raises
    ------
    ConfigurationError
        For an explainer whose rows depend on each other, or a bad ``partition_rows``.
    InputError, ModelError
        As ``explain`` raises them, naming the row's position in ``X`` (not in its
        partition), re-raised on the caller's side with the same type.
    """
    _check_explainer(explainer)
    size = check_int("partition_rows", partition_rows)
    frame = explainer.schema_.check(as_frame(X, explainer.model_.feature_names), "X")
    shipped = _with_fixed_seed(explainer)
    bounds = [(a, min(a + size, len(frame))) for a in range(0, len(frame), size)]
    with progress_bar(progress, len(frame), "explaining") as done:
        if client is None:
            parts = []
            for a, b in bounds:
                parts.append(_explain_partition(shipped, frame.iloc[a:b], a))
                done(b - a)
        else:
            parts = _run_on_cluster(client, shipped, frame, bounds, done)
    return _merge(explainer, frame, parts)


def _check_explainer(explainer: Any) -> None:
    if not isinstance(explainer, BaseExplainer):
        raise ConfigurationError(
            f"explain_batch needs one of the library's explainers, got {type(explainer).__name__}"
        )
    if not registry.of(explainer).row_independent:
        raise ConfigurationError(
            f"explain_batch cannot partition {type(explainer).__name__}: its rows depend on "
            "each other (shap draws every row's coalitions from one random stream that runs "
            "across the rows of a call), so a row's values depend on the rows explained "
            "before it; explain with it in a single call instead"
        )
    explainer.check_fitted()


def _with_fixed_seed(explainer: BaseExplainer) -> BaseExplainer:
    """A shallow copy whose seed is the integer this call uses, for every partition.

    ``resolve_seed`` is called once, as one ``explain`` call would: a Generator advances once,
    ``None`` draws one fresh seed for the whole batch. The fitted state is shared, not copied
    (``explain`` never writes to it).
    """
    shipped = copy.copy(explainer)
    if "random_state" in explainer.get_params():
        shipped.random_state = resolve_seed(explainer.random_state)  # type: ignore[attr-defined]
    return shipped


def _explain_partition(explainer: BaseExplainer, part: pd.DataFrame, start: int) -> Explanation:
    """Explain one partition (rows ``start, start + 1, ...`` of the batch); runs on a worker."""
    return explainer.explain_rows(part, start)


def _run_on_cluster(
    client: Client,
    shipped: BaseExplainer,
    frame: pd.DataFrame,
    bounds: Sequence[tuple[int, int]],
    done: Callable[[int], object],
) -> list[Explanation]:
    distributed = _import_distributed()
    # Broadcast: one copy of the explainer (and the model bytes in it) goes to each worker,
    # once; tasks refer to it by key instead of carrying it.
    fitted = client.scatter(shipped, broadcast=True, hash=False)
    parts = client.scatter([frame.iloc[a:b] for a, b in bounds], hash=False)
    futures = [
        client.submit(_explain_partition, fitted, part, a, pure=False)
        for part, (a, _) in zip(parts, bounds, strict=True)
    ]
    try:
        rows = {f.key: b - a for f, (a, b) in zip(futures, bounds, strict=True)}
        for future in distributed.as_completed(futures):
            if future.status != "finished":
                break  # the ordered wait below raises the first failure in input order
            done(rows[future.key])
        # Waiting in input order re-raises the error of the first failing partition, as a
        # single ``explain`` call would raise at the first failing row.
        return [f.result() for f in futures]
    finally:
        client.cancel([*futures, *parts, fitted])


def _merge(explainer: BaseExplainer, frame: pd.DataFrame, parts: list[Explanation]) -> Explanation:
    """One Explanation from the partitions' results, as one ``explain`` call builds it."""
    first = parts[0]
    reference = _shared_fields(first)
    for k, part in enumerate(parts[1:], start=1):
        fields = _shared_fields(part)
        for key, value in reference.items():
            if fields[key] != value:
                raise ExplainerError(
                    f"partition {k} disagrees with partition 0 on {key!r} "
                    f"({fields[key]!r} vs {value!r}); are the workers' package versions the same?"
                )

    def stacked(get: Any) -> np.ndarray:
        return np.concatenate([get(p) for p in parts], axis=0)

    diagnostics = Diagnostics(
        model_evaluations=stacked(lambda p: p.diagnostics.model_evaluations),
        background_evaluations=first.diagnostics.background_evaluations,
        converged=stacked(lambda p: p.diagnostics.converged),
        efficiency_gap=stacked(lambda p: p.diagnostics.efficiency_gap),
        predictions=stacked(lambda p: p.diagnostics.predictions),
        blocks=stacked(lambda p: p.diagnostics.blocks),
        exact=first.diagnostics.exact,
        extra=_merge_extra(parts),
    )
    provenance = replace(
        first.provenance,
        parameters=jsonable_params(explainer.get_params()),
        created_at=utc_now(),
    )
    return Explanation(
        values=stacked(lambda p: p.values),
        base_values=stacked(lambda p: p.base_values),
        stderr=stacked(lambda p: p.stderr),
        data=frame,
        feature_names=first.feature_names,
        output_names=first.output_names,
        diagnostics=diagnostics,
        provenance=provenance,
    )


def _shared_fields(part: Explanation) -> dict[str, Any]:
    """What every partition of one call must agree on."""
    prov = part.provenance.to_dict()
    del prov["created_at"], prov["parameters"]  # the call's own are used
    return {
        **prov,
        "feature_names": part.feature_names,
        "output_names": part.output_names,
        "background_evaluations": part.diagnostics.background_evaluations,
        "exact": part.diagnostics.exact,
        "extra keys": sorted(part.diagnostics.extra),
    }


def _merge_extra(parts: list[Explanation]) -> dict[str, Any]:
    """Method-specific figures: per-row lists are joined, call-wide figures must agree."""
    merged: dict[str, Any] = {}
    for key in parts[0].diagnostics.extra:
        values = [p.diagnostics.extra[key] for p in parts]
        per_row = all(
            isinstance(v, list) and len(v) == len(p) for v, p in zip(values, parts, strict=True)
        )
        if per_row:
            merged[key] = [item for v in values for item in v]
        elif all(v == values[0] for v in values[1:]):
            merged[key] = values[0]
        else:
            raise ExplainerError(f"partitions disagree on diagnostics.extra[{key!r}]")
    return merged


# -- clusters -----------------------------------------------------------------------------------
def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - the dask extra is installed in development
        raise ImportError(
            "distributed batches need dask.distributed: pip install 'surrogate-xai[dask]'"
        ) from exc
    return distributed


@contextmanager
def dask_client(spec: str) -> Iterator[Client]:
    """A Dask client for ``spec``, closed (with its cluster, if it started one) on exit.

    Parameters
    ----------
    spec : str
        ``"local:N"`` starts a LocalCluster of ``N`` worker processes with one thread each
        (onnxruntime is fastest with one thread per process on small machines), no dashboard,
        no worker profiler and quiet logs. ``"tcp://host:port"`` (or ``tls://``) connects to a running scheduler.

    Raises
    ------
    ConfigurationError
        If ``spec`` is neither form, ``N < 1``, or no scheduler answers at the address.
    """
    distributed = _import_distributed()
    local = _LOCAL_SPEC.fullmatch(spec.strip())
    if local:
        n = int(local.group(1))
        if n < 1:
            raise ConfigurationError(f"Dask spec {spec!r}: a local cluster needs at least 1 worker")
        import dask

        with (
            # Dask's statistical profiler samples each worker's stack every 10 ms; on these
            # CPU-bound tasks it lengthened the workers' task time noticeably, and
            # nothing here reads its output. Workers take the config when they are spawned.
            dask.config.set({"distributed.worker.profile.enabled": False}),
            distributed.LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                # No dashboard, and the scheduler's HTTP endpoint on a free port: the default
                # 8787 may be taken by another cluster on the machine.
                dashboard_address=None,
                scheduler_kwargs={"dashboard": False, "dashboard_address": ":0"},
                silence_logs=logging.ERROR,
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            yield client
        return
    if not _ADDRESS_SPEC.fullmatch(spec.strip()):
        raise ConfigurationError(
            f"Dask spec {spec!r} is neither 'local:N' (N worker processes on this machine) nor "
            "a scheduler address such as 'tcp://scheduler:8786'"
        )
    try:
        client = distributed.Client(spec.strip(), timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise ConfigurationError(f"no Dask scheduler answers at {spec!r}: {exc}") from exc
    with client:
        yield client
