"""Ray Data integration: translate a column of a ``ray.data.Dataset``.

Needs ``ray[data]`` (``pip install "tarjama[ray]"``); ray is imported only
when :func:`translate` is called.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Optional, Union

if TYPE_CHECKING:  # pragma: no cover
    import ray.data

__all__ = ["TranslateBatch", "translate"]

# translate_batch's decoding keyword arguments that pass through.
_DECODE_OPTIONS = {
    "beam_size",
    "max_new_tokens",
    "length_penalty",
    "repetition_penalty",
    "no_repeat_ngram_size",
    "max_length_factor",
}


class TranslateBatch:
    """Callable class for ``Dataset.map_batches``: one Translator per actor.

    Each call translates ``batch[column]`` and adds ``output_column`` (text)
    and ``score_column`` (mean log-probability per token; skipped when None).
    """

    def __init__(
        self,
        model: Union[str, os.PathLike],
        column: str = "text",
        output_column: str = "translation",
        score_column: Optional[str] = "score",
        translator_options: Optional[dict] = None,
        decode_options: Optional[dict] = None,
    ) -> None:
        from . import Translator

        self.translator = Translator(model, **(translator_options or {}))
        self.column = column
        self.output_column = output_column
        self.score_column = score_column
        self.decode_options = dict(decode_options or {})

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        sources = [str(s) for s in batch[self.column]]
        out = self.translator.translate_batch(
            sources, return_scores=self.score_column is not None, **self.decode_options
        )
        batch = dict(batch)
        batch[self.output_column] = np.array([t.text for t in out], dtype=object)
        if self.score_column is not None:
            batch[self.score_column] = np.array([t.score for t in out], dtype=np.float32)
        return batch


def _ray_version() -> tuple[int, ...]:
    import ray

    parts = []
    for p in ray.__version__.split(".")[:2]:
        digits = "".join(c for c in p if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def translate(
    ds: "ray.data.Dataset",
    *,
    model: Union[str, os.PathLike],
    column: str = "text",
    output_column: str = "translation",
    score_column: Optional[str] = "score",
    concurrency: int = 1,
    batch_size: Optional[int] = 256,
    num_cpus: float = 1,
    num_gpus: Optional[float] = None,
    threads: Optional[int] = None,
    workers: int = 1,
    device: str = "cpu",
    dtype: str = "f32",
    offline: bool = False,
    **decode_options: Any,
) -> "ray.data.Dataset":
    """Adds ``output_column`` (and ``score_column``) to ``ds``, translating ``column``.

    Built on ``ds.map_batches`` with :class:`TranslateBatch`: ``concurrency``
    actors, each loading the model once and translating with ``threads``
    threads (default: ``num_cpus`` rounded down, at least 1) and ``workers``
    concurrent batches. ``decode_options`` go to
    :meth:`tarjama.Translator.translate_batch` (``beam_size``,
    ``max_new_tokens``, ``length_penalty``, ``repetition_penalty``,
    ``no_repeat_ngram_size``, ``max_length_factor``). Rows keep their other columns.
    """
    # Only a schema Ray already knows (never runs the dataset to find one).
    try:
        schema = ds.schema(fetch_if_missing=False)
    except TypeError:  # a Ray without fetch_if_missing
        schema = None
    if schema is not None and column not in schema.names:
        raise ValueError(f"the dataset has no column {column!r}")
    bad = set(decode_options) - _DECODE_OPTIONS
    if bad:
        raise TypeError(f"unknown decoding options: {sorted(bad)}")
    if threads is None:
        threads = max(1, int(num_cpus))
    kwargs: dict[str, Any] = {}
    if num_gpus is not None:
        kwargs["num_gpus"] = num_gpus
    if _ray_version() >= (2, 51):
        # `concurrency` is deprecated from Ray 2.51 on, in favour of `compute`.
        from ray.data import ActorPoolStrategy

        kwargs["compute"] = ActorPoolStrategy(size=concurrency)
    else:
        kwargs["concurrency"] = concurrency
    return ds.map_batches(
        TranslateBatch,
        fn_constructor_kwargs=dict(
            model=os.fspath(model),
            column=column,
            output_column=output_column,
            score_column=score_column,
            translator_options=dict(
                device=device, dtype=dtype, threads=threads, workers=workers, offline=offline
            ),
            decode_options=decode_options,
        ),
        batch_format="numpy",
        batch_size=batch_size,
        num_cpus=num_cpus,
        **kwargs,
    )
