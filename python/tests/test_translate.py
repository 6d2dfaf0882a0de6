"""The Python API gives the CLI's results on the tiny fixture model."""

from __future__ import annotations

import filecmp
import json
import pathlib
import subprocess
import threading

import pytest

import tarjama

from conftest import CORPUS, REPO


def test_translate_batch_equals_cli(translator, cli_records):
    sources = [r["src"] for r in cli_records]
    out = translator.translate_batch(sources, return_ids=True)
    assert len(out) == len(sources)
    for t, r in zip(out, cli_records):
        assert t.text == r["tgt"]
        assert t.src_ids == r["src_ids"]
        assert t.tgt_ids == r["tgt_ids"]
        assert t.score == pytest.approx(r["score"], abs=1e-6)
        assert t.tgt_logprobs == pytest.approx(r["tgt_logprobs"], abs=1e-6)
        assert t.alignment is None


def test_translate_batch_defaults(translator, cli_records):
    out = translator.translate_batch([r["src"] for r in cli_records[:3]])
    assert [t.text for t in out] == [r["tgt"] for r in cli_records[:3]]
    assert all(t.score is not None and t.src_ids is None for t in out)
    out = translator.translate_batch([cli_records[0]["src"]], return_scores=False)
    assert out[0].score is None
    assert translator.translate_batch([]) == []


def test_workers_and_threads_do_not_change_results(model_dir, cli_records):
    sources = [r["src"] for r in cli_records]
    one = tarjama.Translator(model_dir, threads=1).translate_batch(sources, return_ids=True)
    two = tarjama.Translator(model_dir, threads=2, workers=2).translate_batch(sources, return_ids=True)
    assert one == two


def test_translate_document_equals_cli_jsonl(translator, cli_jsonl, cli_records):
    docs = list(dict.fromkeys(r["doc"] for r in cli_records))
    assert len(docs) == 2
    lines = []
    for doc in docs:
        data = (REPO / doc).read_bytes()
        lines += [r.to_json() for r in translator.translate_document(data, doc, return_ids=True)]
        # A str gives the same records (the corpus is UTF-8).
        recs = translator.translate_document(data.decode("utf-8"), doc, return_ids=True)
        assert [r.to_json() for r in recs] == [
            line for line in cli_jsonl if json.loads(line)["doc"] == doc
        ]
    assert lines == cli_jsonl


def test_segment_equals_cli(cli_records):
    for doc in dict.fromkeys(r["doc"] for r in cli_records):
        want = [(r["para"], r["sent"], r["start"], r["end"], r["src"])
                for r in cli_records if r["doc"] == doc]
        got = [(s.para, s.sent, s.start, s.end, s.text)
               for s in tarjama.segment((REPO / doc).read_text(encoding="utf-8"))]
        assert got == want


def test_beam_and_limit_as_cli(cli, translator, tmp_path):
    sources = ["مرحبا بالعالم.", "ذهب الولد إلى المدرسة صباحا."]
    inp = tmp_path / "in.txt"
    inp.write_text("\n".join(sources) + "\n", encoding="utf-8")
    out = subprocess.run(
        [str(cli), "translate", str(inp), "--model", str(REPO / "tests/fixtures/marian"),
         "--input-format", "lines", "--out", "-", "--format", "jsonl", "--quiet",
         "--beam", "1", "--max-new-tokens", "5"],
        check=True, capture_output=True, text=True,
    ).stdout
    want = [json.loads(line)["tgt"] for line in out.splitlines()]
    got = translator.translate_batch(sources, beam_size=1, max_new_tokens=5)
    assert [t.text for t in got] == want


@pytest.mark.parametrize(
    "cli_args,kwargs",
    [
        (["--length-penalty", "0.5"], dict(length_penalty=0.5)),
        (["--repetition-penalty", "1.3", "--no-repeat-ngram-size", "2"],
         dict(repetition_penalty=1.3, no_repeat_ngram_size=2)),
        (["--max-length-factor", "1.5", "--beam", "2"], dict(max_length_factor=1.5, beam_size=2)),
        (["--n-best", "3"], dict(num_hypotheses=3)),
    ],
)
def test_decoding_options_as_cli(cli, translator, cli_records, tmp_path, cli_args, kwargs):
    sources = list(dict.fromkeys(r["src"] for r in cli_records))[:12]
    inp = tmp_path / "in.txt"
    inp.write_text("\n".join(sources) + "\n", encoding="utf-8")
    out = subprocess.run(
        [str(cli), "translate", str(inp), "--model", str(REPO / "tests/fixtures/marian"),
         "--input-format", "lines", "--out", "-", "--format", "jsonl", "--quiet", "--emit-ids",
         *cli_args],
        check=True, capture_output=True, text=True,
    ).stdout
    want = [json.loads(line) for line in out.splitlines()]
    got = translator.translate_batch(sources, return_ids=True, **kwargs)
    assert [(t.text, t.tgt_ids) for t in got] == [(w["tgt"], w["tgt_ids"]) for w in want]
    assert [t.score for t in got] == pytest.approx([w["score"] for w in want], abs=1e-6)
    alts = [[(a["tgt"], a["score"]) for a in w.get("alternatives", [])] for w in want]
    assert [[text for text, _ in t.alternatives] for t in got] == [[x for x, _ in a] for a in alts]
    for t, a in zip(got, alts):
        assert [s for _, s in t.alternatives] == pytest.approx([s for _, s in a], abs=1e-6)
    if "num_hypotheses" in kwargs:
        assert all(len(t.alternatives) == 2 for t in got)


def test_alignment(translator):
    out = translator.translate_batch(["مرحبا بالعالم."], return_alignment=True)
    assert isinstance(out[0].alignment, list)
    assert all(isinstance(p, tuple) and len(p) == 2 for p in out[0].alignment)


def test_write_outputs_byte_identical_to_cli(cli, translator, tmp_path):
    formats = ["html", "tmx", "tsv", "jsonl", "md", "moses", "txt"]
    cli_out = tmp_path / "cli"
    subprocess.run(
        [str(cli), "translate", "corpus/", "--model", str(REPO / "tests/fixtures/marian"),
         "--out", str(cli_out), "--format", ",".join(formats), "--quiet"],
        cwd=REPO, check=True, capture_output=True,
    )
    py_out = tmp_path / "py"
    for path in sorted(CORPUS.glob("*.txt")):
        records = translator.translate_document(path.read_bytes(), f"corpus/{path.name}")
        stem = path.name[: -len(".ar.txt")] if path.name.endswith(".ar.txt") else path.stem
        written = tarjama.write_outputs(records, py_out, stem, formats, title=path.name)
        assert written
        # Dicts (e.g. rows of a dataset) work as records too.
        tarjama.write_outputs([r.to_dict() for r in records], tmp_path / "dicts", stem, formats,
                              title=path.name)
    names = sorted(p.name for p in py_out.iterdir())
    cli_names = sorted(p.name for p in cli_out.iterdir() if not p.name.startswith("."))
    assert set(names) <= set(cli_names), (names, cli_names)
    assert len(names) == 2 * 8
    match, mismatch, errors = filecmp.cmpfiles(cli_out, py_out, names, shallow=False)
    assert mismatch == [] and errors == []
    _, mismatch, errors = filecmp.cmpfiles(cli_out, tmp_path / "dicts", names, shallow=False)
    assert mismatch == [] and errors == []


def test_gil_released(translator):
    """Another Python thread runs while a batch is being translated."""
    sources = ["ذهب الولد إلى المدرسة صباحا ثم عاد إلى البيت مساء."] * 1 + [
        f"جملة رقم {i} في النص." for i in range(200)
    ]
    ticks = 0
    done = threading.Event()

    def work():
        translator.translate_batch(sources, beam_size=4)
        done.set()

    th = threading.Thread(target=work)
    th.start()
    while not done.is_set():
        ticks += 1
    th.join()
    assert ticks > 1000


def test_long_sentence_split_as_cli(cli, translator, tmp_path):
    """A sentence over the model's 128 source positions is split as the CLI splits it."""
    long = "، ".join(["ذهب الولد إلى المدرسة صباحا"] * 40)
    inp = tmp_path / "long.txt"
    inp.write_text(long + "\n", encoding="utf-8")
    out = subprocess.run(
        [str(cli), "translate", str(inp), "--model", str(REPO / "tests/fixtures/marian"),
         "--input-format", "lines", "--out", "-", "--format", "jsonl", "--quiet", "--emit-ids"],
        check=True, capture_output=True, text=True,
    ).stdout
    want = json.loads(out)
    got = translator.translate_batch([long], return_ids=True)[0]
    assert got.src_ids.count(0) > 1  # several parts, each ending in </s>
    assert (got.text, got.src_ids, got.tgt_ids) == (want["tgt"], want["src_ids"], want["tgt_ids"])
