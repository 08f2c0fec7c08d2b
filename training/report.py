"""The Markdown report each retraining run leaves in its folder, with PNG loss plots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from training.gate import Verdict


@dataclass(slots=True)
class KindOutcome:
    """What happened to one model kind in a run."""

    kind: str
    trained: bool
    note: str = ""
    before: dict[str, float | None] = field(default_factory=dict)
    after: dict[str, float | None] = field(default_factory=dict)
    verdict: Verdict | None = None
    version: str | None = None
    losses: list[tuple[int, float]] = field(default_factory=list)
    eval_losses: list[tuple[int, float]] = field(default_factory=list)


def plot_losses(
    path: Path,
    title: str,
    losses: Sequence[tuple[int, float]],
    eval_losses: Sequence[tuple[int, float]] = (),
) -> Path:
    """Write a PNG of training (and validation) loss by step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5))
    if losses:
        axes.plot(*zip(*losses, strict=True), label="training loss")
    if eval_losses:
        axes.plot(*zip(*eval_losses, strict=True), marker="o", label="validation loss")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def write_report(
    run_dir: Path,
    counts: dict[str, dict[str, int]],
    outcomes: Sequence[KindOutcome],
    *,
    dry_run: bool = False,
) -> Path:
    """Write `report.md` (and a loss plot per trained kind) into `run_dir`; returns the report."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# Retraining run {run_dir.name}", ""]
    if dry_run:
        lines += ["Dry run: nothing was trained.", ""]
    lines += ["## Data", "", "| set | train | validation |", "|---|---:|---:|"]
    lines += [f"| {name} | {c['train']} | {c['validation']} |" for name, c in counts.items()]
    for outcome in outcomes:
        lines += ["", f"## {outcome.kind}", ""]
        if outcome.note:
            lines += [outcome.note, ""]
        if not outcome.trained:
            continue
        metrics = sorted(set(outcome.before) | set(outcome.after))
        lines += ["| metric | current | new |", "|---|---:|---:|"]
        lines += [
            f"| {m} | {_fmt(outcome.before.get(m))} | {_fmt(outcome.after.get(m))} |"
            for m in metrics
        ]
        if outcome.verdict is not None:
            action = "promoted" if outcome.verdict.promote else "not promoted"
            version = (
                f" as {outcome.version}" if outcome.version and outcome.verdict.promote else ""
            )
            lines += ["", f"**{action}{version}**: {outcome.verdict.reason}"]
        if outcome.losses or outcome.eval_losses:
            plot = plot_losses(
                run_dir / f"{outcome.kind}-loss.png",
                f"{outcome.kind} loss",
                outcome.losses,
                outcome.eval_losses,
            )
            lines += ["", f"![{outcome.kind} loss]({plot.name})"]
    path = run_dir / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
