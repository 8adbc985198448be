import pytest
import torch

from usad import create_model, list_presets
from usad.model import count_parameters

PAPER_PARAMS = {"usad-small": 24e6, "usad-base": 94e6, "usad-large": 330e6}


@pytest.mark.parametrize("name", list(PAPER_PARAMS))
def test_paper_presets_within_5_percent(name):
    with torch.device("meta"):
        model = create_model(name)
    assert abs(count_parameters(model) / PAPER_PARAMS[name] - 1) < 0.05


def test_edge_presets_are_smaller_and_25hz_halves_frames():
    with torch.device("meta"):
        small = count_parameters(create_model("usad-small"))
    for name in ("usad-tiny", "usad-nano"):
        with torch.device("meta"):
            assert count_parameters(create_model(name)) < small / 4
    assert "usad-tiny-25hz" in list_presets()
    wave = torch.randn(1, 32000)
    assert create_model("usad-tiny")(wave).mask.shape[1] == 99
    assert create_model("usad-tiny-25hz")(wave).mask.shape[1] == 50


def test_forward_shapes_and_layers():
    torch.manual_seed(0)
    model = create_model("usad-nano").eval()
    out = model(torch.randn(2, 16000), torch.tensor([16000, 9000]))
    assert len(out.hidden_states) == model.config.depth + 1
    assert out.hidden_states[-1].shape == (2, 49, 192)
    assert out.mask.sum(1).tolist() == model.num_frames(torch.tensor([16000, 9000])).tolist()
    assert out.pooled().shape == (2, 192)


@pytest.mark.parametrize("name", ["usad-tiny", "usad-tiny-25hz"])
def test_padded_batch_equals_each_clip_alone(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    lengths = [48000, 30011, 7000, 401]
    batch = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        batch[i, :n] = torch.randn(n) * 0.1
    with torch.no_grad():
        out = model(batch, torch.tensor(lengths))
        for i, n in enumerate(lengths):
            alone = model(batch[i: i + 1, :n])
            t = alone.mask.shape[1]
            assert out.mask[i].sum().item() == t
            for a, b in zip(alone.hidden_states, out.hidden_states):
                assert (a[0] - b[i, :t]).abs().max().item() < 1e-5
                assert b[i, t:].abs().max().item() == 0 if b.shape[1] > t else True


def test_short_input_is_a_clear_error():
    with pytest.raises(ValueError, match="shorter than one 25 ms frame"):
        create_model("usad-nano")(torch.zeros(1, 100))


def test_overrides_and_unknown_preset():
    assert create_model("usad-nano", depth=2).config.depth == 2
    with pytest.raises(KeyError, match="unknown preset"):
        create_model("usad-huge")


def test_gflops_per_second_counts_the_transformer():
    model = create_model("usad-nano")
    gflops = model.gflops_per_second()
    # Lower bound: the blocks' weight matmuls alone, 2 FLOPs per MAC at 50 frames per second.
    block_params = sum(p.numel() for p in model.blocks.parameters() if p.dim() == 2)
    assert gflops > 2 * block_params * 50 / 1e9
    assert gflops < 1.0
