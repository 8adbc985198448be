"""Every committed task manifest keeps its held-out axis disjoint across splits, and the corpus
leak check refuses a corpus that touches any val/test recording."""

from collections import defaultdict
from functools import cache

import pytest

from usad.data.splits import TASK_SCORE_COLLECTIONS, LeakError, check_disjoint, corpus_allows
from usad.data.tasks import TASKS, held_out_tokens, load_manifest


def _sides(manifest, key):
    sides = defaultdict(set)
    for row in manifest["rows"]:
        sides[row[key]].add(row["split"])
    return sides


@pytest.mark.parametrize("task,key", [("T1-digit", "speaker"), ("T2-speaker", "digit"), ("T3-language", "item"),
                                      ("T4-drum", "kit"), ("T5-instrument", "soundfont"), ("T7-phrase", "pack"),
                                      ("T8-verification", "label"), ("T10-f0", "score")])
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
    speech = sum(end - start for r in manifest["rows"] for start, end, _ in r["segments"])
    total = sum(r["seconds"] for r in manifest["rows"])
    assert 0.1 < speech / total < 0.7
    for row in manifest["rows"]:
        for start, end, label in row["segments"]:
            assert 0 <= start < end <= row["seconds"] + 1e-6 and label == "speech"


@pytest.mark.parametrize("task", ["T9-events", "T10-f0"])
def test_frame_segments_do_not_overlap_and_use_known_classes(task):
    manifest = load_manifest(task)
    for row in manifest["rows"]:
        ends = [0.0]
        for start, end, label in row["segments"]:
            assert ends[-1] - 1e-3 <= start < end <= row["seconds"] + 1e-6 and label in manifest["classes"]
            ends.append(end)
    assert {r["split"] for r in manifest["rows"]} == {"train", "val", "test"}


def test_t10_test_side_is_the_held_out_soundfont_and_tunes():
    rows = load_manifest("T10-f0")["rows"]
    for row in rows:
        assert (row["spec"]["soundfont"] == "TimGM6mb.sf2") == (row["split"] == "test")
        assert row["score"].split("/")[0] in TASK_SCORE_COLLECTIONS
        assert not corpus_allows("score", {"collection": row["score"].split("/")[0]})


def test_t8_held_out_speakers_never_reach_the_corpus(shared):  # GCompris items come from ../shared's speakers.tsv
    for row in load_manifest("T8-verification")["rows"]:
        if row["split"] == "train":
            continue
        corpus, rest = row["id"].split(":", 1)
        if corpus == "gcompris":
            assert not corpus_allows("gcompris", {"item": row_item(row)})
        elif corpus == "fsdd":
            speaker = rest.split("_")[1]
            assert not corpus_allows("fsdd", {"speaker": speaker, "digit": int(rest.split("_")[0])})
        else:
            assert not corpus_allows("hedgewars-voices", {"pack": rest.split("/")[-2]})


def row_item(row):
    return _gcompris_items()[row["id"]].labels["item"]


@cache
def _gcompris_items():
    from usad.data.sources import SourcePaths, gcompris_items

    return {i.id: i for i in gcompris_items(SourcePaths())}


def test_corpus_allows_only_training_sides():
    assert corpus_allows("fsdd", {"speaker": "jackson", "digit": 3})
    assert not corpus_allows("fsdd", {"speaker": "george", "digit": 3})  # T1 test speaker
    assert not corpus_allows("fsdd", {"speaker": "jackson", "digit": 9})  # T2 test digit
    assert not corpus_allows("drum", {"kit": "The Black Pearl 1.0"})
    assert not corpus_allows("soundfont", {"soundfont": "TimGM6mb.sf2"})
    assert corpus_allows("soundfont", {"soundfont": "FluidR3_GM.sf2"})
    assert not corpus_allows("score", {"collection": "ryansMammoth"})
    assert corpus_allows("score", {"collection": "bach"})


def test_leak_check_catches_a_test_clip():
    held = held_out_tokens()
    assert set(held) == set(TASKS)
    test_token = next(t for r in load_manifest("T1-digit")["rows"] if r["split"] == "test" for t in r["sources"])
    check_disjoint({"fsdd:0_jackson_10", "score:bach/bwv66.6.mxl"}, held)
    with pytest.raises(LeakError, match="T1-digit"):
        check_disjoint({"fsdd:0_jackson_10", test_token}, held)
