"""A scripted backend for engine tests: it returns given texts, it does not imitate a model."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from service.core.chain import CandidateEvaluation, Criterion, CriterionScore, Persona
from service.core.inputs import PreferencePair, ScoringTask
from service.engine.backend import Backend, BackendError, Completion, SampleGroup
from service.engine.render import render_chain
from service.engine.scaling import Neighbour, NeighbourSource


def chain_text(*overall: float) -> str:
    """A well-formed chain whose single criterion gives each candidate `overall`."""
    criteria = [Criterion(name="Helpfulness", weight=100, description="Helps.")]
    candidates = [
        CandidateEvaluation(
            scores=(CriterionScore(criterion="Helpfulness", score=s, justification="ok"),),
            overall=s,
        )
        for s in overall
    ]
    persona = Persona(style="Plain.", content_structure="Short.", values="Accuracy.")
    return render_chain(persona, criteria, candidates)


class ScriptedBackend(Backend):
    name = "scripted"

    def __init__(self, script: Callable[[SampleGroup, int], Sequence[str] | Exception]) -> None:
        self.script = script
        self.calls: list[SampleGroup] = []

    @property
    def model(self) -> str:
        return "scripted-test-fake"

    @property
    def ready(self) -> bool:
        return True

    async def start(self) -> None:
        return None

    async def generate(self, group: SampleGroup) -> list[Completion]:
        self.calls.append(group)
        result = self.script(group, len(self.calls))
        if isinstance(result, Exception):
            raise result
        return [Completion(text) for text in result]


class ListNeighbours(NeighbourSource):
    def __init__(self, neighbours: list[Neighbour]) -> None:
        self._neighbours = neighbours

    @property
    def version(self) -> str | None:
        return "test-v1"

    async def neighbours(
        self, user_id: str, history: Sequence[PreferencePair], task: ScoringTask, m: int
    ) -> list[Neighbour]:
        return self._neighbours[:m]


def boom(detail: str = "worker down") -> BackendError:
    return BackendError("backend_error", detail)


class Counting(Backend):
    """A real backend with its `generate` calls counted (how many plans a score made)."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[SampleGroup] = []

    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def ready(self) -> bool:
        return self.inner.ready

    async def start(self) -> None:
        await self.inner.start()

    async def warm(self, texts: Sequence[tuple[str, str]], progress: bool = False) -> None:
        await self.inner.warm(texts, progress)

    async def generate(self, group: SampleGroup) -> list[Completion]:
        self.calls.append(group)
        return await self.inner.generate(group)
