"""The Debian-package sources of the corpus on a small fake tree: which files each source takes,
zip members, content tokens, duplicates dropped, per-domain shards and the Opus bitrate option."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from usad.config import SAMPLE_RATE
from usad.data import sources as src
from usad.data.corpus import build_corpus
from usad.data.recipes import RECIPES, _distinct
from usad.data.shards import encode_opus, iter_shard, opus_compression_level, read_manifest

USAD = str(Path(sys.executable).with_name("usad"))  # the console script, as a user runs it


def test_each_source_takes_its_files_with_stable_ids(tree):
    ids = {name: [i.id for i in src.game_items(tree, name)] for name in
           ("tuxpaint-voices", "tuxpaint-sfx", "ufoai-sfx", "warzone2100-music", "fillets-voices", "retro-sfx")}
    assert ids["tuxpaint-voices"] == ["tuxpaint-voices:tuxpaint/stamps/animals/cat_desc_fr.ogg",
                                      "tuxpaint-voices:tuxpaint/stamps/animals/cat_desc_ru.ogg"]
    assert ids["tuxpaint-sfx"] == ["tuxpaint-sfx:tuxpaint/stamps/animals/cat.ogg"]  # spoken descriptions excluded
    assert ids["ufoai-sfx"] == ["ufoai-sfx:ufoai/base/0snd.pk3:sound/aliens/roar.ogg",
                                "ufoai-sfx:ufoai/base/0snd.pk3:sound/doors/open.ogg"]
    assert ids["fillets-voices"] == ["fillets-voices:fillets-ng/sound/city/cs/vit-m-hlava.ogg"]
    assert ids["retro-sfx"] == ["retro-sfx:fillets-ng/sound/city/bubble.ogg"]  # the effect, not the dialogue
    assert len(ids["warzone2100-music"]) == 2
    member = src.game_items(tree, "ufoai-sfx")[0]
    assert member.tokens == (member.id,) and member.labels["member"] == "sound/aliens/roar.ogg"
    assert src.content_token(member).startswith("zip-crc:")
    assert src.item_seconds(member) == pytest.approx(1.0, abs=0.05)


def test_duplicate_content_is_taken_once(tree):
    items = src.game_items(tree, "warzone2100-music")
    assert src.content_token(items[0]) == src.content_token(items[1])
    assert len(_distinct(items, "warzone2100-music")) == 1


def test_every_recipe_names_a_known_source_and_domain():
    for recipe in RECIPES:
        assert recipe.domain in ("speech", "sound", "music") and 0 < recipe.share <= 1
        if recipe.name in src.GAME_AUDIO:
            assert src.GAME_AUDIO[recipe.name].domain == recipe.domain
            assert src.GAME_AUDIO[recipe.name].licence


def test_shards_hold_one_domain_each_and_the_manifest_says_which(tree, tmp_path):
    subset = ("tuxpaint-voices", "fillets-voices", "ufoai-sfx", "tuxpaint-sfx", "warzone2100-music")
    manifest = build_corpus(tmp_path / "c", hours_per_domain=0.01, subset=subset, paths=tree, shard_mb=0.004,
                            workers=1)
    assert {s["domain"] for s in manifest["shards"]} == {"speech", "sound", "music"}
    assert len(manifest["shards"]) > 3
    for shard in manifest["shards"]:
        clips = list(iter_shard(tmp_path / "c" / shard["path"]))
        assert clips and {c.domain for c in clips} == {shard["domain"]} == set(shard["seconds"])
        assert shard["path"].startswith(shard["domain"] + "-")
    assert manifest["domains"]["music"]["hours"] == pytest.approx(25.0 / 3600, abs=2e-4)  # the copy is dropped
    assert manifest["domains"]["speech"]["real_hours"] == manifest["domains"]["speech"]["hours"] > 0
    assert "zip-crc:" in " ".join(manifest["source_tokens"])


def test_lower_bitrate_makes_smaller_files_that_still_decode_at_16k():
    rng = np.random.default_rng(0)
    audio = (0.2 * rng.standard_normal(5 * SAMPLE_RATE)).astype(np.float32)
    sizes = {}
    for kbps in (8.0, 24.0, None):
        opus = encode_opus(audio, kbps)
        decoded, rate = sf.read(io.BytesIO(opus), dtype="float32")
        assert rate == SAMPLE_RATE and decoded.size == audio.size
        sizes[kbps] = len(opus)
    assert sizes[8.0] < sizes[24.0] < sizes[None]
    assert sizes[8.0] * 8 / 5 / 1000 == pytest.approx(8.0, rel=0.35)  # what libsndfile makes of the target
    assert encode_opus(audio, 12.0) == encode_opus(audio, 12.0)
    with pytest.raises(ValueError, match="outside"):
        opus_compression_level(3.0)


@pytest.mark.parametrize("flag, message", [("speech=fast", "expected DOMAIN=KBPS"), ("speech=2", "outside"),
                                           ("noise=12", "unknown domain")])
def test_bad_bitrate_is_one_line_and_nonzero_exit(tmp_path, flag, message):
    run = subprocess.run([USAD, "data", "corpus", "--out", str(tmp_path / "c"),
                          "--bitrate", flag, "--subset", "fsdd"], capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and message in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "c" / "manifest.json").exists()


def test_manifest_records_the_bitrates(tree, tmp_path):
    manifest = build_corpus(tmp_path / "c", hours_per_domain=0.001, subset=("ufoai-sfx",), paths=tree, workers=1,
                            kbps={"sound": 10.0})
    assert read_manifest(tmp_path / "c")["request"]["opus_kbps"]["sound"] == 10.0
    assert json.loads((tmp_path / "c" / "manifest.json").read_text()) == manifest
