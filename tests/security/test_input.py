"""Bad input: oversized bodies, overlong or invisible text, control characters, and spreadsheet
formulas in the CSV export.
"""

from __future__ import annotations

import csv
import io

from liveqa import export
from tests.security.conftest import Scene


def test_bodies_over_64_kib_are_refused_before_they_are_read(sqlite_scene: Scene) -> None:
    scene = sqlite_scene
    asker = scene.people["audience"]
    huge = asker.post("/e/EVENT-A/questions", json={"text": "x" * 70_000})
    assert huge.status_code == 413
    chunked = asker.post(
        "/e/EVENT-A/questions",
        content=iter([b'{"text": "', b"y" * 70_000, b'"}']),  # no Content-Length
        headers={"content-type": "application/json"},
    )
    assert chunked.status_code == 413
    assert scene.seq(scene.a) == 0


def test_text_is_normalised_bounded_and_never_blank(sqlite_scene: Scene) -> None:
    scene = sqlite_scene
    asker = scene.people["audience"]
    cases = {
        "x" * 501: 422,  # the event's limit is 500
        " \t\n\u200b\u00a0 ": 422,  # only whitespace and invisible characters
        "": 422,
    }
    for text, status in cases.items():
        assert asker.post("/e/EVENT-A/questions", json={"text": text}).status_code == status
    long_name = asker.post("/e/EVENT-A/questions", json={"text": "Hi", "name": "n" * 41})
    assert long_name.status_code == 422
    asked = asker.post(
        "/e/EVENT-A/questions",
        json={"text": "Cafe\u0301\x00\x1b[31m \u202eevil\u202c?", "name": "Ada\r\nLovelace"},
    )
    question = asked.json()["question"]
    assert question["text"] == "Caf\u00e9[31m evil?"  # NFC, no controls or bidi overrides
    assert question["name"] == "Ada Lovelace"
    other = scene.people["moderator_b"]  # the asker has used up the minute's five questions
    lines = other.post("/e/EVENT-A/questions", json={"text": "One\rTwo\r\nThree"}).json()
    assert lines["question"]["text"] == "One\nTwo\nThree"


def test_csv_export_cells_cannot_run_formulas(sqlite_scene: Scene) -> None:
    scene = sqlite_scene
    texts = ['=HYPERLINK("http://evil.example")', "+1+1", "-2+3", "@SUM(A1)", "Plain?"]
    for text in texts:
        scene.call(scene.rt.events.ask, scene.a.event.id, text=text, participant="p", key="")
    snapshot = scene.call(scene.rt.store.snapshot, scene.a.event.id)
    rows = list(csv.DictReader(io.StringIO(export.to_csv(snapshot.questions))))
    cells = sorted(row["question"] for row in rows)
    assert cells == sorted(
        ['\'=HYPERLINK("http://evil.example")', "'+1+1", "'-2+3", "'@SUM(A1)", "Plain?"]
    )
