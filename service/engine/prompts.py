"""The P-GenRM prompt, generalised from two to K candidates.

The layout follows the released model's (it was trained on it): a system message holding the
role, the history few-shots between `[The Start of User's preference history]` markers, the goal
and the output contract; a user message with `# Input Data`, the user input and one
`[The Start of Response i]` block per candidate. Multi-turn conversations are rendered whole
(the release kept only the first user turn, which loses what a later turn asks for).
"""

from __future__ import annotations

from collections.abc import Sequence

from service.core.inputs import Message, PreferencePair, ScoringTask

PROMPT_TEMPLATE_VERSION = "pgenrm-prompt-1"

_ROLE_LABEL = {"system": "System", "user": "User", "assistant": "Assistant"}

_SYSTEM_TEMPLATE = """\
# ROLE
You are a meticulous user preference analysis expert.

# CONTEXT
You are given a user's preference history: pairs of responses from past interactions, one chosen \
and one rejected by this user.

# Examples from user's preference history
[The Start of User's preference history]
{few_shots}
[The End of User's preference history]

# GOAL
Build a personalised scoring model for this user and apply it to a new set of responses to decide \
which is better. To do so:
    1.  Infer the response style this user wants from their past choices.
    2.  Derive weighted scoring criteria from that profile.
    3.  Apply the criteria to every new response.
    4.  Justify each step, ending in a final JSON output.

# OUTPUT STRUCTURE
Write exactly two parts, in this order:

**PART 1: Chain-of-Thought Analysis**

1.  **User Preference Synthesis**: compare the chosen and rejected examples and describe the \
user's preferred **Style**, **Content & Structure** and **Core Values**. State only conclusions \
the evidence clearly supports.
2.  **Personalized Scoring Model Derivation**: define the evaluation criteria for this user and \
say briefly why each matters to them.

**PART 2: Final Scoring and JSON Output**

Right after the analysis write `<JSON_START>`, then one valid JSON object, then `<JSON_END>`, and \
nothing after it.

# JSON SPECIFICATION
The JSON object has exactly two keys, "rationale" and "better_response".

1.  `rationale` (string), structured as:
    *   **A. Evaluation Criteria & Weights:** the criteria from Part 1, each with a percentage \
weight for this evaluation; the weights sum to 100%.
    *   **B. Scoring Breakdown:** for each response, a score from 1 (Poor) to 10 (Excellent) on \
every criterion with a brief justification, then the weighted calculation, e.g. \
`Response 1 Final Score = (Score_1 * Weight_1) + (Score_2 * Weight_2) + ... = total`.
2.  `better_response` (object): the final score of each response, keyed \
{response_keys}.

Example JSON output format:
{{"rationale": "your rationale following the instructions above", "better_response": \
{{{example_scores}}}}}
"""


def render_turns(context: Sequence[Message]) -> str:
    """A conversation as text: one turn alone is its content, several are role-labelled."""
    if len(context) == 1 and context[0].role == "user":
        return context[0].content
    return "\n".join(f"{_ROLE_LABEL[m.role]}: {m.content}" for m in context)


def render_few_shot(pair: PreferencePair) -> str:
    if len(pair.context) == 1 and pair.context[0].role == "user":
        lines = [f"User: {pair.context[0].content}"]
    else:
        lines = [render_turns(pair.context)]
    lines += [f"Chosen: {pair.chosen}", f"Rejected: {pair.rejected}"]
    if pair.feedback:
        lines.append(f"Feedback: {pair.feedback}")
    return "\n".join(lines)


def render_history(history: Sequence[PreferencePair]) -> str:
    if not history:
        return "(no history available for this user)"
    return "\n\n".join(render_few_shot(pair) for pair in history)


def response_key(index: int) -> str:
    """Zero-based candidate index -> the released JSON key (`response_1`, ...)."""
    return f"response_{index + 1}"


def build_system_prompt(history: Sequence[PreferencePair], n_candidates: int) -> str:
    keys = [response_key(i) for i in range(n_candidates)]
    return _SYSTEM_TEMPLATE.format(
        few_shots=render_history(history),
        response_keys=", ".join(f"`{k}`" for k in keys),
        example_scores=", ".join(f'"{k}": "score_{i + 1}"' for i, k in enumerate(keys)),
    )


def build_user_prompt(task: ScoringTask) -> str:
    blocks = [
        "# Input Data",
        f"[The Start of User Input]\n{render_turns(task.context)}\n[The End of User Input]",
    ]
    for i, candidate in enumerate(task.candidates, start=1):
        blocks.append(f"[The Start of Response {i}]\n{candidate}\n[The End of Response {i}]")
    return "\n\n".join(blocks) + "\n"


def build_messages(history: Sequence[PreferencePair], task: ScoringTask) -> list[dict[str, str]]:
    """Chat messages for one evaluation-chain sample, OpenAI chat format."""
    return [
        {"role": "system", "content": build_system_prompt(history, len(task.candidates))},
        {"role": "user", "content": build_user_prompt(task)},
    ]
