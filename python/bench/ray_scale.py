"""Ray Data 2 actors x 1 thread against 1 process x 2 threads, on more sentences.

    python/.venv/bin/python python/bench/ray_scale.py [copies]

Also times Ray on 10 rows: the fixed cost (actor start, model load, scheduling).
"""

import sys
import time

import ray

import tarjama
from tarjama.ray import translate

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from bench import sentences  # noqa: E402

MODEL = "tests/fixtures/marian"
copies = int(sys.argv[1]) if len(sys.argv) > 1 else 60
src = sentences(copies)
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
ray.data.DataContext.get_current().enable_progress_bars = False


def ray_run(rows):
    ds = ray.data.from_items([{"text": s} for s in rows], override_num_blocks=8).materialize()
    t = time.perf_counter()
    translate(ds, model=MODEL, concurrency=2, num_cpus=1, threads=1, batch_size=128).materialize()
    return time.perf_counter() - t


fixed = min(ray_run(src[:10]) for _ in range(2))
ray_s = min(ray_run(src) for _ in range(2))
one = {}
for w in (1, 2):
    ts = []
    for _ in range(2):
        t = time.perf_counter()
        tarjama.Translator(MODEL, threads=2, workers=w).translate_batch(src)
        ts.append(time.perf_counter() - t)
    one[w] = min(ts)
print(f"{len(src)} sentences: Ray 2 actors x 1 thread {ray_s:.2f} s (10 rows: {fixed:.2f} s); "
      f"1 process x 2 threads: workers=1 {one[1]:.2f} s, workers=2 {one[2]:.2f} s")
ray.shutdown()
