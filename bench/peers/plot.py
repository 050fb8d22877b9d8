"""Plots for `npm run bench:peers`: python plot.py <results.json> <out-dir>.

peers-lateness-cdf.png: lateness CDF per system/profile (punctuality scenario, log x).
peers-throughput.png: bars of throughput and batch ingest per system/profile.
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


# One colour per system, so the two profiles of a system share it (defaults dashed).
COLORS = {
    "punctual-sqlite": "#d62728",
    "punctual-postgres": "#ff7f0e",
    "graphile-worker": "#1f77b4",
    "pg-boss": "#2ca02c",
    "bullmq": "#9467bd",
    "river": "#17becf",
    "db-scheduler": "#8c564b",
}


def main() -> None:
    results = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    runs = [r for r in results["runs"] if r.get("result")]
    subtitle = "quick run" if results.get("quick") else f"{results['machine']['cores']} cores, {results['startedAt'][:10]}"

    # Lateness CDF
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for run in runs:
        if run["scenario"] != "punctuality":
            continue
        q = run["result"].get("latenessQuantiles") or []
        if not q:
            continue
        n = len(q)
        xs = [max(v, 0.01) for v in q]
        ys = [k / (n - 1) for k in range(n)]
        done = run["result"]["count"] - run["result"]["missed"]
        ys = [y * done / run["result"]["count"] for y in ys]
        punctual = run["system"].startswith("punctual")
        ax.plot(
            xs,
            ys,
            label=f"{run['system']} / {run['profile']}",
            color=COLORS.get(run["system"], "#7f7f7f"),
            linewidth=2.4 if punctual else 1.3,
            linestyle="-" if run["profile"] == "tuned" or punctual else "--",
        )
    ax.set_xscale("log")
    ax.set_xlabel("lateness = start − due (ms, log scale; ≤ 0.01 ms shown at 0.01)")
    ax.set_ylabel("fraction of tasks started")
    ax.set_title(f"Punctuality: lateness CDF ({subtitle})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "peers-lateness-cdf.png", dpi=110)
    print(f"wrote {out / 'peers-lateness-cdf.png'}")

    # Throughput and ingest bars
    labels = []
    tput = {}
    ingest = {}
    for run in runs:
        key = f"{run['system']}\n{run['profile']}"
        if key not in labels:
            labels.append(key)
        if run["scenario"] == "throughput":
            tput[key] = run["result"].get("perSecond") or 0
        if run["scenario"] == "ingest":
            ingest[key] = (run["result"].get("batch") or {}).get("perSecond") or 0
    labels = [k for k in labels if k in tput or k in ingest]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, data, title in ((axes[0], tput, "throughput (tasks/s, 10–90 %)"), (axes[1], ingest, "ingest, batch of 1,000 (tasks/s)")):
        keys = [k for k in labels if k in data]
        colors = ["#d9534f" if k.startswith("punctual") else "#5b8bd9" for k in keys]
        ax.barh(keys, [data[k] for k in keys], color=colors)
        for y, k in enumerate(keys):
            ax.text(data[k], y, f" {data[k]:,.0f}", va="center", fontsize=7)
        ax.set_title(title)
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle(f"Throughput and ingest ({subtitle})")
    fig.tight_layout()
    fig.savefig(out / "peers-throughput.png", dpi=110)
    print(f"wrote {out / 'peers-throughput.png'}")


if __name__ == "__main__":
    main()
