import pytest

from service.engine.aggregate import rank
from service.engine.scaling import Neighbour, Scaling, derive_seed, fuse, plan_groups
from tests.helpers import prefers, task


def test_fusion_is_half_and_half_over_the_sides_present() -> None:
    assert fuse([6.0, 8.0], [4.0, 2.0], 0.5, 0.5) == [5.0, 5.0]
    assert fuse([6.0, 8.0], None, 0.5, 0.5) == [6.0, 8.0]
    assert fuse(None, [4.0, 2.0], 0.5, 0.5) == [4.0, 2.0]
    assert fuse([6.0, 8.0], [4.0, 2.0], 0.75, 0.25) == [5.5, 6.5]
    with pytest.raises(ValueError):
        fuse(None, None, 0.5, 0.5)


def test_plan_is_one_ind_group_and_one_group_per_neighbour() -> None:
    history = prefers("short")
    neighbours = [Neighbour(f"n{j}", prefers("long"), 0.9) for j in range(5)]
    groups = plan_groups("u", history, task("a", "b"), Scaling(16, 3), neighbours, seed=1)
    assert [(g.level, g.n, g.source) for g in groups] == [
        ("ind", 16, "self"),
        ("pro", 1, "n0"),
        ("pro", 1, "n1"),
        ("pro", 1, "n2"),
    ]
    assert groups[0].history == history and groups[1].history == neighbours[0].history
    assert len({g.seed for g in groups}) == 4


def test_seed_depends_on_content_only() -> None:
    a = derive_seed("u", prefers("short"), task("x", "y"))
    assert a == derive_seed("u", prefers("short"), task("x", "y"))
    assert a != derive_seed("u", prefers("long"), task("x", "y"))
    assert a != derive_seed("v", prefers("short"), task("x", "y"))
    assert a != derive_seed("u", prefers("short"), task("y", "x"))


def test_rank_shares_ties() -> None:
    assert rank([3.0, 9.0, 3.0, 1.0]) == [2, 1, 2, 4]


def test_rotation_balances_positions_and_maps_back() -> None:
    t = task("a", "b", "c")
    groups = plan_groups(
        "u", (), t, Scaling(8, 3), [Neighbour(f"n{j}", (), 0.9) for j in range(3)], 1, rotate=True
    )
    ind = [g for g in groups if g.level == "ind"]
    assert [g.n for g in ind] == [3, 3, 2]  # Ind-8 over 3 rotations
    for g in groups:
        order = g.order or (0, 1, 2)
        assert [t.candidates[i] for i in order] == list(g.task.candidates)
    firsts = [g.task.candidates[0] for g in groups if g.level == "pro"]
    assert sorted(firsts) == ["a", "b", "c"]  # every candidate shown first once
