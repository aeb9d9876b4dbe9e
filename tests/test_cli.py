"""The `grounded-ip2p parse` command: one answer per line, fixed fields, robust to any input."""

import json
import subprocess
import sys

import pytest

FIELDS = [
    "kind",
    "target",
    "target_head",
    "grounding_phrase",
    "plural",
    "direction",
    "ordinal",
    "relation",
    "anchor",
    "anchor_head",
    "simplified",
    "phrases",
]


def cli(*args, stdin=""):
    return subprocess.run(
        [sys.executable, "-m", "grounded_ip2p.headless.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_parse_json_answers_every_line_in_order():
    lines = [
        "make the left car purple",
        "",
        "   ",
        "%%%% ### !!",
        "x" * 10000,
        "把左边的汽车变成紫色",
        "change the lamp right of the bed to a candle",
        "give her gray hair",
    ]
    res = cli("parse", "--json", stdin="\n".join(lines) + "\n")
    assert res.returncode == 0, res.stderr
    answers = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(answers) == len(lines)
    assert all(list(a) == FIELDS for a in answers)
    for i in (1, 2, 3, 4, 5):
        assert answers[i]["kind"] == "global" and answers[i]["target"] is None, lines[i][:20]
    assert answers[0]["direction"] == "left" and answers[0]["grounding_phrase"] == "car"
    assert answers[6]["relation"] == "relative" and answers[6]["anchor_head"] == "bed"
    assert answers[7]["target_head"] == "her" and answers[7]["grounding_phrase"] == "woman"


def test_parse_without_trailing_newline_and_crlf():
    res = cli("parse", "--json", stdin="make the dog red\r\nremove the cat")
    answers = [json.loads(line) for line in res.stdout.splitlines()]
    assert [a["kind"] for a in answers] == ["edit", "remove"]


def test_parse_readable():
    res = cli("parse", "make the second car from the left red")
    assert res.returncode == 0
    assert "ordinal: 2" in res.stdout and "simplified: make the car red" in res.stdout


@pytest.mark.slow
def test_ten_thousand_fuzzed_lines_get_one_json_answer_each():
    from .instruction_fuzz import check, fuzz_lines, run

    lines = fuzz_lines(10000, seed=1)
    res, _ = run(lines)
    answers = check(res, len(lines))
    assert all(list(a) == FIELDS for a in answers)
    assert answers[0]["kind"] == "global"  # the empty line
