"""Ray Data: 2 actors on a local cluster give translate_batch's translations."""

from __future__ import annotations

import pytest

import tarjama

pytestmark = pytest.mark.ray
ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             ignore_reinit_error=True)
    yield
    ray.shutdown()


def test_ray_translate_equals_translate_batch(local_ray, model_dir, cli_records, translator):
    import tarjama.ray

    sources = [r["src"] for r in cli_records]
    ds = ray.data.from_items([{"id": i, "text": s} for i, s in enumerate(sources)])
    out = tarjama.ray.translate(ds, model=str(model_dir), concurrency=2, batch_size=16,
                                num_cpus=1)
    rows = sorted(out.take_all(), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == list(range(len(sources)))
    assert [r["text"] for r in rows] == sources
    want = translator.translate_batch(sources)
    assert [r["translation"] for r in rows] == [t.text for t in want]
    assert [r["score"] for r in rows] == pytest.approx([t.score for t in want], abs=1e-6)


def test_ray_decode_options(local_ray, model_dir, translator):
    import tarjama.ray

    sources = ["مرحبا بالعالم.", "ذهب الولد إلى المدرسة."]
    ds = ray.data.from_items([{"text": s} for s in sources])
    out = tarjama.ray.translate(ds, model=model_dir, concurrency=1, num_cpus=1,
                                score_column=None, beam_size=1, max_new_tokens=4)
    rows = out.take_all()
    got = {r["text"]: r["translation"] for r in rows}
    want = translator.translate_batch(sources, beam_size=1, max_new_tokens=4)
    assert got == {s: t.text for s, t in zip(sources, want)}
    assert "score" not in rows[0]
    with pytest.raises(ValueError):
        tarjama.ray.translate(ds, model=model_dir, column="nope")
    with pytest.raises(TypeError):
        tarjama.ray.translate(ds, model=model_dir, beam=3)
