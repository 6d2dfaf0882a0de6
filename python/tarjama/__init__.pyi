from ._tarjama import (
    DEFAULT_MODEL as DEFAULT_MODEL,
    Record as Record,
    Sentence as Sentence,
    Translation as Translation,
    Translator as Translator,
    __version__ as __version__,
    formats as formats,
    segment as segment,
    write_outputs as write_outputs,
)
from . import ray as ray
