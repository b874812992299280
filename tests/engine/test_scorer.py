import pytest

from service.core.errors import ScoringFailed
from service.engine.backend import BackendError, Completion, SampleGroup
from service.engine.scaling import Neighbour, Scaling
from service.engine.scorer import EngineOptions, ScoringEngine
from tests.engine.fakes import ListNeighbours, ScriptedBackend, boom, chain_text
from tests.helpers import prefers, task


async def test_mean_over_valid_samples_and_failures_by_reason() -> None:
    texts = [chain_text(4, 8), chain_text(6, 6), "no json here", chain_text(2, 7)]
    engine = ScoringEngine(
        ScriptedBackend(lambda g, n: texts[: g.n]), options=EngineOptions(parse_retries=0)
    )
    out = await engine.score("u", prefers("short"), task("a", "b"), Scaling(4, 0))
    assert out.scores == pytest.approx([4.0, 7.0])
    assert out.ranks == [2, 1] and out.preferred == 1 and out.margin == pytest.approx(3.0)
    assert (out.ind.requested, out.ind.valid, out.ind.failed) == (4, 3, 1)
    assert dict(out.ind.failures) == {"no_json": 1}
    # the trace is the sample closest to the aggregate [4, 7]
    assert out.trace is not None and out.trace.outcome.overall == (4.0, 8.0)  # type: ignore[union-attr]


async def test_every_sample_failing_is_an_error_not_a_score() -> None:
    engine = ScoringEngine(ScriptedBackend(lambda g, n: ["garbage"] * g.n))
    with pytest.raises(ScoringFailed) as failed:
        await engine.score("u", (), task("a", "b"), Scaling(3, 0))
    assert "no_json: 3" in failed.value.message
    assert failed.value.details == [{"reason": "no_json", "count": 3}]


async def test_unparseable_samples_are_requested_again() -> None:
    def script(group: SampleGroup, call: int) -> list[str]:
        return (
            ['<JSON_START>{"better_response": {'] * group.n
            if call == 1
            else [chain_text(3, 9)] * group.n
        )

    backend = ScriptedBackend(script)
    out = await ScoringEngine(backend, options=EngineOptions(parse_retries=1)).score(
        "u", (), task("a", "b"), Scaling(2, 0)
    )
    assert out.ind.valid == 2 and dict(out.retried) == {"truncated": 2}
    assert [c.n for c in backend.calls] == [2, 2]


async def test_backend_error_fails_the_whole_group() -> None:
    def script(group: SampleGroup, call: int) -> list[str] | Exception:
        return boom() if group.level == "pro" else [chain_text(5, 6)] * group.n

    neighbours = ListNeighbours([Neighbour("p0", prefers("long"), 0.9)])
    engine = ScoringEngine(ScriptedBackend(script), neighbours)
    out = await engine.score("u", prefers("short"), task("a", "b"), Scaling(2, 1))
    assert (out.pro.requested, out.pro.valid, dict(out.pro.failures)) == (
        1,
        0,
        {"backend_error": 1},
    )
    assert out.scores == pytest.approx([5.0, 6.0])


async def test_prototype_level_fuses_half_and_half() -> None:
    def script(group: SampleGroup, call: int) -> list[str]:
        return [chain_text(2, 8) if group.level == "ind" else chain_text(8, 4)] * group.n

    neighbours = ListNeighbours([Neighbour(f"p{j}", prefers("long"), 0.9) for j in range(3)])
    backend = ScriptedBackend(script)
    out = await ScoringEngine(backend, neighbours).score(
        "u", prefers("short"), task("a", "b"), Scaling(4, 2)
    )
    assert out.ind_scores == [2.0, 8.0] and out.pro_scores == [8.0, 4.0]
    assert out.scores == pytest.approx([5.0, 6.0])
    assert sorted(g.source for g in backend.calls if g.level == "pro") == ["p0", "p1"]


async def test_pro_without_prototypes_is_reported_skipped() -> None:
    engine = ScoringEngine(ScriptedBackend(lambda g, n: [chain_text(5, 6)] * g.n))
    out = await engine.score("u", (), task("a", "b"), Scaling(1, 4))
    assert (out.pro.requested, out.pro.valid, dict(out.pro.failures)) == (
        4,
        0,
        {"no_prototypes": 4},
    )
    assert out.pro_scores is None and out.scores == pytest.approx([5.0, 6.0])


async def test_a_crashing_backend_fails_samples_not_the_request() -> None:
    def script(group: SampleGroup, call: int) -> list[str] | Exception:
        return ZeroDivisionError("bug") if group.level == "pro" else [chain_text(5, 6)] * group.n

    neighbours = ListNeighbours([Neighbour("p0", prefers("long"), 0.9)])
    out = await ScoringEngine(ScriptedBackend(script), neighbours).score(
        "u", prefers("short"), task("a", "b"), Scaling(2, 1)
    )
    assert dict(out.pro.failures) == {"backend_error": 1} and out.ind.valid == 2


async def test_rotated_samples_map_scores_back_to_candidates() -> None:
    def script(group: SampleGroup, call: int) -> list[str]:
        # The judge likes "b" wherever it is shown.
        return [chain_text(*(9.0 if c == "b" else 3.0 for c in group.task.candidates))] * group.n

    backend = ScriptedBackend(script)
    engine = ScoringEngine(backend, options=EngineOptions(rotate_candidates=True))
    out = await engine.score("u", (), task("a", "b", "c"), Scaling(6, 0))
    assert out.scores == pytest.approx([3.0, 9.0, 3.0]) and out.preferred == 1
    assert sorted(g.task.candidates[0] for g in backend.calls) == ["a", "b", "c"]


async def test_deadline_turns_late_groups_into_timeouts() -> None:
    import asyncio

    class Slow(ScriptedBackend):
        async def generate(self, group: SampleGroup) -> list:  # type: ignore[type-arg]
            if group.level == "pro":
                await asyncio.sleep(5)
            return await super().generate(group)

    neighbours = ListNeighbours([Neighbour("p0", prefers("long"), 0.9)])
    engine = ScoringEngine(
        Slow(lambda g, n: [chain_text(4, 6)] * g.n), neighbours, EngineOptions(deadline_s=0.3)
    )
    out = await engine.score("u", (), task("a", "b"), Scaling(2, 1))
    assert dict(out.pro.failures) == {"timeout": 1} and out.ind.valid == 2


async def test_every_worker_down_is_503_or_the_flagged_fallback() -> None:
    from service.core.errors import Unavailable

    down = ScriptedBackend(lambda g, n: BackendError("unavailable", "no worker reachable"))
    with pytest.raises(Unavailable) as unavailable:
        await ScoringEngine(down).score("u", (), task("a", "b"), Scaling(2, 0))
    assert unavailable.value.status == 503 and unavailable.value.headers["Retry-After"] == "5"
    fallback = ScriptedBackend(lambda g, n: [chain_text(2, 8)] * g.n)
    out = await ScoringEngine(down, fallback=fallback).score("u", (), task("a", "b"), Scaling(2, 0))
    assert out.degraded and out.scores == pytest.approx([2.0, 8.0])


class NativeBackend(ScriptedBackend):
    """Gives its scores directly, as the embedded backend does; counts the texts written."""

    def __init__(self) -> None:
        super().__init__(lambda group, call: [])
        self.written = 0

    async def generate(self, group: SampleGroup) -> list[Completion]:
        def write() -> str:
            self.written += 1
            return chain_text(7.0, 3.0)

        return [Completion(overall=(7.0, 3.0), write=write) for _ in range(group.n)]


async def test_native_scores_skip_parsing_and_write_text_only_when_read() -> None:
    backend = NativeBackend()
    outcome = await ScoringEngine(backend).score("u", (), task("a", "b"), Scaling(4, 0))
    assert outcome.scores == [7.0, 3.0] and outcome.ind.valid == 4
    assert backend.written == 0  # nobody read a trace: no text was written
    assert outcome.trace is not None
    chain = outcome.trace.outcome.chain()  # type: ignore[union-attr]
    assert chain.overall == (7.0, 3.0) and backend.written == 1


def test_a_completion_has_text_or_a_writer() -> None:
    with pytest.raises(ValueError, match="either its text"):
        Completion()
    with pytest.raises(ValueError, match="either its text"):
        Completion("text", write=lambda: "text")
    assert Completion(write=lambda: "written").text == "written"
