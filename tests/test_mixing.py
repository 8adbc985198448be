"""Interference: the mix hits its SNR on real audio, pools never cross splits, and every committed
val/test plan draws only from its own split's pool."""

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from usad.audio import load_audio
from usad.data import interference as itf
from usad.data import sources as src
from usad.data import splits as sp
from usad.data.mixing import mix_at_snr
from usad.data.tasks import TASKS, load_manifest

GAMES = Path("/usr/share/games/hedgewars")
needs_games = pytest.mark.skipif(not GAMES.is_dir(), reason="needs hedgewars-data (make system-deps)")


def _snr(signal: np.ndarray, mix: np.ndarray, scale: float) -> float:
    return 10 * np.log10(np.mean((scale * signal) ** 2) / np.mean((mix - scale * signal) ** 2))


@pytest.mark.parametrize("snr_db", [0.0, 5.0, -3.0])
def test_mix_hits_the_target_snr_on_real_audio(shared, snr_db):
    speech = load_audio(shared / "data" / "fsdd" / "recordings" / "3_george_7.flac")
    voice = load_audio(shared / "data" / "gcompris-voices" / "fr" / "colors" / "red.ogg")
    noise = np.resize(voice, speech.size)
    for signal in (0.2 * speech / np.abs(speech).max(), 0.95 * speech / np.abs(speech).max()):
        mix = mix_at_snr(signal, noise, snr_db)
        # A mix that would clip is scaled as a whole; the scale is read off one sample of the sum.
        gain = np.sqrt(np.mean(signal.astype(np.float64) ** 2) / (np.mean(noise.astype(np.float64) ** 2)
                                                                   * 10 ** (snr_db / 10)))
        expected = signal + gain * noise
        scale = mix[np.argmax(np.abs(expected))] / expected[np.argmax(np.abs(expected))]
        assert np.allclose(mix, scale * expected, atol=1e-5)
        assert abs(_snr(signal, mix, scale) - snr_db) < 0.1
        assert np.abs(mix).max() <= 0.9 + 1e-6 or scale == pytest.approx(1.0)


def test_silent_interference_leaves_the_clip():
    clip = np.linspace(-0.5, 0.5, 1000, dtype=np.float32)
    assert np.array_equal(mix_at_snr(clip, np.zeros(1000), 0.0), clip)


@needs_games
def test_pools_of_the_three_splits_share_no_recording():
    paths = src.SourcePaths()
    for domain in itf.POOL_SOURCES:
        pools = {split: itf.pool(paths, domain, split) for split in sp.SPLITS}
        ids = {split: {i.id for i in items} for split, items in pools.items()}
        bytes_ = {split: {src.file_token(Path(i.path)) for i in items} for split, items in pools.items()}
        assert ids["val"] and ids["test"], domain
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            assert not ids[a] & ids[b] and not bytes_[a] & bytes_[b], (domain, a, b)


@needs_games
def test_plan_covers_the_clip_from_its_pool():
    paths = src.SourcePaths()
    plan = itf.row_plan(paths, ("sound",), "fsdd:3_george_7", "test", 2.5)
    assert plan["split"] == "test" and plan["domain"] == "sound"
    pool = {i.id: i for i in itf.pool(paths, "sound", "test")}
    covered = sum(length for _, _, _, length in plan["pieces"])
    assert 2.0 < covered <= 2.5 + 1e-6
    for item_id, start, at, length in plan["pieces"]:
        assert start + length <= pool[item_id].seconds + 1e-3 and at + length <= 2.5 + 1e-3
    bed = itf.plan_audio(paths, plan, 40_000)
    assert bed.shape == (40_000,) and np.sqrt(np.mean(bed ** 2)) > 1e-3
    assert plan == itf.row_plan(paths, ("sound",), "fsdd:3_george_7", "test", 2.5)  # deterministic


def _piece_split(item_id: str) -> str | None:
    if item_id.startswith("hedgewars-voices:"):
        return sp.hedgewars_pack_split(Path(item_id).parent.name)
    return sp.interference_split(item_id)


def test_committed_plans_draw_from_their_own_split_only():
    used = defaultdict(set)
    for task in TASKS:
        for row in load_manifest(task)["rows"]:
            if row["split"] == "train":
                assert "pieces" not in row.get("interference", {}), (task, row["id"])
                continue
            plan = row["interference"]
            assert plan["split"] == row["split"] and plan["domain"] in TASKS[task].interference
            for item_id, *_ in plan["pieces"]:
                assert _piece_split(item_id) == row["split"], (task, row["id"], item_id)
                assert item_id in row["sources"]  # so the corpus leak check covers it
                used[row["split"]].add(item_id)
            assert {"sha256_snr0", "sha256_snr5"} <= set(row)
    assert used["val"] and used["test"] and not used["val"] & used["test"]
    assert all(sp.corpus_allows(item_id.split(":", 1)[0], {"id": item_id, "pack": Path(item_id).parent.name})
               is False for item_id in used["test"])
