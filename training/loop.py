"""One retraining run: export → train what has enough data → evaluate → gate → promote → report."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from engine.generators.models import resolve_model_dir
from engine.log import LogTarget
from engine.sentiment.base import SentimentModel, load_sentiment
from engine.sentiment.classifier import ClassifierSentiment
from engine.sentiment.evaluation import LabelledText
from engine.settings import Settings
from retrieval.embedders import Embedder, load_embedder
from retrieval.entries import FaqEntry
from retrieval.evaluation import read_queries, tune_and_store_threshold
from retrieval.store import (
    IndexMissing,
    current_version,
    kept_versions,
    read_changes,
    read_snapshot,
    version_entries,
)
from training.data import QueryPair, TrainingSets, export_training_sets
from training.gate import (
    MIN_ITEMS,
    Difference,
    Verdict,
    judge_adapters,
    judge_paired,
    paired_bootstrap,
)
from training.registry import ModelRegistry, ModelVersion
from training.report import KindOutcome, write_report

log = logging.getLogger(__name__)

ALL_KINDS = ("embedder", "lora", "sentiment")


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What one run of `scripts/retrain.py` was asked to do."""

    # The conversation log: a LogConfig, an SQLite file or a database URL.
    log_db: LogTarget
    what: tuple[str, ...] = ALL_KINDS
    dry_run: bool = False
    labels: tuple[Path, ...] = ()
    progress: bool = True
    # Labelled queries ({"query", "faq_id"}) the embedder gate scores too; never trained on.
    # The log's held-out pairs are only answers the bot already got right, so without these
    # the gate cannot see a loss on the questions it gets wrong.
    queries: Path | None = None


@dataclass(slots=True)
class RunSummary:
    """Where the run wrote its files and what happened to each kind."""

    run_dir: Path
    report: Path
    counts: dict[str, dict[str, int]]
    outcomes: list[KindOutcome] = field(default_factory=list)


def run_retraining(settings: Settings, options: RunOptions) -> RunSummary:
    """Run the whole loop once; models that measure worse than the live ones are not promoted."""
    unknown = set(options.what) - set(ALL_KINDS)
    if unknown:
        raise ValueError(f"unknown kind(s) {sorted(unknown)}; valid: {', '.join(ALL_KINDS)}")
    config = settings.training
    run_dir = config.runs_dir / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    entries = _kb_entries(settings)
    sets = export_training_sets(
        options.log_db,
        kb_entries=entries,
        kb_changes=read_changes(settings.retrieval.kb_dir),
        kb_versions=partial(version_entries, settings.retrieval.kb_dir),
        validation_share=config.validation_share,
    )
    sets.write(run_dir / "data")
    counts = sets.counts()
    registry = ModelRegistry(config.models_dir)
    outcomes = []
    for kind in options.what:
        enough, note = _enough(kind, sets, settings, options)
        if options.dry_run or not enough:
            verb = "would train" if enough else "not trained"
            outcomes.append(KindOutcome(kind, False, f"{verb}: {note}"))
            continue
        outcome = _TRAINERS[kind](settings, sets, entries, run_dir, registry, options)
        outcomes.append(outcome)
    report = write_report(run_dir, counts, outcomes, dry_run=options.dry_run)
    return RunSummary(run_dir, report, counts, outcomes)


def _enough(
    kind: str, sets: TrainingSets, settings: Settings, options: RunOptions
) -> tuple[bool, str]:
    config = settings.training
    if kind == "embedder":
        n = sum(p.source == "log" for p in sets.pairs.train)
        need = config.min_pairs
        what = "logged question pairs"
        held_out, items = len(sets.pairs.validation), "queries"
        if n >= need and options.queries is not None:
            held_out += sum(q.faq_id is not None for q in read_queries(options.queries))
    elif kind == "lora":
        n, need, what = len(sets.dialogues.train), config.min_dialogues, "dialogue examples"
        held_out, items = len(sets.dialogues.validation), "dialogues"
    else:
        n, need, what = len(sets.sentiment.train), config.min_sentiment, "labelled messages"
        held_out, items = len(sets.sentiment.validation), "messages"
    if n >= need and held_out < config.min_held_out:
        # On no held-out items a new model would be scored on its own training data, and on a
        # handful the bootstrap shows nothing; decided before training, so no minutes go into a
        # model the gate could never judge.
        found = f"only {held_out}" if held_out else "no"
        return False, (
            f"{found} held-out {items} to compare the {kind} models on (needs "
            f"{config.min_held_out}, [training] min_held_out; {n} {what} for training); "
            f"kept the current {kind} model"
        )
    return n >= need, f"{n} {what} for training (needs {need})"


def _kb_entries(settings: Settings) -> tuple[FaqEntry, ...]:
    try:
        return read_snapshot(settings.retrieval.kb_dir, settings.retrieval).entries
    except IndexMissing:
        return ()


def _train_lora(
    settings: Settings,
    sets: TrainingSets,
    entries: Sequence[FaqEntry],
    run_dir: Path,
    registry: ModelRegistry,
    options: RunOptions,
) -> KindOutcome:
    from training.lora import LoraTrainingConfig, train_lora

    config = settings.training
    base = resolve_model_dir(settings.generator.model_path, settings.generator.export_dir)
    current, other_base = live_adapter_for(registry, base)
    result = train_lora(
        base,
        sets.dialogues.train,
        sets.dialogues.validation,
        out=run_dir / "lora",
        entries={e.id: e for e in entries},
        config=LoraTrainingConfig(rank=config.lora_rank, epochs=config.lora_epochs),
        progress=options.progress,
        current_adapter=current.path if current is not None else None,
    )
    after = result.metrics()
    # The bar is what answers now on the same held-out slice: the live adapter, else the base.
    old_items = result.base_item_losses
    if current is not None:
        before: dict[str, float | None] = {"validation_loss": result.current_validation_loss}
        old_items = result.current_item_losses or []
        note = f"current = live adapter {current.version}, on the same held-out slice"
    else:
        before = {
            "validation_loss": result.base_validation_loss,
            "answer_overlap": result.answer_overlap_base,
        }
        note = "current = the base model without an adapter, on the same held-out slice"
        if other_base:
            note += f" ({other_base})"
    verdict = judge_adapters(
        old_items, result.item_losses, tolerance=config.margin, min_items=config.min_held_out
    )
    outcome = KindOutcome(
        "lora", True, note, before, after, verdict, None, result.losses, result.eval_losses
    )
    metadata = {
        "base_model": result.base_model,
        "data_hash": sets.data_hash("dialogues"),
        "counts": {"train": result.train_examples, "validation": result.validation_examples},
        "metrics": after,
    }
    return _store(registry, "lora", result.out, metadata, outcome)


def live_adapter_for(registry: ModelRegistry, base: Path) -> tuple[ModelVersion | None, str]:
    """The live adapter, if it was trained on `base`; else None and why it cannot be the bar.

    An adapter only fits the model it was trained on: after `[generator] model_path` changes,
    the live one cannot even be loaded on the new base, so the new adapter is measured against
    the base model alone.
    """
    current = registry.current("lora")
    trained_on = current.metadata.get("base_model") if current is not None else None
    if current is None or not trained_on or Path(trained_on).resolve() == base.resolve():
        return current, ""
    log.warning("live adapter %s was trained on %s, not on %s", current.version, trained_on, base)
    return None, f"the live adapter {current.version} was trained on {trained_on}, not on {base}"


def _train_sentiment(
    settings: Settings,
    sets: TrainingSets,
    entries: Sequence[FaqEntry],
    run_dir: Path,
    registry: ModelRegistry,
    options: RunOptions,
) -> KindOutcome:
    from training.sentiment import labelled_rows, retrain_sentiment

    embedder = load_embedder(settings.retrieval.embedder, batch_size=settings.retrieval.batch_size)
    live = registry.current_path("sentiment")
    current: SentimentModel
    if live:
        current = ClassifierSentiment.load(live, embedder)
    elif settings.sentiment.model == "llm":
        from engine.generators import load_generator

        # The llm sentiment asks the configured generator; the new classifier must beat it.
        current = load_sentiment(settings.sentiment, load_generator(settings.generator))
    else:
        current = load_sentiment(settings.sentiment)
    validation = [LabelledText(r.text, r.label) for r in sets.sentiment.validation]
    result = retrain_sentiment(
        labelled_rows(sets.sentiment.train, options.labels), validation, embedder, current=current
    )
    before: dict[str, float | None] = dict(result.before or {})
    after: dict[str, float | None] = dict(result.after)
    verdict = _paired_verdict(
        "sentiment",
        paired_bootstrap("accuracy", result.before_correct or [], result.after_correct)
        if result.before_correct is not None
        else None,
        (),
        settings.training.margin,
        settings.training.min_held_out,
    )
    out = run_dir / "sentiment"
    result.model.save(out)
    outcome = KindOutcome("sentiment", True, f"current = {current.name}", before, after, verdict)
    metadata = {
        "base_model": embedder.name,
        "data_hash": sets.data_hash("sentiment"),
        "counts": {"train": result.train_rows, "validation": result.validation_rows},
        "metrics": after,
    }
    return _store(registry, "sentiment", out, metadata, outcome)


def _train_embedder(
    settings: Settings,
    sets: TrainingSets,
    entries: Sequence[FaqEntry],
    run_dir: Path,
    registry: ModelRegistry,
    options: RunOptions,
) -> KindOutcome:
    from training.embedder import EmbedderTrainingConfig, train_embedder
    from training.paraphrases import LoggedQuery

    if not entries:
        return KindOutcome("embedder", False, "not trained: no knowledge base to train against")
    live = registry.current_path("embedder")
    base = str(live) if live else settings.retrieval.embedder
    known = {e.id for e in entries}
    logged = [
        LoggedQuery(p.query, p.faq_id, p.id)
        for p in sets.pairs.train
        if p.source == "log" and p.faq_id in known
    ]
    out = run_dir / "embedder"
    result = train_embedder(
        base,
        entries,
        logged,
        out=out,
        config=EmbedderTrainingConfig(epochs=settings.training.embedder_epochs),
        progress=options.progress,
    )
    held_out = [p for p in sets.pairs.validation if p.faq_id in known]
    if options.queries is not None:
        held_out += [
            QueryPair(f"query-{number}", None, q.query, q.faq_id, "queries")
            for number, q in enumerate(read_queries(options.queries))
            if q.faq_id is not None and q.faq_id in known
        ]
    before, after, verdict = judge_embedders(
        load_embedder(base),
        load_embedder(str(out)),
        entries,
        held_out,
        tolerance=settings.training.margin,
        min_items=settings.training.min_held_out,
    )
    outcome = KindOutcome(
        "embedder",
        True,
        f"current = {base}",
        dict(before),
        dict(after),
        verdict,
        None,
        result.losses,
    )
    metadata = {
        "base_model": base,
        "data_hash": result.data_hash,
        "counts": {"pairs": result.pairs, "validation": len(held_out)},
        "metrics": after,
    }
    outcome = _store(registry, "embedder", out, metadata, outcome)
    if verdict.promote:
        from training.kb import reembed_knowledge_base

        promoted = registry.current_path("embedder")
        assert promoted is not None
        embedder = load_embedder(str(promoted), batch_size=settings.retrieval.batch_size)
        version = reembed_knowledge_base(settings, embedder)
        outcome.note += f"; knowledge base re-embedded as {version}"
        if options.queries is not None:
            # Scores move with the embedder: the old out-of-scope threshold no longer fits.
            retuned = _retune_threshold(settings, embedder, options.queries)
            if retuned is not None:
                outcome.note += f"; {retuned}"
    return outcome


@dataclass(frozen=True, slots=True)
class RolledBack:
    """What a rollback made live again."""

    version: ModelVersion
    # For the embedder: the knowledge-base version re-embedded with it, and its threshold.
    kb_version: str | None = None
    threshold_note: str = ""


def roll_back(settings: Settings, kind: str, *, queries: Path | None = None) -> RolledBack:
    """Make the version live before the current one of `kind` live again.

    Rolling back the embedder re-embeds the knowledge base with the restored one (a running
    engine follows it). Its out-of-scope threshold is tuned on `queries` when given, else the
    one last tuned for that embedder is restored from a kept knowledge-base version, else it is
    calibrated again for the restored vectors and the note says to tune it. Raises ValueError
    when there is nothing earlier to go back to.
    """
    version = ModelRegistry(settings.training.models_dir).rollback(kind)
    if kind != "embedder":
        return RolledBack(version)
    from training.kb import BEFORE_REEMBEDDING, reembed_knowledge_base

    kb_dir = settings.retrieval.kb_dir
    embedder = load_embedder(str(version.path), batch_size=settings.retrieval.batch_size)
    tuned_before = next(
        (
            meta
            for meta in kept_versions(kb_dir)
            if meta.embedder == embedder.name
            and meta.threshold_source.startswith("tuned")
            and not meta.threshold_source.endswith(BEFORE_REEMBEDDING)
        ),
        None,
    )
    threshold = None
    note = (
        "no out-of-scope threshold was tuned for the restored embedder: calibrated again at "
        "re-embedding; tune it on labelled queries with --queries FILE"
    )
    if tuned_before is not None:
        source = f"{tuned_before.threshold_source} (restored from {tuned_before.version})"
        threshold = (tuned_before.threshold, source)
        note = f"out-of-scope threshold {threshold[0]:.3f} restored from {tuned_before.version}"
    kb_version = reembed_knowledge_base(settings, embedder, threshold=threshold)
    if queries is not None:
        retuned = _retune_threshold(settings, embedder, queries)
        if retuned is not None:
            return RolledBack(version, current_version(kb_dir), retuned)
    return RolledBack(version, kb_version, note)


def _retune_threshold(settings: Settings, embedder: Embedder, queries: Path) -> str | None:
    """Tune the live knowledge base's out-of-scope threshold on `queries`; what was done, or
    None when the queries hold no out-of-scope examples."""
    tuned = tune_and_store_threshold(
        settings.retrieval.kb_dir,
        embedder,
        settings.retrieval,
        queries,
        keep=settings.importing.keep_versions,
    )
    if tuned is None:
        return None
    return f"out-of-scope threshold re-tuned to {tuned[0]:.3f} ({tuned[1]})"


def judge_embedders(
    old: Embedder,
    new: Embedder,
    entries: Sequence[FaqEntry],
    held_out: Sequence[QueryPair],
    *,
    tolerance: float = 0.0,
    min_items: int = MIN_ITEMS,
) -> tuple[dict[str, float | None], dict[str, float | None], Verdict]:
    """The embedder gate: both embedders rank `entries` for the same held-out queries; the new
    one is promoted only when its margins rose at 95% confidence and its misses did not, on at
    least `min_items` queries."""
    old_hits, old_margins = ranking_items(old, entries, held_out)
    new_hits, new_margins = ranking_items(new, entries, held_out)
    before = {"recall_at_1": _mean(old_hits), "margin": _mean(old_margins)}
    after = {"recall_at_1": _mean(new_hits), "margin": _mean(new_margins)}
    if not held_out:
        return before, after, _paired_verdict("embedder", None, (), tolerance, min_items)
    # The margin (the right entry's best question over the best wrong one) moves on every
    # query, so it can tell two embedders apart on a slice where recall@1 ties; a rise of
    # misses at the same confidence refuses the new one whatever its margins.
    misses = paired_bootstrap("miss_at_1", [1 - h for h in old_hits], [1 - h for h in new_hits])
    margin = paired_bootstrap("margin", old_margins, new_margins)
    return before, after, _paired_verdict("embedder", margin, [misses], tolerance, min_items)


def ranking_items(
    embedder: Embedder, entries: Sequence[FaqEntry], pairs: Sequence[QueryPair]
) -> tuple[list[float], list[float]]:
    """Per held-out query: 1.0 when its nearest indexed question belongs to its entry, and its
    margin, the best similarity to its entry's questions less the best to any other entry's."""
    if not pairs:
        return [], []
    texts = [q for e in entries for q in e.questions]
    owner = np.array([i for i, e in enumerate(entries) for _ in e.questions])
    rows = np.asarray(embedder.encode(texts), dtype=np.float32)
    queries = np.asarray(embedder.encode([p.query for p in pairs]), dtype=np.float32)
    sims = queries @ rows.T
    position = {e.id: i for i, e in enumerate(entries)}
    hits, margins = [], []
    for sim, pair in zip(sims, pairs, strict=True):
        mine = owner == position[pair.faq_id] if pair.faq_id in position else owner < 0
        right = float(sim[mine].max()) if mine.any() else -1.0
        wrong = float(sim[~mine].max()) if (~mine).any() else -1.0
        hits.append(float(right > wrong))
        margins.append(right - wrong)
    return hits, margins


def recall_at_1(
    embedder: Embedder, entries: Sequence[FaqEntry], pairs: Sequence[QueryPair]
) -> float | None:
    """Share of held-out logged queries whose nearest indexed question belongs to their entry."""
    return _mean(ranking_items(embedder, entries, pairs)[0])


def _mean(values: Sequence[float]) -> float | None:
    return round(float(np.mean(values)), 4) if len(values) else None


def _paired_verdict(
    kind: str,
    better: Difference | None,
    worse: Sequence[Difference],
    tolerance: float,
    min_items: int,
) -> Verdict:
    """The paired-bootstrap gate of `kind`; on fewer than `min_items` held-out items nothing
    is promoted."""
    if better is None:
        return Verdict(
            False, f"no held-out items to compare the {kind} models on; kept the current one"
        )
    return judge_paired(
        better, worse, tolerance=tolerance, keeping=f"the current {kind} model", min_items=min_items
    )


def _store(
    registry: ModelRegistry, kind: str, folder: Path, metadata: dict[str, Any], outcome: KindOutcome
) -> KindOutcome:
    version = registry.add(kind, folder, metadata)
    outcome.version = version.version
    if outcome.verdict is not None and outcome.verdict.promote:
        registry.promote(kind, version.version)
        log.info("promoted %s version=%s", kind, version.version)
    else:
        log.info("kept current %s; new version=%s stored, not live", kind, version.version)
    return outcome


_TRAINERS = {"embedder": _train_embedder, "lora": _train_lora, "sentiment": _train_sentiment}
