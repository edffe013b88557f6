"""bench/RESULTS.md and the README's bench blocks are what the benchmarks wrote.

Bench 8 (serving) keeps its last full run in bench/serving.json; its RESULTS.md section, its
goals and the README's serving-bench block are rendered from it. RESULTS.md says which parts
are generated, and the part written by hand survives a new run.
"""

from __future__ import annotations

import json

from bench import serving
from bench.common import (
    BY_HAND,
    HEADER,
    RESULTS,
    Goal,
    Section,
    hand_notes,
    replace_section,
)
from retrain.markdown import markers
from tests.conftest import REPO


def _serving() -> Section:
    return Section.from_json(json.loads(serving.JSON_OUT.read_text()))


def test_the_readme_serving_block_is_bench_8s_last_run():
    start, end = markers(serving.README_BLOCK)
    block = (REPO / "README.md").read_text().split(start)[1].split(end)[0]
    assert block.strip() == serving.readme_block(_serving()).strip(), (
        "README's serving-bench block differs from bench/serving.json: python -m bench.serving"
    )


def test_results_md_has_section_8_and_its_goals():
    text = RESULTS.read_text()
    section = _serving()
    assert section.markdown() in text
    for g in section.goals:
        assert f"| 8 | {g.name} | {g.measured} | {g.target} | **{g.verdict}** |" in text
    heads = [line.split(".")[0] for line in text.splitlines() if line[:3] == "## "]
    assert heads.index("## 7") < heads.index("## 8") < heads.index("## 9")


def test_results_md_says_which_part_is_written_by_hand():
    text = RESULTS.read_text()
    assert HEADER in text and "do not edit by hand." not in text
    hand = hand_notes(text)
    assert hand.startswith(BY_HAND[0]) and "written by hand" in hand
    assert text.endswith(hand)  # the last part: after every generated section


def _results(*sections: Section) -> str:
    goals = [f"| {s.item} | {g.name} | {g.measured} | x |" for s in sections for g in s.goals]
    goals_part = ["## Goals", "", "| item | goal |", "|---|---|", *goals, ""]
    body = "\n".join(s.markdown() for s in sections)
    notes = f"{BY_HAND[0]}\n## Notes by hand\n\nkeep me\n{BY_HAND[1]}\n"
    return "\n".join(["# B", "", *goals_part, body]) + "\n" + notes


def _section(item: str, measured: str) -> Section:
    return Section(item, f"bench {item}", goals=[Goal("g", measured, "t", True)], seconds=5)


def test_a_section_is_replaced_or_inserted_in_order_and_notes_stay():
    text = _results(_section("7", "a"), _section("9", "b"))
    new = replace_section(text, _section("8", "c"))
    assert new.index("## 7.") < new.index("## 8.") < new.index("## 9.")
    assert new.index("| 7 | g | a") < new.index("| 8 | g | c") < new.index("| 9 | g | b")
    again = replace_section(new, _section("8", "d"))
    assert "| 8 | g | c" not in again and again.count("## 8.") == 1 and "| 8 | g | d" in again
    last = replace_section(again, _section("P", "e"))
    assert last.index("## 9.") < last.index("## P.") < last.index(BY_HAND[0])
    assert hand_notes(last) == hand_notes(text) and last.endswith(f"{BY_HAND[1]}\n")
