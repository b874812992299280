from service.core.inputs import Message, PreferencePair, ScoringTask
from service.engine.prompts import build_messages, response_key


def test_layout_matches_the_released_prompt_generalised_to_k() -> None:
    history = (
        PreferencePair(context=(Message("user", "Q1"),), chosen="good one", rejected="bad one"),
        PreferencePair(context=(Message("user", "Q2"),), chosen="c2", rejected="r2", feedback="f"),
    )
    task = ScoringTask(context=(Message("user", "What now?"),), candidates=("a", "b", "c"))
    system, user = build_messages(history, task)
    assert system["role"] == "system" and user["role"] == "user"
    body = system["content"]
    start = body.index("[The Start of User's preference history]")
    end = body.index("[The End of User's preference history]")
    shots = body[start:end]
    assert "User: Q1\nChosen: good one\nRejected: bad one\n\nUser: Q2" in shots
    assert "Feedback: f" in shots
    assert "<JSON_START>" in body and "<JSON_END>" in body and '"better_response"' in body
    assert "`response_1`, `response_2`, `response_3`" in body
    text = user["content"]
    assert text.startswith(
        "# Input Data\n\n[The Start of User Input]\nWhat now?\n[The End of User Input]"
    )
    for i, candidate in enumerate("abc", start=1):
        block = f"[The Start of Response {i}]\n{candidate}\n[The End of Response {i}]"
        assert block in text
    assert "[The Start of Response 4]" not in text


def test_multi_turn_context_is_rendered_whole() -> None:
    context = (
        Message("system", "Be brief."),
        Message("user", "I need a cat name."),
        Message("assistant", "What is she like?"),
        Message("user", "Grey and lazy."),
    )
    history = (PreferencePair(context=context, chosen="Smokey", rejected="Tom"),)
    task = ScoringTask(context=context, candidates=("Smokey", "Ash"))
    system, user = build_messages(history, task)
    for content in (system["content"], user["content"]):
        assert (
            "User: I need a cat name.\nAssistant: What is she like?\nUser: Grey and lazy."
            in content
        )
    assert "System: Be brief." in user["content"]


def test_empty_history_is_said_not_left_blank() -> None:
    task = ScoringTask(context=(Message("user", "hi"),), candidates=("a", "b"))
    system, _ = build_messages((), task)
    assert "(no history available for this user)" in system["content"]
    assert response_key(0) == "response_1"
