"""Prototype learning on small synthetic users: groups with distinct profile directions, each
with its own preference direction (orthogonal to the profile), so the pairwise task starts near
chance from the k-means prototypes and is learnable from the history."""

from __future__ import annotations

import dataclasses
from functools import cache

import numpy as np
import numpy.typing as npt
import pytest

from prototypes.learn import (
    LearnConfig,
    LearnResult,
    UserEvents,
    _contexts,
    kmeans_init,
    learn_prototypes,
)

D = 16
FAST = LearnConfig(k=4, epochs=5, lr=1e-2)  # a higher lr than the default: few steps here


def unit(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    return np.asarray(x / np.linalg.norm(x, axis=-1, keepdims=True), dtype=np.float32)


@cache
def make_users(
    groups: int = 4, per_group: int = 8, events: int = 6, seed: int = 0
) -> tuple[UserEvents, ...]:
    rng = np.random.default_rng(seed)
    profile_dirs = unit(rng.standard_normal((groups, D)))
    raw = rng.standard_normal((groups, D))
    taste = unit(raw - (raw * profile_dirs).sum(1, keepdims=True) * profile_dirs)
    users = []
    for g in range(groups):
        for i in range(per_group):
            users.append(
                UserEvents(
                    user_id=f"u{g}-{i}",
                    profile=unit(profile_dirs[g] + 0.15 * rng.standard_normal(D)),
                    query=unit(rng.standard_normal((events, D))),
                    chosen=unit(taste[g] + 0.6 * rng.standard_normal((events, D))),
                    rejected=unit(-taste[g] + 0.6 * rng.standard_normal((events, D))),
                )
            )
    return tuple(users)


def profiles(users: tuple[UserEvents, ...]) -> npt.NDArray[np.float32]:
    return np.stack([u.profile for u in users])


@cache
def learn(config: LearnConfig = FAST) -> LearnResult:
    return learn_prototypes(make_users(), config)


def mean_distance_to_cluster_means(result: LearnResult, users: tuple[UserEvents, ...]) -> float:
    prof = profiles(users)
    dists = [
        np.linalg.norm(result.prototypes[j] - prof[result.assignment == j].mean(axis=0))
        for j in range(result.k)
        if (result.assignment == j).any()
    ]
    return float(np.mean(dists))


def assert_unit_rows(x: npt.NDArray[np.float32]) -> None:
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_kmeans_init_unit_prototypes_valid_assignment_and_seeded() -> None:
    prof = profiles(make_users())
    protos, assign = kmeans_init(prof, 4, seed=3)
    assert protos.shape == (4, D) and protos.dtype == np.float32
    assert_unit_rows(protos)
    assert assign.shape == (len(prof),) and assign.dtype == np.int64
    assert assign.min() >= 0 and assign.max() < 4
    np.testing.assert_array_equal(assign, np.argmax(prof @ protos.T, axis=1))
    again = kmeans_init(prof, 4, seed=3)
    np.testing.assert_array_equal(protos, again[0])
    np.testing.assert_array_equal(assign, again[1])


def test_kmeans_init_caps_k_at_the_number_of_rows() -> None:
    prof = profiles(make_users())[:3]
    protos, assign = kmeans_init(prof, 10)
    assert protos.shape == (3, D)
    assert_unit_rows(protos)
    assert sorted(assign.tolist()) == [0, 1, 2]


def test_learning_improves_the_pairwise_task() -> None:
    result = learn()
    users = make_users()
    first, last = result.history[0], result.history[-1]
    assert len(result.history) == FAST.epochs
    assert last["pair"] < first["pair"]
    assert last["accuracy"] > first["accuracy"]
    assert last["accuracy"] > 0.9
    assert last["samples"] == sum(len(u.query) for u in users)
    assert result.k == 4
    assert_unit_rows(result.prototypes_init)
    assert_unit_rows(result.prototypes)
    assert not np.allclose(result.prototypes, result.prototypes_init)
    np.testing.assert_array_equal(
        result.assignment, np.argmax(profiles(users) @ result.prototypes.T, axis=1)
    )
    assert result.encoder["W"].shape == (D, 2 * D)
    assert result.encoder["Wq"].shape == result.encoder["Ws"].shape == (D, D)


def test_default_config_also_lowers_the_loss() -> None:
    result = learn(LearnConfig(k=4, epochs=3))
    assert result.history[-1]["pair"] < result.history[0]["pair"]


def test_centre_regulariser_pulls_prototypes_toward_cluster_means() -> None:
    users = make_users()
    free = learn(dataclasses.replace(FAST, l_cent=0.0, l_tr=0.0))
    held = learn(dataclasses.replace(FAST, l_cent=10.0, l_tr=0.0))
    assert mean_distance_to_cluster_means(held, users) < mean_distance_to_cluster_means(free, users)
    assert held.history[-1]["cent"] < free.history[-1]["cent"]


def test_transition_regulariser_keeps_prototypes_near_their_past() -> None:
    free = learn(dataclasses.replace(FAST, l_cent=0.0, l_tr=0.0))
    held = learn(dataclasses.replace(FAST, l_cent=0.0, l_tr=10.0))

    def moved(r: LearnResult) -> float:
        return float(np.linalg.norm(r.prototypes - r.prototypes_init, axis=1).mean())

    assert moved(held) < moved(free)
    assert held.history[-1]["tr"] < free.history[-1]["tr"]


def test_same_seed_same_result_other_seed_differs() -> None:
    users = make_users()
    a = learn_prototypes(users, FAST)
    b = learn_prototypes(users, FAST)
    np.testing.assert_array_equal(a.prototypes, b.prototypes)
    np.testing.assert_array_equal(a.assignment, b.assignment)
    for name in ("W", "Wq", "Ws"):
        np.testing.assert_array_equal(a.encoder[name], b.encoder[name])
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    c = learn_prototypes(users, dataclasses.replace(FAST, seed=1))
    assert not np.array_equal(a.prototypes, c.prototypes)


def test_contexts_exclude_the_target_and_stay_inside_the_user() -> None:
    starts = np.array([0, 3, 4, 44], dtype=np.int64)  # users with 3, 1 (unused), 40 events
    targets = np.array([1, 0, 10, 43], dtype=np.int64)
    owners = np.array([0, 0, 2, 2], dtype=np.int64)
    ctx, seg = _contexts(targets, owners, starts, 5, np.random.default_rng(0))
    ctx_np, seg_np = ctx.numpy(), seg.numpy()
    for b, (t, u) in enumerate(zip(targets, owners, strict=True)):
        mine = ctx_np[seg_np == b]
        assert t not in mine
        assert len(set(mine.tolist())) == len(mine) == min(starts[u + 1] - starts[u] - 1, 5)
        assert ((mine >= starts[u]) & (mine < starts[u + 1])).all()
    assert sorted(ctx_np[seg_np == 0].tolist()) == [0, 2]


def test_history_longer_than_max_events_is_sampled() -> None:
    users = make_users(groups=2, per_group=3, events=12)
    result = learn_prototypes(users, dataclasses.replace(FAST, k=2, epochs=1, max_events=3))
    assert result.history[0]["samples"] == 6 * 12
    assert_unit_rows(result.prototypes)


def test_one_user() -> None:
    user = make_users()[0]
    result = learn_prototypes([user], FAST)
    assert result.k == 1 and result.prototypes.shape == (1, D)
    assert result.assignment.tolist() == [0]
    assert len(result.history) == FAST.epochs
    assert_unit_rows(result.prototypes)


def test_users_with_one_event_count_for_clusters_but_not_for_samples() -> None:
    users = list(make_users())
    for i in range(0, len(users), 2):
        u = users[i]
        users[i] = dataclasses.replace(
            u, query=u.query[:1], chosen=u.chosen[:1], rejected=u.rejected[:1]
        )
    empty = np.zeros((0, D), dtype=np.float32)
    users.append(
        dataclasses.replace(users[1], user_id="cold", query=empty, chosen=empty, rejected=empty)
    )
    result = learn_prototypes(users, FAST)
    assert result.assignment.shape == (len(users),)
    assert result.history[0]["samples"] == sum(len(u.query) for u in users if len(u.query) >= 2)


def test_no_user_with_two_events_skips_optimisation() -> None:
    one = [
        dataclasses.replace(u, query=u.query[:1], chosen=u.chosen[:1], rejected=u.rejected[:1])
        for u in make_users()[:5]
    ]
    result = learn_prototypes(one, FAST, progress=True)
    assert result.history == [{"epoch": 0.0, "skipped_no_pairs": 1.0, "samples": 0.0}]
    np.testing.assert_array_equal(result.prototypes, result.prototypes_init)
    np.testing.assert_array_equal(
        result.assignment, np.argmax(profiles(tuple(one)) @ result.prototypes.T, axis=1)
    )


def test_k_larger_than_the_number_of_users() -> None:
    users = make_users()[:5]
    result = learn_prototypes(users, dataclasses.replace(FAST, k=50, epochs=1))
    assert result.k == 5
    assert result.prototypes.shape == result.prototypes_init.shape == (5, D)
    assert_unit_rows(result.prototypes)


def test_progress_bar_runs(capsys: pytest.CaptureFixture[str]) -> None:
    learn_prototypes(make_users()[:4], dataclasses.replace(FAST, epochs=1), progress=True)
    assert "prototypes" in capsys.readouterr().err


def test_invalid_inputs_raise_clear_errors() -> None:
    users = list(make_users()[:3])
    with pytest.raises(ValueError, match="no users"):
        learn_prototypes([], FAST)
    with pytest.raises(ValueError, match=r"k must be >= 1"):
        learn_prototypes(users, dataclasses.replace(FAST, k=0))
    with pytest.raises(ValueError, match="k must be >= 1"):
        kmeans_init(profiles(tuple(users)), 0)
    bad_d = dataclasses.replace(users[1], profile=unit(np.ones(D + 1)))
    with pytest.raises(ValueError, match="profile shape"):
        learn_prototypes([users[0], bad_d], FAST)
    bad_events = dataclasses.replace(users[1], chosen=users[1].chosen[:, :-1])
    with pytest.raises(ValueError, match="chosen shape"):
        learn_prototypes([users[0], bad_events], FAST)
    ragged = dataclasses.replace(users[1], rejected=users[1].rejected[:2])
    with pytest.raises(ValueError, match="lengths differ"):
        learn_prototypes([users[0], ragged], FAST)
    not_unit = dataclasses.replace(users[1], query=users[1].query * 2)
    with pytest.raises(ValueError, match="L2-normalised"):
        learn_prototypes([users[0], not_unit], FAST)
    not_unit_profile = dataclasses.replace(users[1], profile=users[1].profile * 0.5)
    with pytest.raises(ValueError, match="L2-normalised"):
        learn_prototypes([users[0], not_unit_profile], FAST)
    with pytest.raises(ValueError, match="batch_size"):
        learn_prototypes(users, dataclasses.replace(FAST, batch_size=0))
