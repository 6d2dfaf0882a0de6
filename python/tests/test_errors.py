"""Bad input and bad models raise Python exceptions, never crash."""

from __future__ import annotations

import shutil

import pytest

import tarjama


def test_missing_model_folder(tmp_path):
    with pytest.raises(OSError):
        tarjama.Translator(tmp_path / "no-such-model", offline=True)


def test_uncached_hub_id_offline():
    with pytest.raises(OSError):
        tarjama.Translator("nobody/no-such-model-xyz", offline=True)


def test_empty_model_folder(tmp_path):
    with pytest.raises((OSError, RuntimeError)):
        tarjama.Translator(tmp_path)


def test_corrupt_weights(model_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    (bad / "pytorch_model.bin").unlink()
    (bad / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(RuntimeError, match="model"):
        tarjama.Translator(bad)


@pytest.mark.parametrize(
    "kwargs",
    [dict(dtype="f64"), dict(device="tpu"), dict(threads=-1), dict(workers=0),
     dict(batch_tokens=0)],
)
def test_bad_options(model_dir, kwargs):
    with pytest.raises(ValueError):
        tarjama.Translator(model_dir, **kwargs)


def test_bad_translate_arguments(translator):
    with pytest.raises(TypeError):
        translator.translate_batch("a single string")
    with pytest.raises(TypeError):
        translator.translate_batch(["ok", 3])
    with pytest.raises(ValueError):
        translator.translate_batch(["ok"], beam_size=0)
    with pytest.raises(ValueError):
        translator.translate_batch(["ok"], max_new_tokens=-5)
    with pytest.raises(ValueError):
        translator.translate_batch(["ok"], repetition_penalty=0.0)
    with pytest.raises(ValueError):
        translator.translate_batch(["ok"], length_penalty=float("nan"))
    with pytest.raises(TypeError):
        translator.translate_batch(["ok"], num_beams=2)
    with pytest.raises(TypeError):
        translator.translate_document(123)


def test_undecodable_bytes(translator):
    with pytest.raises(ValueError):
        # A UTF-16 byte-order mark with an odd-length body cannot be decoded.
        translator.translate_document(b"\xff\xfe\x00", "bad.txt")


def test_bad_write_outputs(tmp_path):
    with pytest.raises(ValueError):
        tarjama.write_outputs([], tmp_path, "x", ["pdf"])
    with pytest.raises(ValueError):
        tarjama.write_outputs([], tmp_path, "../x")
    with pytest.raises(TypeError):
        tarjama.write_outputs([42], tmp_path, "x")
    with pytest.raises(ValueError):
        tarjama.write_outputs([{"doc": "d"}], tmp_path, "x")
