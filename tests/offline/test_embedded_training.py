"""`train-embedded` on a small fixture: test rows never used, experts that work, a manifest."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.params import Calibration, load_params, with_calibration
from service.core.chain import EvaluationChain
from service.core.embedder import Embedder
from service.core.inputs import Message, PreferencePair, ScoringTask
from service.core.rows import Row, file_sha256
from service.engine.backend import SampleGroup
from service.engine.parsing import parse_chain
from service.offline.embedded_training.calibration import _bands, held_out
from service.offline.embedded_training.groups import _budget
from service.offline.embedded_training.training import (
    Corpus,
    TrainConfig,
    centroids,
    cv_folds,
    params_version,
    train,
)
from tests.helpers import TOPICS, synthetic_rows, write_jsonl

pytestmark = pytest.mark.slow  # real subprocesses or learning: the full tier only


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("train")
    rows = synthetic_rows(per_user=20, test_per_user=6)
    # Poison the test split: if test rows were used, `terse` would learn to like long answers.
    for row in rows:
        if row["split"] == "test" and row["user_id"] == "terse":
            row["chosen"], row["rejected"] = row["rejected"], row["chosen"]
    data = write_jsonl(root / "rows.jsonl", rows)
    out = root / "params.npz"
    train([data], out, embedder, TrainConfig(min_pairs=10), progress=False)
    return data, out


def test_manifest_records_the_data_and_only_train_rows(trained: tuple[Path, Path]) -> None:
    data, out = trained
    params = load_params(out)
    assert params.manifest["data"][0]["sha256"] == file_sha256(data)
    assert params.manifest["data"][0]["rows_used"] == 40  # 2 users x 20 train/val rows
    assert [(e.kind, e.n_pairs) for e in params.experts] == [
        ("user", 20),
        ("user", 20),
        ("population", 40),
    ]
    assert params.embedder == "minilm" and params.content_dim == 768
    assert out.stat().st_size < 5_000_000
    search = params.manifest["calibration_search"]
    # No debates named: the val rows are the held-out ones.
    assert search["held_out_rows"] == {"synthetic": 8} and search["cases"] == 8
    assert 0.0 <= search["best_accuracy"]["synthetic"] <= 1.0
    assert 0.0 <= search["best_accuracy_no_history"]["synthetic"] <= 1.0
    assert set(search["best_cost_by_history_size"]) <= {"synthetic@1", "synthetic@3", "synthetic@8"}
    assert params.calibration.population_bias == search["best"]["population_bias"]
    assert params.calibration.feedback_gain == search["feedback_gain"]
    assert search["safe_candidates"] >= 1  # a history never costs val accuracy under the pick
    # A trust for one pair and one for three or more; one dataset: no centroids to vote with.
    assert [e[:2] for e in params.calibration.by_population] == [("synthetic", 1), ("synthetic", 3)]
    assert set(search["by_population"]) == {"synthetic@1+", "synthetic@3+"}
    assert params.centroids == {}


def test_rows_that_name_a_debate_are_held_out_by_whole_debates() -> None:
    """As the test split holds out debates, calibration holds out a third of each dataset's
    debates (train and val rows alike); datasets without debates hold out their val rows."""

    def row(user: str, split: str, topic: str | None) -> Row:
        extras = {"topic": topic} if topic else {}
        return Row(user, "c", (Message("user", "q"),), "a", "b", split, extras)

    rows = [row(f"w{i % 5}", "train" if i % 4 else "val", f"t{i % 6}") for i in range(60)]
    rows += [row("p", "train", None), row("p", "val", None)]
    corpus = SimpleNamespace(rows=rows, dataset=["ukp"] * 60 + ["dsp"] * 2)
    held = held_out(corpus)
    topics = {r.extras["topic"] for r, h in zip(rows[:60], held[:60], strict=True) if h}
    assert len(topics) == 2  # a third of 6 debates, every row of each
    assert all(
        h == (r.extras["topic"] in topics) for r, h in zip(rows[:60], held[:60], strict=True)
    )
    assert list(held[60:]) == [False, True]


def test_cross_validation_holds_out_whole_debates() -> None:
    config = TrainConfig(cv_folds=3)
    debates = np.array([f"d{i % 7}" for i in range(200)])
    folds = cv_folds(200, config, debates)
    assert sorted(np.concatenate(folds).tolist()) == list(range(200))
    seen = [set(debates[f]) for f in folds]
    assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1 :])
    # Fewer debates than folds: plain folds over pairs.
    assert len(cv_folds(200, config, np.array(["a", "b"] * 100))) == 3


def test_datasets_with_few_users_keep_them_and_the_rest_share_what_is_left() -> None:
    assert _budget({"dsp": 4, "hh": 2, "ukp": 162}, 64) == {"dsp": 4, "hh": 2, "ukp": 58}
    assert _budget({"a": 100, "b": 50}, 64) == {"a": 43, "b": 21}
    assert _budget({"a": 3}, 64) == {"a": 3}


@pytest.mark.parametrize(("user", "wins"), [("terse", 1), ("verbose", 0)])
async def test_learnt_experts_rank_for_their_user(
    trained: tuple[Path, Path], embedder: Embedder, user: str, wins: int
) -> None:
    _, out = trained
    # Without the history's own model, the ranking must come from the learnt experts.
    params = with_calibration(load_params(out), individual_bias=-50.0)
    backend = EmbeddedBackend(lambda: embedder, params)
    await backend.start()
    _, short, long = TOPICS[0]
    history = tuple(
        PreferencePair(
            (Message("user", f"Any tips to {t}?"),),
            s if user == "terse" else lg,
            lg if user == "terse" else s,
        )
        for t, s, lg in TOPICS[5:8]
    )
    task = ScoringTask((Message("user", "How should I boil an egg?"),), (long, short))
    [completion] = backend.generate_sync(SampleGroup("ind", user, history, task, 1, seed=1))
    write = completion._write  # the chain's writer holds the sample's user models
    assert isinstance(write, partial)
    models, sample = write.args[:2]
    chain = parse_chain(completion.text, 2)
    assert isinstance(chain, EvaluationChain)
    assert chain.overall[wins] > chain.overall[1 - wins]
    # The history is identified as its own training user's, and the persona says so in plain
    # words (never the profile's label).
    top = backend._bank.labels[models[sample].top_expert()]
    assert top == f"synthetic/profile-{1 if user == 'terse' else 2}"
    assert "one group of past users" in chain.persona.values
    assert "synthetic" not in chain.persona.values


def test_params_versions_differ_by_embedder_and_calibration() -> None:
    """Caches key on the version: params learnt the same day from the same data on other
    vectors or with another trust must not share one."""
    sources = [{"sha256": "ab" * 32}]
    version = params_version(sources, "minilm:128:onnx-int8", Calibration())
    assert version.startswith("learnt-")
    assert version == params_version(sources, "minilm:128:onnx-int8", Calibration())
    assert version != params_version(sources, "minilm:64:onnx-int8", Calibration())
    assert version != params_version(sources, "minilm:128:onnx-int8", Calibration(temperature=2))
    centres = {"dsp": np.ones((2, 3), np.float32)}
    assert version != params_version(sources, "minilm:128:onnx-int8", Calibration(), centres)


def test_population_centroids_tell_the_datasets_texts_apart() -> None:
    """Several unit centres per dataset; each text is nearest a centre of its own dataset."""
    rng = np.random.default_rng(0)
    axes = np.eye(8)
    content = np.vstack(
        [axes[0] + 0.1 * rng.normal(size=(12, 8)), axes[1] + 0.1 * rng.normal(size=(12, 8))]
    )
    corpus = Corpus(
        rows=[],
        dataset=["a"] * 6 + ["b"] * 6,
        style=np.zeros((24, 1)),
        content=content,
        wording=sp.csr_matrix((24, 1)),
        chosen=np.arange(0, 24, 2),
        rejected=np.arange(1, 24, 2),
        style_mean=np.zeros(1),
        style_std=np.ones(1),
        idf=(np.zeros(0, np.int64), np.zeros(0, np.float32)),
    )
    centres = centroids(corpus)
    assert list(centres) == ["a", "b"]
    assert all(c.shape == (12, 8) for c in centres.values())
    np.testing.assert_allclose(np.linalg.norm(centres["a"], axis=1), 1.0, atol=1e-5)
    stacked = np.vstack(list(centres.values()))
    nearest = np.argmax(content @ stacked.T, axis=1) // 12
    assert nearest.tolist() == [0] * 12 + [1] * 12
    one = replace(corpus, dataset=["a"] * 12)
    assert centroids(one) == {}


def test_trust_is_picked_for_one_pair_and_for_three_or_more() -> None:
    assert _bands((1, 3, 8)) == [(1, (1,)), (3, (3, 8))]
    assert _bands((3, 8)) == [(3, (3, 8))]
