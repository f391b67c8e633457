"""The bAbI table of recipes/sukhbaatar2015/run.sh and recipes/miller2016/run.sh: test error per task
of the per-task models and of the joint model, mean over seeds and the seed with the best validation
accuracy (the paper picks the best of 10 runs by training error; the held-out 10% plays that role
here), failed tasks (error > 5%), the supporting-fact hit rate of each hop, and training minutes.

    python recipes/babi_table.py RUNS [--seeds 1,2,3]   (RUNS/task{N}/seed{S} and RUNS/joint/seed{S}, each
                                                         with test.json; --seeds: only those seeds' runs)
"""
import argparse
import json
import statistics
from pathlib import Path

FAILED = 5.0  # a task fails above 5% test error (Weston et al. 2015)


def run_summary(run: Path) -> dict:
    """Test accuracy and hits per task, best valid accuracy and training minutes of one finished run."""
    scores = json.loads((run / "test.json").read_text(encoding="utf-8"))
    records = [json.loads(line) for line in (run / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    valid = [r for r in records if "valid_bleu" in r or "valid_accuracy" in r]
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    best = summary[f"best_valid_{summary['metric']}"]  # best.pt's: after linear start, when it ended
    return {"accuracy": {int(t): a for t, a in scores["accuracy"].items()},
            "hits": {int(t): h for t, h in scores["support_hits"].items()},
            "valid": best, "minutes": valid[-1]["elapsed"] / 60, "steps": valid[-1]["step"]}


def runs_of(folder: Path, seeds: set[int] | None = None) -> list[dict]:
    """The finished runs folder/seed{S} (of `seeds` only, when given)."""
    return [run_summary(r) for r in sorted(folder.glob("seed*"))
            if (r / "test.json").is_file() and (seeds is None or int(r.name[4:]) in seeds)]


def cell(values: list[float]) -> str:
    return f"{statistics.mean(values):.1f}" if values else "-"


def main(root: Path, seeds: set[int] | None = None) -> None:
    per_task = {t: runs_of(root / f"task{t}", seeds) for t in range(1, 21)}
    joint = runs_of(root / "joint", seeds)
    print("| task | per-task error, mean | per-task error, best valid | seeds | joint error, mean | joint error, best valid "
          "| hop 1 / 2 / 3 on a fact (per-task best) | minutes per run |")
    print("|---|---|---|---|---|---|---|---|")
    totals = {"pt_mean": [], "pt_best": [], "j_mean": [], "j_best": []}
    for t in range(1, 21):
        runs = per_task[t]
        best = max(runs, key=lambda r: r["valid"]) if runs else None
        pt_errors = [100 - r["accuracy"][t] for r in runs]
        j_errors = [100 - r["accuracy"][t] for r in joint if t in r["accuracy"]]
        j_best = max(joint, key=lambda r: r["valid"]) if joint else None
        row = [str(t), cell(pt_errors), f"{100 - best['accuracy'][t]:.1f}" if best else "-", str(len(runs)),
               cell(j_errors), f"{100 - j_best['accuracy'][t]:.1f}" if j_best and t in j_best["accuracy"] else "-",
               " / ".join(f"{h:.0f}" for h in best["hits"].get(t, [])) if best else "-",
               cell([r["minutes"] for r in runs])]
        print("| " + " | ".join(row) + " |")
        if best:
            totals["pt_mean"].append(statistics.mean(pt_errors))
            totals["pt_best"].append(100 - best["accuracy"][t])
        if j_errors:
            totals["j_mean"].append(statistics.mean(j_errors))
            totals["j_best"].append(100 - j_best["accuracy"][t])
    fails = {k: sum(e > FAILED for e in v) for k, v in totals.items()}
    print(f"| mean error (failed tasks) | {cell(totals['pt_mean'])} ({fails['pt_mean']}) | {cell(totals['pt_best'])} "
          f"({fails['pt_best']}) | | {cell(totals['j_mean'])} ({fails['j_mean']}) | {cell(totals['j_best'])} "
          f"({fails['j_best']}) | | joint: {cell([r['minutes'] for r in joint])} |")
    print(f"\nper-task models: {len(totals['pt_best'])} of 19 trainable tasks with a finished run; "
          f"joint runs: {len(joint)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--seeds", help="comma-separated seeds to count (default: every finished run)")
    args = parser.parse_args()
    main(args.runs, {int(s) for s in args.seeds.split(",")} if args.seeds else None)
