"""Shared fixtures: the repository, the tiny fixture model and the CLI's JSONL."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

import pytest

PYTHON_DIR = pathlib.Path(__file__).resolve().parents[1]
REPO = PYTHON_DIR.parent
FIXTURE_MODEL = REPO / "tests" / "fixtures" / "marian"
CORPUS = REPO / "corpus"


def cli_binary() -> pathlib.Path:
    """The tarjama CLI: $TARJAMA_CLI, else built (release) into python/target."""
    env = os.environ.get("TARJAMA_CLI")
    if env:
        return pathlib.Path(env)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", PYTHON_DIR / "target"))
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--manifest-path", str(REPO / "Cargo.toml")],
        check=True,
        env={**os.environ, "CARGO_TARGET_DIR": str(target)},
    )
    return target / "release" / "tarjama"


@pytest.fixture(scope="session")
def cli() -> pathlib.Path:
    return cli_binary()


@pytest.fixture(scope="session")
def model_dir() -> pathlib.Path:
    return FIXTURE_MODEL


@pytest.fixture(scope="session")
def cli_jsonl(cli) -> list[str]:
    """The CLI's JSONL lines for the sample corpus, with ids (--emit-ids)."""
    out = subprocess.run(
        [str(cli), "translate", "corpus/", "--model", str(FIXTURE_MODEL), "--out", "-",
         "--format", "jsonl", "--emit-ids", "--quiet"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    lines = out.stdout.splitlines()
    assert lines, out.stderr
    return lines


@pytest.fixture(scope="session")
def cli_records(cli_jsonl) -> list[dict]:
    return [json.loads(line) for line in cli_jsonl]


@pytest.fixture(scope="session")
def translator(model_dir):
    import tarjama

    return tarjama.Translator(model_dir, threads=2, workers=1)
