import os
import pathlib
from typing import Iterable, Mapping, Optional, Sequence, Union

__version__: str
DEFAULT_MODEL: str

class Translation:
    """The translation of one source sentence."""

    @property
    def text(self) -> str: ...
    @property
    def score(self) -> Optional[float]:
        """Mean log-probability per generated token (None unless return_scores)."""
    @property
    def src_ids(self) -> Optional[list[int]]: ...
    @property
    def tgt_ids(self) -> Optional[list[int]]: ...
    @property
    def tgt_logprobs(self) -> Optional[list[float]]: ...
    @property
    def alignment(self) -> Optional[list[tuple[int, int]]]:
        """(source word, target word) pairs (None unless return_alignment)."""
    @property
    def alternatives(self) -> list[tuple[str, float]]:
        """With num_hypotheses > 1: the next best (text, score), best first."""

class Sentence:
    """A sentence of a document; start/end are byte offsets into it."""

    @property
    def text(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def para(self) -> int: ...
    @property
    def sent(self) -> int: ...

class Record:
    """One record of the CLI's JSONL output."""

    def __init__(
        self,
        *,
        doc: str,
        para: int,
        sent: int,
        start: int,
        end: int,
        src: str,
        tgt: str,
        score: float,
        src_ids: Optional[Sequence[int]] = None,
        tgt_ids: Optional[Sequence[int]] = None,
        tgt_logprobs: Optional[Sequence[float]] = None,
        alignment: Optional[str] = None,
    ) -> None: ...
    @property
    def doc(self) -> str: ...
    @property
    def para(self) -> int: ...
    @property
    def sent(self) -> int: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def src(self) -> str: ...
    @property
    def tgt(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def flags(self) -> list[str]:
        """QA flags (numbers, latin, length, loop, untranslated), computed from src and tgt."""
    @property
    def src_ids(self) -> Optional[list[int]]: ...
    @property
    def tgt_ids(self) -> Optional[list[int]]: ...
    @property
    def tgt_logprobs(self) -> Optional[list[float]]: ...
    @property
    def alignment(self) -> Optional[str]: ...
    def to_json(self) -> str:
        """The record as one JSONL line (no newline), byte-identical to the CLI's."""
    def to_dict(self) -> dict: ...

class Translator:
    """A Marian model loaded once (a local folder or a Hugging Face Hub id).

    threads: threads in all (0: all cores); workers: batches translated at
    the same time, each on its share of the threads (the CLI's --workers).
    The first Translator of a process also sizes the global rayon pool
    (tokenisation, candle) to threads, unless RAYON_NUM_THREADS is set.
    batch_tokens: padded source tokens per batch (None: 2048 on the CPU,
    16384 on a GPU, as the CLI's --batch-tokens).
    Raises OSError when the model cannot be found, RuntimeError when it
    cannot be loaded, ValueError for bad options.
    """

    def __init__(
        self,
        model: Union[str, os.PathLike[str]],
        *,
        device: str = "cpu",
        dtype: str = "f32",
        threads: int = 0,
        workers: int = 1,
        offline: bool = False,
        batch_tokens: Optional[int] = None,
        revision: Optional[str] = None,
    ) -> None: ...
    @property
    def model_dir(self) -> pathlib.Path: ...
    @property
    def device(self) -> str: ...
    @property
    def dtype(self) -> str: ...
    @property
    def threads(self) -> int: ...
    @property
    def workers(self) -> int: ...
    @property
    def worker_threads(self) -> list[int]: ...
    @property
    def default_beam_size(self) -> int: ...
    def translate_batch(
        self,
        sources: Iterable[str],
        *,
        beam_size: Optional[int] = None,
        max_new_tokens: Optional[int] = None,
        return_scores: bool = True,
        return_alignment: bool = False,
        return_ids: bool = False,
        length_penalty: Optional[float] = None,
        repetition_penalty: Optional[float] = None,
        no_repeat_ngram_size: Optional[int] = None,
        max_length_factor: Optional[float] = None,
        num_hypotheses: int = 1,
    ) -> list[Translation]:
        """Translates sources (the GIL is released meanwhile); one result per source, in order.

        num_hypotheses > 1 (at most the beam) keeps the next best translations in
        each result's `alternatives`, as the CLI's --n-best does.

        beam_size/max_new_tokens default to the model's generation_config.json,
        as the CLI's --beam/--max-new-tokens; length_penalty, repetition_penalty,
        no_repeat_ngram_size and max_length_factor are the CLI's options of the
        same names. Each distinct combination of these options (and
        return_alignment) loads the model once more.
        """
    def translate_document(
        self,
        text: Union[str, bytes],
        name: str = "-",
        *,
        beam_size: Optional[int] = None,
        max_new_tokens: Optional[int] = None,
        return_ids: bool = False,
        return_alignment: bool = False,
        lines: bool = False,
        length_penalty: Optional[float] = None,
        repetition_penalty: Optional[float] = None,
        no_repeat_ngram_size: Optional[int] = None,
        max_length_factor: Optional[float] = None,
    ) -> list[Record]:
        """Segments and translates a document: the CLI's JSONL records (return_ids: --emit-ids)."""

def segment(text: Union[str, bytes], *, lines: bool = False) -> list[Sentence]:
    """Paragraphs and sentences of a document, as the CLI segments it."""

def write_outputs(
    records: Iterable[Union[Record, Mapping[str, object]]],
    out_dir: Union[str, os.PathLike[str]],
    name: str,
    formats: Optional[Sequence[str]] = None,
    *,
    title: Optional[str] = None,
) -> list[pathlib.Path]:
    """Writes out_dir/name.<suffix> for each format (default: html, tmx, tsv, jsonl, md, moses).

    The bytes are the CLI's for the same records and title (the CLI's title is
    the input's file name). Returns the paths written.
    """

def formats() -> list[str]: ...
