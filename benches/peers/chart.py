#!/usr/bin/env python3
"""Grouped bar chart of a peers results file: target tokens/s per case, one
bar per engine (tarjama, CTranslate2, transformers), as SVG with its text
kept as text.

    benches/peers/.venv/bin/python benches/peers/chart.py \\
        benches/peers/results-2026-11-30-all.json -o benches/peers/chart-2026-11-30.svg

Only matplotlib is needed (in requirements.txt); `run.py --chart FILE.svg`
calls this after a run.
"""

import argparse
import json
from pathlib import Path

CASES = {
    "greedy-b32": "greedy, batch 32",
    "beam4-b32": "beam 4, batch 32",
    "greedy-b1": "greedy, batch 1",
}

# One hue per engine family, darker for the more precise number type.
COLOURS = {
    "tarjama f32": "#08519c",
    "tarjama bf16": "#3182bd",
    "tarjama int8": "#6baed6",
    "ct2 float32": "#a63603",
    "ct2 int8": "#fd8d3c",
    "transformers f32": "#54278f",
}


def colour(engine):
    for prefix, c in COLOURS.items():
        if engine.startswith(prefix):
            return c
    return "#7f7f7f"


def draw(results_path, out_path, title=None):
    """Writes the chart of `results_path` (run.py's JSON) to `out_path`."""
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    # Text as <text>, and no date or random ids: the same input gives the
    # same file, so a committed chart diffs cleanly.
    plt.rcParams["svg.fonttype"] = "none"
    plt.rcParams["svg.hashsalt"] = "tarjama"

    data = json.loads(Path(results_path).read_text())
    results = data["results"] if isinstance(data, dict) else data
    versions = data.get("versions", {}) if isinstance(data, dict) else {}
    cases = [c for c in CASES if any(r["case"] == c for r in results)]
    cases += sorted({r["case"] for r in results} - set(cases))
    engines = list(dict.fromkeys(r["engine"] for r in results))
    speed = {(r["engine"], r["case"]): r["tokens_per_second"] for r in results}

    fig, ax = plt.subplots(figsize=(10, 5.2))
    width = 0.8 / len(engines)
    for i, engine in enumerate(engines):
        xs = [c + (i - (len(engines) - 1) / 2) * width for c in range(len(cases))]
        ys = [speed.get((engine, case), 0.0) for case in cases]
        bars = ax.bar(xs, ys, width * 0.92, label=engine, color=colour(engine))
        ax.bar_label(bars, labels=[f"{y:.0f}" if y else "" for y in ys],
                     fontsize=7, padding=2, rotation=90)
    ax.set_xticks(range(len(cases)), [CASES.get(c, c) for c in cases])
    ax.set_ylabel("target tokens/s")
    ax.set_ylim(0, max(speed.values()) * 1.18)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=8, ncols=2, loc="upper right", frameon=False)
    if title is None:
        title = f"tarjama vs CTranslate2 vs transformers ({Path(results_path).name})"
    ax.set_title(title)
    if versions:
        note = ", ".join(f"{k} {v}" for k, v in versions.items())
        fig.text(0.01, 0.01, note, fontsize=7, color="#555555")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(out_path, metadata={"Date": None})
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", help="a results JSON written by run.py")
    ap.add_argument("-o", "--output", required=True, help="the SVG to write")
    ap.add_argument("--title", default=None)
    args = ap.parse_args()
    draw(args.results, args.output, args.title)


if __name__ == "__main__":
    main()
