"""tarjama: Arabic→English Marian (OPUS-MT) translation, in the shape CTranslate2 users know.

>>> import tarjama
>>> t = tarjama.Translator("Helsinki-NLP/opus-mt-ar-en", threads=2)
>>> [x.text for x in t.translate_batch(["مرحبا بالعالم."])]

``tarjama.ray`` (imported on use; needs ``pip install "tarjama[ray]"``) translates
a Ray Data dataset with one model per actor.
"""

from ._tarjama import (
    DEFAULT_MODEL,
    Record,
    Sentence,
    Translation,
    Translator,
    __version__,
    formats,
    segment,
    write_outputs,
)

__all__ = [
    "DEFAULT_MODEL",
    "Record",
    "Sentence",
    "Translation",
    "Translator",
    "__version__",
    "formats",
    "segment",
    "write_outputs",
]


def __getattr__(name: str):
    # `tarjama.ray` is a submodule imported lazily so that `import tarjama`
    # never imports ray.
    if name == "ray":
        import importlib

        return importlib.import_module(".ray", __name__)
    raise AttributeError(f"module 'tarjama' has no attribute {name!r}")
