"""Study the calibrated threshold rule on labelled data sets (README, "Out of the box").

One engine pass per set (default settings, every query as the first message of a new
conversation, as `evaluate.py answers` does) is cached with the held-out evidence of
`retrieval/calibration.py` under several fold assignments; the engine's first-message policy is
then replayed over the cached scores at any threshold. The replay is checked against the
engine's own outcome at the calibrated threshold (`replay_matches_engine`).

    python scripts/study_calibration.py --rules                 # candidate rules per set
    python scripts/study_calibration.py --stability --seeds 6   # spread over fold assignments
    python scripts/study_calibration.py --generalise --resamples 1000 --scale 2.3
    python scripts/study_calibration.py --sets clinc150 --thresholds 0.55 0.56  # a sweep

With none of --rules, --stability, --generalise, --thresholds it runs the first three.

Targets per set: answer_correct at most 0.03 under the run tuned on the same queries,
handoff_recall at least 0.85 (sets without out-of-scope queries: answer_correct only).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from _cli import add_common, setup
from tqdm import tqdm

from engine import Settings
from engine.evaluation import _final, evaluation_engine
from retrieval import calibration as cal
from retrieval import evaluation_kb, load_embedder, read_queries
from retrieval.evaluation import tune_kb_threshold, tune_threshold
from retrieval.knowledge_base import candidates, score_weights

DEV_SETS = ("hint3-sofmattress", "hint3-curekart", "hint3-powerplay11", "banking77", "clinc150")
FORCED = ("human_requested", "negative_sentiment")
# Bumped when what a set's cache holds changes.
CACHE_VERSION = 2
ANSWER_BOUND = 0.03
RECALL_TARGET = 0.85
# Margins tried by --generalise, and the shipped one.
GRID = tuple(round(float(m), 3) for m in np.arange(0.02, 0.0801, 0.005))
SHIPPED = cal.OUT_OF_SCOPE_MARGIN
Record = dict[str, Any]


def fold_evidence(snapshot: Any, embedder: Any, config: Any, weights: Any, seed: int) -> Record:
    """The two quantiles `cal.choose_threshold` reads, and its threshold, for one fold
    assignment (`seed` 0 is the one import uses)."""
    entries, row_entry, vectors = snapshot.entries, snapshot.row_entry, snapshot.vectors()
    texts = [q for entry in entries for q in entry.questions]
    folds = cal.hold_out(row_entry, config.calibration_questions, seed=seed)
    found = []
    for held, keep in folds:
        state = cal._reduced(entries, row_entry, vectors, keep, embedder)
        found += candidates(state, [texts[int(i)] for i in held], vectors[held], config)
    gold = row_entry[np.concatenate([h for h, _ in folds])].astype(np.int64)
    evidence = cal.Evidence(found, gold, True)
    own, other = [], []
    for f, g in zip(found, gold, strict=True):
        s = f.scores(weights)
        if len(s) > 1 and int(f.entries[int(np.argmax(s))]) == g:
            own.append(float(s.max()))
            other.append(float(s[f.entries != g].max()))
    return {
        "low": float(np.percentile(other, cal.OTHER_ENTRY_QUANTILE)),
        "high": float(np.percentile(own, cal.OWN_ENTRY_QUANTILE)),
        "other_q75": float(np.percentile(other, 75)),
        "choose_threshold": cal.choose_threshold(evidence, weights, config.default_threshold),
        "questions": len(found),
    }


async def engine_pass(data: Path, name: str, settings: Settings, seeds: int) -> Record:
    """Everything the study needs from one set: evidence, tuned threshold, engine outcomes."""
    config = settings.retrieval
    embedder = load_embedder(config.embedder, batch_size=config.batch_size)
    qpath = data / name / "queries_dev.jsonl"
    queries = read_queries(qpath)
    policy = settings.engine_config.policy
    with evaluation_kb(data / name / "faq.jsonl", embedder, config) as (kb, _):
        snapshot = kb.snapshot
        weights = score_weights(snapshot.meta, config)
        entries, row_entry, vectors = snapshot.entries, snapshot.row_entry, snapshot.vectors()
        ceiling = cal.off_topic_ceiling(entries, row_entry, vectors, embedder, config, weights)
        evidence = [
            fold_evidence(snapshot, embedder, config, weights, s)
            for s in tqdm(range(seeds), desc=f"{name}: fold assignments", unit="seed")
        ]
        tuned = tune_kb_threshold(kb, queries, qpath)
        out: Record = {
            "set": name,
            "threshold": kb.threshold,
            "tuned": None if tuned is None else tuned[0],
            "weights": [weights.centroid, weights.lexical],
            "floor": config.default_threshold,
            "off_topic_max": round(ceiling - cal.OUT_OF_SCOPE_MARGIN, 4),
            "evidence": evidence,
            "clarify_margin": policy.clarify_margin,
            "clarify_max_options": policy.clarify_max_options,
        }
        rows = []
        async with evaluation_engine(kb, settings.generator, settings.engine_config) as engine:
            for i, q in enumerate(tqdm(queries, desc=f"{name}: engine", unit="q")):
                conversation = await engine.conversation("evaluation", f"q{i}", new=True)
                final = await _final(engine, conversation, q.query)
                rows.append(
                    {
                        "gold": q.faq_id,
                        "action": final.action,
                        "code": final.reason_code,
                        "ids": [h.entry.id for h in final.hits],
                        "scores": [h.score for h in final.hits],
                        "options": [e.id for e in final.options],
                    }
                )
        out["rows"] = rows
    return out


def load_set(data: Path, name: str, cache: Path, settings: Settings, seeds: int) -> Record:
    """The cached engine pass for `name`, run first if missing or made from other files."""
    files = [data / name / "faq.jsonl", data / name / "queries_dev.jsonl"]
    for f in files:
        if not f.is_file():
            raise SystemExit(
                f"error: {f} not found (a set is a folder with faq.jsonl and "
                "queries_dev.jsonl; see --data and --sets)"
            )
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]
    path = cache / f"{name}.{digest}.s{seeds}.v{CACHE_VERSION}.pkl"
    if path.is_file():
        with path.open("rb") as fh:
            d = cast(Record, pickle.load(fh))
    else:
        d = asyncio.run(engine_pass(data, name, settings, seeds))
        cache.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            pickle.dump(d, fh)
    rows = d["rows"]
    k = max(1, max(len(r["scores"]) for r in rows))
    d["S"] = np.full((len(rows), k), -9.0)
    for i, r in enumerate(rows):
        d["S"][i, : len(r["scores"])] = r["scores"]
    d["forced"] = np.array([r["code"] in FORCED for r in rows])
    d["oos"] = np.array([r["gold"] is None for r in rows])
    d["goldpos"] = np.array(
        [r["ids"].index(r["gold"]) if r["gold"] in r["ids"] else -1 for r in rows]
    )
    return d


def replay(d: Record, t: float, idx: npt.NDArray[np.int64] | None = None) -> Record:
    """The engine's first-message policy (engine/policy.py) at threshold `t` on queries `idx`."""
    idx = np.arange(len(d["oos"])) if idx is None else idx
    s, m = d["S"][idx], d["clarify_max_options"]
    above = s[:, 0] >= t
    close = (s[:, :m] >= t) & ((s[:, :1] - s[:, :m]) < d["clarify_margin"])
    answer = ~d["forced"][idx] & above & (close.sum(1) <= 1)
    clarify = ~d["forced"][idx] & above & (close.sum(1) > 1)
    oos, gp = d["oos"][idx], d["goldpos"][idx]
    right = answer & (gp == 0)
    listed = clarify & (gp >= 0) & (gp < m) & close[np.arange(len(gp)), np.clip(gp, 0, m - 1)]
    n_in, n_oos = int((~oos).sum()), int(oos.sum())
    return {
        "answer_correct": float(right[~oos].sum() / n_in) if n_in else None,
        "handoff_recall": float((~answer[oos]).sum() / n_oos) if n_oos else None,
        "resolution_rate": float((right | listed).sum() / len(idx)),
        "n_in": n_in,
        "n_oos": n_oos,
    }


def engine_outcome(d: Record) -> Record:
    """answer_correct / handoff_recall / resolution_rate of the engine pass itself."""
    rows = d["rows"]
    ins = [r for r in rows if r["gold"] is not None]
    oos = [r for r in rows if r["gold"] is None]
    right = [r["action"] == "answer" and r["ids"][0] == r["gold"] for r in ins]
    listed = [r["action"] == "clarify" and r["gold"] in r["options"] for r in ins]
    return {
        "answer_correct": sum(right) / len(ins) if ins else None,
        "handoff_recall": sum(r["action"] != "answer" for r in oos) / len(oos) if oos else None,
        "resolution_rate": (sum(right) + sum(listed)) / len(rows),
    }


def tuned_on(d: Record, idx: npt.NDArray[np.int64]) -> float | None:
    """`tune_threshold` (as `--tune-queries`) on the engine's top hits of queries `idx`."""
    results = [
        SimpleNamespace(
            best=SimpleNamespace(
                score=float(d["S"][i, 0]), entry=SimpleNamespace(id=d["rows"][i]["ids"][0])
            )
            if d["rows"][i]["ids"]
            else None
        )
        for i in idx
    ]
    return tune_threshold(cast(Any, results), [d["rows"][i]["gold"] for i in idx])


def judge(d: Record, t: float, idx: npt.NDArray[np.int64] | None = None) -> Record:
    """The replay at `t`, the tuned run on the same queries, and whether both targets hold."""
    idx = np.arange(len(d["oos"])) if idx is None else idx
    r = replay(d, t, idx)
    tt = (
        d["tuned"]
        if len(idx) == len(d["oos"]) and (idx == np.arange(len(idx))).all()
        else tuned_on(d, idx)
    )
    ref = r if tt is None else replay(d, tt, idx)
    # A sample without in-scope queries has no answer_correct to fall short on.
    bound = None if ref["answer_correct"] is None else ref["answer_correct"] - ANSWER_BOUND
    ok_ac = bound is None or r["answer_correct"] >= bound - 1e-9
    ok_hr = r["handoff_recall"] is None or r["handoff_recall"] >= RECALL_TARGET - 1e-9
    return {
        **r,
        "threshold": t,
        "tuned_answer_correct": ref["answer_correct"],
        "tuned_handoff_recall": ref["handoff_recall"],
        "ok_answer": bool(ok_ac),
        "ok_recall": bool(ok_hr),
        "ok": bool(ok_ac and ok_hr),
        "slack_answer": None if bound is None else (r["answer_correct"] - bound) * r["n_in"],
        "slack_recall": None
        if r["handoff_recall"] is None
        else (r["handoff_recall"] - RECALL_TARGET) * r["n_oos"],
    }


def under(d: Record, t: float) -> float:
    """`t` under the off-topic ceiling and over the floor, as `cal.calibrate` applies them."""
    return float(max(d["floor"], min(round(t, 4), round(d["off_topic_max"] + SHIPPED, 4))))


def margin_rule(d: Record, ev: Record, margin: float) -> float:
    """The shipped rule with `margin` in place of OUT_OF_SCOPE_MARGIN (0.05 gives import's)."""
    low, high, floor = ev["low"], ev["high"], d["floor"]
    t = round(min((low + high) / 2, max(floor, low) + margin), 4)
    return float(max(floor, min(t, round(d["off_topic_max"] + margin, 4))))


def _margin_variant(margin: float) -> Callable[[Record, Record], float]:
    """The rule now with another margin over the median (the off-topic ceiling unchanged)."""

    def rule(d: Record, ev: Record) -> float:
        halfway = (ev["low"] + ev["high"]) / 2
        return under(d, min(halfway, max(d["floor"], ev["low"]) + margin))

    return rule


RULES: dict[str, Callable[[Record, Record], float]] = {
    "median (old)": lambda d, ev: float(max(d["floor"], round(ev["low"], 4))),
    "(a) median under the off-topic ceiling": lambda d, ev: under(d, ev["low"]),
    "(b) midway between median and halfway": lambda d, ev: under(
        d, (ev["low"] + (ev["low"] + ev["high"]) / 2) / 2
    ),
    "halfway under the ceiling": lambda d, ev: under(d, (ev["low"] + ev["high"]) / 2),
    "rule now": lambda d, ev: margin_rule(d, ev, SHIPPED),
    # Variants on the same evidence (README, "Other rules on the same fold evidence").
    "median plus 0.05": lambda d, ev: under(d, max(d["floor"], ev["low"]) + SHIPPED),
    "0.4 of the way from median to lower quartile": lambda d, ev: under(
        d, ev["low"] + 0.4 * (ev["high"] - ev["low"])
    ),
    "75th percentile of other entries under halfway": lambda d, ev: under(
        d, min((ev["low"] + ev["high"]) / 2, ev["other_q75"])
    ),
    **{f"margin {m} over the median": _margin_variant(m) for m in (0.04, 0.06)},
}


def rules_study(data: dict[str, Record]) -> Record:
    """Each candidate rule's threshold (shipped fold assignment) and replayed figures per set."""
    out: Record = {}
    for rule, f in RULES.items():
        per = {n: judge(d, f(d, d["evidence"][0])) for n, d in data.items()}
        out[rule] = {"sets": per, "sets_meeting_both": sum(r["ok"] for r in per.values())}
    return out


def stability_study(data: dict[str, Record]) -> Record:
    """The shipped rule's threshold over every cached fold assignment."""
    out = {}
    for n, d in data.items():
        ts = [margin_rule(d, ev, SHIPPED) for ev in d["evidence"]]
        out[n] = {
            "thresholds": ts,
            "low": min(ts),
            "high": max(ts),
            "meeting_both": sum(judge(d, t)["ok"] for t in ts),
        }
    return out


def choose_margin(data: dict[str, Record], idx: dict[str, npt.NDArray[np.int64]]) -> float:
    """The margin of GRID meeting both targets on most sets (ties: least shortfall, then the
    middle one)."""
    ranked = []
    for m in GRID:
        res = [
            judge(data[n], margin_rule(data[n], data[n]["evidence"][0], m), i)
            for n, i in idx.items()
        ]
        short = sum(
            (
                0.0
                if r["ok_answer"]
                else r["tuned_answer_correct"] - ANSWER_BOUND - r["answer_correct"]
            )
            + (
                0.0
                if r["handoff_recall"] is None
                else max(0.0, RECALL_TARGET - r["handoff_recall"])
            )
            for r in res
        )
        ranked.append((-sum(r["ok"] for r in res), round(short, 6), m))
    ranked.sort()
    tied = sorted(m for a, b, m in ranked if (a, b) == ranked[0][:2])
    return tied[len(tied) // 2]


def pooled(data: dict[str, Record], idx: dict[str, npt.NDArray[np.int64]]) -> Record:
    """answer_correct over all in-scope and handoff_recall over all out-of-scope queries of
    every set together, at the shipped rule and at each set's tuned threshold."""
    sums = dict.fromkeys(("right", "tuned_right", "n_in", "handed", "tuned_handed", "n_oos"), 0.0)
    for n, i in idx.items():
        r = judge(data[n], margin_rule(data[n], data[n]["evidence"][0], SHIPPED), i)
        sums["right"] += (r["answer_correct"] or 0.0) * r["n_in"]
        sums["tuned_right"] += (r["tuned_answer_correct"] or 0.0) * r["n_in"]
        sums["n_in"] += r["n_in"]
        if r["n_oos"]:
            sums["handed"] += r["handoff_recall"] * r["n_oos"]
            sums["tuned_handed"] += r["tuned_handoff_recall"] * r["n_oos"]
            sums["n_oos"] += r["n_oos"]
    out: Record = {
        "answer_correct": sums["right"] / sums["n_in"],
        "tuned_answer_correct": sums["tuned_right"] / sums["n_in"],
        "handoff_recall": sums["handed"] / sums["n_oos"] if sums["n_oos"] else None,
        "tuned_handoff_recall": sums["tuned_handed"] / sums["n_oos"] if sums["n_oos"] else None,
    }
    out["ok"] = out["answer_correct"] >= out["tuned_answer_correct"] - ANSWER_BOUND - 1e-9 and (
        out["handoff_recall"] is None or out["handoff_recall"] >= RECALL_TARGET - 1e-9
    )
    return out


def generalise_study(data: dict[str, Record], resamples: int, scale: float) -> Record:
    """Split-half, leave-one-set-out and bootstrap at `scale` times each set's size."""
    names = list(data)
    full = {n: np.arange(len(d["oos"])) for n, d in data.items()}
    splits = [{n: full[n] % 2 == 0 for n in names}]
    for s in range(5):
        rng = np.random.default_rng(1000 + s)
        masks = {}
        for n in names:
            k = len(full[n])
            mask = np.zeros(k, bool)
            mask[rng.permutation(k)[: k // 2]] = True
            masks[n] = mask
        splits.append(masks)
    half: Record = {n: {"chosen": 0, "shipped": 0} for n in names}
    margins, all_chosen, all_shipped = [], 0, 0
    for masks in tqdm(splits, desc="split-half", unit="split"):
        for flip in (False, True):
            seen = {n: np.flatnonzero(m ^ flip) for n, m in masks.items()}
            unseen = {n: np.flatnonzero(~(m ^ flip)) for n, m in masks.items()}
            m = choose_margin(data, seen)
            margins.append(m)
            oks_c = [
                judge(data[n], margin_rule(data[n], data[n]["evidence"][0], m), unseen[n])["ok"]
                for n in names
            ]
            oks_s = [
                judge(data[n], margin_rule(data[n], data[n]["evidence"][0], SHIPPED), unseen[n])[
                    "ok"
                ]
                for n in names
            ]
            for n, c, s in zip(names, oks_c, oks_s, strict=True):
                half[n]["chosen"] += c
                half[n]["shipped"] += s
            all_chosen += all(oks_c)
            all_shipped += all(oks_s)
    loso = {}
    for n in names:
        m = choose_margin(data, {k: full[k] for k in names if k != n})
        loso[n] = {
            "margin": m,
            "ok": judge(data[n], margin_rule(data[n], data[n]["evidence"][0], m))["ok"],
        }
    boot = {}
    for n in tqdm(names, desc="bootstrap", unit="set"):
        d, rng = data[n], np.random.default_rng(7)
        size = round(scale * len(full[n]))
        t = margin_rule(d, d["evidence"][0], SHIPPED)
        counts = {"ok_answer": 0, "ok_recall": 0, "ok": 0}
        for _ in range(resamples):
            r = judge(d, t, rng.integers(0, len(full[n]), size))
            for key in counts:
                counts[key] += r[key]
        boot[n] = {key: v / resamples for key, v in counts.items()} | {"size": size}
    rng = np.random.default_rng(7)
    sizes = {n: round(scale * len(full[n])) for n in names}
    draws = [
        pooled(data, {n: rng.integers(0, len(full[n]), sizes[n]) for n in names})
        for _ in tqdm(range(resamples), desc="pooled bootstrap", unit="resample")
    ]
    gap = [x["answer_correct"] - x["tuned_answer_correct"] for x in draws]
    return {
        "pooled": pooled(data, full)
        | {
            "bootstrap_ok": sum(x["ok"] for x in draws) / resamples,
            "bootstrap_gap_p5_p95": [float(np.percentile(gap, 5)), float(np.percentile(gap, 95))],
        },
        "split_half": {
            "pairs": len(margins),
            "margins": margins,
            "sets": half,
            "all_chosen": all_chosen,
            "all_shipped": all_shipped,
        },
        "leave_one_set_out": loso,
        "bootstrap": boot | {"all_product": float(np.prod([b["ok"] for b in boot.values()]))},
    }


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common(parser)
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("../shared/data"),
        help="folder of sets, each with faq.jsonl and queries_dev.jsonl",
    )
    parser.add_argument("--sets", nargs="+", default=list(DEV_SETS), help="set folders to study")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path("var/calibration_study"),
        help="where each set's engine pass is kept (reused while its files match)",
    )
    parser.add_argument("--seeds", type=int, default=6, help="fold assignments cached per set")
    parser.add_argument("--rules", action="store_true", help="candidate threshold rules per set")
    parser.add_argument("--stability", action="store_true", help="threshold over fold assignments")
    parser.add_argument(
        "--generalise", action="store_true", help="split-half, leave-one-set-out, bootstrap"
    )
    parser.add_argument(
        "--thresholds",
        type=float,
        nargs="+",
        metavar="T",
        help="replay the engine at these fixed thresholds (a sweep)",
    )
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples per set")
    parser.add_argument("--scale", type=float, default=2.3, help="bootstrap size, times the set's")
    parser.add_argument("--json", action="store_true", help="print the results as JSON, last line")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        parser.error(f"--data {args.data} is not a folder (the dev sets live in ../shared/data)")
    if args.seeds < 1 or args.resamples < 1 or args.scale <= 0:
        parser.error("--seeds and --resamples must be at least 1, --scale above 0")
    settings = setup(args)
    if not (args.rules or args.stability or args.generalise or args.thresholds):
        args.rules = args.stability = args.generalise = True
    data = {n: load_set(args.data, n, args.cache, settings, args.seeds) for n in args.sets}
    result: Record = {"sets": {}}
    for n, d in data.items():
        shipped = d["evidence"][0]["choose_threshold"]
        engine = engine_outcome(d)
        again = replay(d, d["threshold"])
        result["sets"][n] = {
            "threshold": d["threshold"],
            "tuned": d["tuned"],
            "weights": d["weights"],
            "median_other": round(d["evidence"][0]["low"], 4),
            "lower_quartile_own": round(d["evidence"][0]["high"], 4),
            "off_topic_max": d["off_topic_max"],
            "engine": engine,
            "replay_matches_engine": all(
                (engine[k] is None and again[k] is None) or abs(engine[k] - again[k]) < 1e-9
                for k in engine
            ),
            "rule_matches_import": margin_rule(d, d["evidence"][0], SHIPPED) == d["threshold"]
            and under(d, shipped) == d["threshold"],
        }
    if args.thresholds:
        result["sweep"] = {
            n: {str(t): judge(d, t) for t in args.thresholds} for n, d in data.items()
        }
    if args.rules:
        result["rules"] = rules_study(data)
    if args.stability:
        result["stability"] = stability_study(data)
    if args.generalise:
        result["generalise"] = generalise_study(data, args.resamples, args.scale)
    if not args.json:
        for n, s in result["sets"].items():
            print(
                f"{n}: threshold {s['threshold']:.4f} tuned {s['tuned']}"
                f" replay matches engine {s['replay_matches_engine']}"
            )
        for rule, r in result.get("rules", {}).items():
            cells = [
                f"{n} {x['answer_correct']:.3f} / {_figure(x['handoff_recall'])}"
                f" ({x['threshold']:.4f})" + (" ✓" if x["ok"] else "")
                for n, x in r["sets"].items()
            ]
            print(f"{rule}: " + "; ".join(cells) + f"; meeting both {r['sets_meeting_both']}")
        for n, s in result.get("stability", {}).items():
            print(
                f"stability {n}: {s['low']:.4f}-{s['high']:.4f},"
                f" meeting both {s['meeting_both']}/{len(s['thresholds'])}"
            )
        for n, sweep in result.get("sweep", {}).items():
            for t, x in sweep.items():
                print(f"sweep {n} {t}: {x['answer_correct']:.3f} / {_figure(x['handoff_recall'])}")
        if "generalise" in result:
            print("generalise", json.dumps(result["generalise"]))
    if args.json:
        print(json.dumps(result, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
