"""The one message every server sends: the shape of liveqa's audience `change` for a star."""

from __future__ import annotations

import json
from typing import Any

QUESTION = {
    "id": "q0f3c9a1d2b7e4f60",
    "text": "How will the new rollout be funded, and who decides which regions go first?",
    "name": "",
    "panelist": "",
    "state": "approved",
    "starred": True,
    "votes": 12,
    "answer": "",
    "asked_at": 1764164000.123,
    "updated_at": 1764164100.456,
    "rev": 3,
}


def message_dict(seq: int, pad: int = 0) -> dict[str, Any]:
    """`pad` lengthens the question text (the slow-consumer scenario uses long questions)."""
    question = dict(QUESTION, text=QUESTION["text"] + "x" * pad) if pad else QUESTION
    return {
        "type": "change",
        "seq": seq,
        "change": "question.star",
        "questions": [question],
        "removed": [],
    }


def message(seq: int, pad: int = 0) -> str:
    return json.dumps(message_dict(seq, pad), separators=(",", ":"))
