"""A person's review of the drafts (scripts/retrain.py review), and what follows approval.

Proposing reads the log's answered hand-overs and adds new drafts to the drafts file, keeping
earlier decisions. Reviewing approves, edits or rejects drafts, by flags or one prompt per
pending draft. Applying puts the approved drafts through the gate into a new knowledge-base
version (training/knowledge.py); the out-of-scope threshold is then tuned on the labelled
queries, and the embedder can train on the new pairs (training/loop.py's retrain path).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.log import LogTarget
from engine.settings import Settings
from retrieval.embedders import load_embedder
from retrieval.evaluation import read_queries, tune_and_store_threshold
from retrieval.store import read_snapshot
from training.drafts import Draft, decide, merge_drafts, read_drafts, write_drafts
from training.knowledge import KnowledgeOutcome, apply_drafts, propose_from_log

HELP = "[a]pprove, [r]eject, [e]dit, [s]kip, [q]uit"


def propose(
    settings: Settings, log: LogTarget, drafts_path: Path, *, held_out_share: float = 0.2
) -> tuple[list[Draft], int]:
    """Add drafts from the log to the drafts file; returns all drafts and how many are new."""
    embedder = load_embedder(settings.retrieval.embedder, batch_size=settings.retrieval.batch_size)
    entries = read_snapshot(settings.retrieval.kb_dir, settings.retrieval).entries
    proposed, _ = propose_from_log(log, entries, embedder, held_out_share=held_out_share)
    existing = read_drafts(drafts_path)
    merged = merge_drafts(existing, proposed)
    write_drafts(drafts_path, merged)
    return merged, len(merged) - len(existing)


def render(draft: Draft) -> str:
    """A draft in a few lines, for the terminal."""
    what = "new entry" if draft.kind == "new" else f"new questions for {draft.target}"
    lines = [f"{draft.id}  [{draft.status}]  {what}  (from {len(draft.conversations)} chats)"]
    if draft.kind == "new":
        lines.append(f"  Q: {draft.question}")
    lines += [f"  + {q}" for q in draft.alt_questions]
    lines.append(f"  A: {draft.answer}")
    return "\n".join(lines)


def review_interactively(
    drafts: Sequence[Draft], ask: Callable[[str], str], say: Callable[[str], None]
) -> list[Draft]:
    """One prompt per pending draft; `ask` reads a line (like `input`), `say` prints."""
    out = list(drafts)
    for draft in [d for d in drafts if d.status == "pending"]:
        say(render(draft))
        while True:
            choice = ask(f"{HELP}? ").strip().lower()[:1]
            if choice == "a":
                out = decide(out, draft.id, "approved")
            elif choice == "r":
                out = decide(out, draft.id, "rejected")
            elif choice == "e":
                question = ask(f"question [{draft.question}]: ").strip() or None
                answer = ask(f"answer [{draft.answer}]: ").strip() or None
                out = decide(out, draft.id, "approved", question=question, answer=answer)
            elif choice not in ("s", "q"):
                say(HELP)
                continue
            break
        if choice == "q":
            break
    return out


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying the approved drafts did."""

    outcome: KnowledgeOutcome
    threshold: str = ""
    embedder: str = ""


def apply_approved(
    settings: Settings,
    log: LogTarget,
    drafts_path: Path,
    *,
    queries: Path | None = None,
    held_out_share: float = 0.2,
    train_embedder: bool = False,
) -> Applied:
    """The approved drafts through the gate; when they go live, the threshold is tuned on
    `queries` and, with `train_embedder`, the embedder trains on the new pairs."""
    embedder = load_embedder(settings.retrieval.embedder, batch_size=settings.retrieval.batch_size)
    entries = read_snapshot(settings.retrieval.kb_dir, settings.retrieval).entries
    _, held = propose_from_log(log, entries, embedder, held_out_share=held_out_share)
    labelled = read_queries(queries) if queries is not None else []
    drafts = read_drafts(drafts_path)
    outcome = apply_drafts(settings, embedder, drafts, labelled, held)
    write_drafts(drafts_path, list(outcome.drafts))
    if outcome.kb_version is None:
        return Applied(outcome)
    threshold = embedder_note = ""
    if queries is not None:
        tuned = tune_and_store_threshold(
            settings.retrieval.kb_dir,
            embedder,
            settings.retrieval,
            queries,
            keep=settings.importing.keep_versions,
        )
        if tuned is not None:
            threshold = f"out-of-scope threshold tuned to {tuned[0]:.3f} ({tuned[1]})"
    if train_embedder:
        from training.loop import RunOptions, run_retraining

        options = RunOptions(log_db=log, what=("embedder",), progress=False, queries=queries)
        (result,) = run_retraining(settings, options).outcomes
        verdict = result.verdict.reason if result.verdict is not None else ""
        embedder_note = f"embedder: {result.note} {verdict}".strip()
    return Applied(outcome, threshold, embedder_note)
