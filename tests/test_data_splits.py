"""Every committed task manifest keeps its held-out axis disjoint across splits, and the corpus
leak check refuses a corpus that touches any val/test recording."""

from collections import defaultdict

import pytest

from usad.data.splits import LeakError, check_disjoint, corpus_allows
from usad.data.tasks import TASKS, held_out_tokens, load_manifest


def _sides(manifest, key):
    sides = defaultdict(set)
    for row in manifest["rows"]:
        sides[row[key]].add(row["split"])
    return sides


@pytest.mark.parametrize("task,key", [("T1-digit", "speaker"), ("T2-speaker", "digit"), ("T3-language", "item"),
                                      ("T4-drum", "kit"), ("T5-instrument", "soundfont")])
def test_held_out_axis_is_on_one_side(task, key):
    manifest = load_manifest(task)
    sides = _sides(manifest, key)
    if task == "T5-instrument":  # validation: held-out pitches of the training soundfont
        sides = {k: {"test"} if "test" in s else s - {"val"} for k, s in sides.items()}
        assert not any("test" in s and len(s) > 1 for s in _sides(manifest, key).values())
    assert all(len(s) == 1 for s in sides.values()), {k: s for k, s in sides.items() if len(s) > 1}
    assert {"train", "test"} <= {next(iter(s)) for s in sides.values()}


@pytest.mark.parametrize("task", list(TASKS))
def test_no_recording_on_two_sides(task):
    manifest = load_manifest(task)
    by_token = defaultdict(set)
    for row in manifest["rows"]:
        for token in row["sources"]:
            by_token[token].add(row["split"])
    shared = {t: s for t, s in by_token.items() if len(s) > 1}  # T6 scenes reuse recordings within a split only
    assert not shared, list(shared.items())[:5]
    assert len({r["id"] for r in manifest["rows"]}) == len(manifest["rows"])
    assert all(len(r["sha256"]) == 64 for r in manifest["rows"])


def test_gcompris_dup_groups_and_speakers_confound_documented():
    manifest = load_manifest("T3-language")
    groups = [r["dup_group"] for r in manifest["rows"] if r["dup_group"]]
    assert len(groups) == len(set(groups)), "a dup_group kept more than one recording"
    for row in manifest["rows"]:
        assert row["label"] == row["id"].split(":")[1].split("/")[0]
    assert not {"hi", "ur"} & {r["label"] for r in manifest["rows"] if r["dup_group"]}, "hi/ur copies must be dropped"
    assert "confounded with speaker" in manifest["about"]


def test_t6_segments_inside_scene_and_labels_both_classes():
    manifest = load_manifest("T6-vad")
    kinds = {r["spec"]["background"]["kind"] for r in manifest["rows"]}
    assert kinds == {"white", "pink", "brown", "drums", "music"}
    speech = sum(end - start for r in manifest["rows"] for start, end in r["segments"])
    total = sum(r["seconds"] for r in manifest["rows"])
    assert 0.1 < speech / total < 0.7
    for row in manifest["rows"]:
        for start, end in row["segments"]:
            assert 0 <= start < end <= row["seconds"] + 1e-6


def test_corpus_allows_only_training_sides():
    assert corpus_allows("fsdd", {"speaker": "jackson", "digit": 3})
    assert not corpus_allows("fsdd", {"speaker": "george", "digit": 3})  # T1 test speaker
    assert not corpus_allows("fsdd", {"speaker": "jackson", "digit": 9})  # T2 test digit
    assert not corpus_allows("drum", {"kit": "The Black Pearl 1.0"})
    assert not corpus_allows("soundfont", {"soundfont": "TimGM6mb.sf2"})
    assert corpus_allows("soundfont", {"soundfont": "FluidR3_GM.sf2"})


def test_leak_check_catches_a_test_clip():
    held = held_out_tokens()
    assert set(held) == set(TASKS)
    test_token = next(t for r in load_manifest("T1-digit")["rows"] if r["split"] == "test" for t in r["sources"])
    check_disjoint({"fsdd:0_jackson_10", "score:bach/bwv66.6.mxl"}, held)
    with pytest.raises(LeakError, match="T1-digit"):
        check_disjoint({"fsdd:0_jackson_10", test_token}, held)
