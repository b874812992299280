"""`train-embedded` on a small fixture: test rows never used, experts that work, a manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.params import load_params, with_calibration
from service.core.chain import EvaluationChain
from service.core.embedder import Embedder
from service.core.inputs import Message, PreferencePair, ScoringTask
from service.core.rows import file_sha256
from service.engine.backend import SampleGroup
from service.engine.parsing import parse_chain
from service.offline.embedded_training.training import TrainConfig, _budget, train
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
    assert search["val_rows"] == 8 and 0.0 <= search["best_val_accuracy"]["synthetic"] <= 1.0
    assert 0.0 <= search["best_val_accuracy_no_history"]["synthetic"] <= 1.0
    assert params.calibration.population_bias == search["best"]["population_bias"]
    assert params.calibration.feedback_gain == search["feedback_gain"]
    assert search["safe_candidates"] >= 1  # a history never costs val accuracy under the pick


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
    chain = parse_chain(completion.text, 2)
    assert isinstance(chain, EvaluationChain)
    assert chain.overall[wins] > chain.overall[1 - wins]
    assert f"synthetic/profile-{1 if user == 'terse' else 2}" in chain.persona.values
