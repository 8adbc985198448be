import numpy as np
import pytest
import soundfile as sf

from usad.audio import AudioError, iter_audio_blocks, load_audio


def test_real_fsdd_8k_flac_is_resampled(shared):
    path = shared / "data/fsdd/recordings/0_george_0.flac"
    info = sf.info(path)
    audio = load_audio(path)
    assert info.samplerate == 8000 and audio.dtype == np.float32
    assert abs(len(audio) - info.frames * 2) <= 2


def test_real_gcompris_opus_reads(shared):
    audio = load_audio(shared / "data/gcompris-voices/fr/colors/red.ogg")
    assert audio.ndim == 1 and len(audio) > 4000 and np.abs(audio).max() > 0.01


def test_stereo_44k_is_downmixed_and_resampled(tmp_path, rng):
    tone = np.sin(2 * np.pi * 440 * np.arange(44100) / 44100).astype(np.float32)
    sf.write(tmp_path / "stereo.wav", np.stack([tone, -tone * 0 + tone], axis=1) * 0.5, 44100)
    audio = load_audio(tmp_path / "stereo.wav")
    assert len(audio) == 16000
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 Hz bins over one second


@pytest.mark.parametrize(
    "name, payload, message",
    [("empty.wav", np.zeros(0, np.float32), "empty audio"),
     ("nan.wav", np.array([0.1, np.nan, 0.2] * 200, np.float32), "NaN/inf")],
)
def test_bad_audio_is_a_clear_error(tmp_path, name, payload, message):
    sf.write(tmp_path / name, payload, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=message):
        load_audio(tmp_path / name)


def test_unreadable_and_missing_files(tmp_path):
    (tmp_path / "junk.mp3").write_bytes(b"\x00" * 100)
    with pytest.raises(AudioError, match="junk.mp3: unreadable"):
        load_audio(tmp_path / "junk.mp3")
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "nope.wav")


def test_too_long_is_refused_before_reading(tmp_path):
    sf.write(tmp_path / "long.wav", np.zeros(16000 * 5, np.float32), 16000)
    with pytest.raises(AudioError, match="longer than the 2 s limit"):
        load_audio(tmp_path / "long.wav", max_seconds=2)


def test_short_clip_is_padded_to_one_frame(tmp_path):
    sf.write(tmp_path / "click.wav", np.ones(100, np.float32) * 0.1, 16000)
    assert len(load_audio(tmp_path / "click.wav")) == 400


def test_streamed_blocks_equal_whole_file(tmp_path, rng):
    audio = (rng.standard_normal(22050 * 7) * 0.1).astype(np.float32)
    sf.write(tmp_path / "a.flac", audio, 22050)
    whole = load_audio(tmp_path / "a.flac")
    streamed = np.concatenate(list(iter_audio_blocks(tmp_path / "a.flac", block_seconds=2.0)))
    assert abs(len(streamed) - len(whole)) <= 2
    n = min(len(streamed), len(whole))
    assert np.abs(streamed[:n] - whole[:n]).max() < 1e-3
