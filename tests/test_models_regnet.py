"""RegNetX/Y against torchvision 0.28 (random weights through a real .pth).

The two smallest X and Y designs are compared by logits (the others differ from them only in
the stage parameters compared below); Y-128GF's stage parameters and every state-dict key and shape are compared
with torchvision's model built on the meta device.  The stage widths, depths and group widths of
all 15 designs are compared with torchvision's ``BlockParams``.
"""
import functools

import pytest

from imagenet_cp import models
from imagenet_cp.models import regnet, torchvision_weights
from torchvision_parity import assert_logits_match, flax_state_shapes, torch_state_shapes

CASES = [
    ("regnet_y_400mf", 224),
    ("regnet_y_400mf", 33),
    ("regnet_y_800mf", 64),
    ("regnet_x_400mf", 64),
    ("regnet_x_800mf", 63),
]


@pytest.mark.parametrize("name,size", CASES)
def test_logits_match_torchvision(name, size, tmp_path):
  assert_logits_match(name, size, tmp_path)


def test_logits_match_torchvision_in_batch_chunks(tmp_path):
  """Batch 12: on CPU the ``regnet_batch_chunks`` workaround runs it as two 6-image chunks, each
  stage's blocks as ``regnet_stage_loop``'s loop (the plain graph: tests/test_workarounds.py)."""
  from imagenet_cp.models import layers
  assert layers.batch_chunk(12, regnet.BATCH_CHUNK) == 6
  assert_logits_match("regnet_y_400mf", 32, tmp_path, batch=12)


def _torchvision_block_params(tv, name, monkeypatch):
  """torchvision's ``BlockParams`` for ``regnet_*`` ``name``, taken before any model is built."""
  with monkeypatch.context() as patch:
    patch.setattr(tv.models.regnet, "_regnet", lambda block_params, *args, **kwargs: block_params)
    return getattr(tv.models, name)(weights=None)


@pytest.mark.parametrize("name", sorted(regnet.DESIGNS))
def test_stage_parameters_match_torchvision(name, monkeypatch):
  from imagenet_cp.oracles.torchvision_shim import import_torchvision
  params = _torchvision_block_params(import_torchvision(), name, monkeypatch)
  ours = regnet.block_params(regnet.DESIGNS[name])
  assert [tuple(s) for s in ours] == list(zip(params.widths, params.depths, params.group_widths))
  assert set(params.bottleneck_multipliers) == {1.0} and set(params.strides) == {2}
  assert params.se_ratio == regnet.DESIGNS[name].se_ratio


def test_regnet_y_128gf_state_dict_keys_and_shapes_match_torchvision(monkeypatch):
  torch = pytest.importorskip("torch")
  from imagenet_cp.oracles.torchvision_shim import import_torchvision
  tv = import_torchvision()
  params = _torchvision_block_params(tv, "regnet_y_128gf", monkeypatch)
  with torch.device("meta"):  # no memory for the weights
    model = tv.models.regnet.RegNet(
        params, norm_layer=functools.partial(torch.nn.BatchNorm2d, eps=1e-5, momentum=0.1))
  want = torch_state_shapes(model)
  assert flax_state_shapes(models.build("regnet_y_128gf")) == want
  assert sum(int(torch.Size(s).numel()) for s in want.values()) - sum(
      m.num_features * 2 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)) == (
          torchvision_weights.WEIGHTS["regnet_y_128gf"].num_params)


def test_every_regnet_weight_is_registered_with_its_architecture():
  """V1, V2 and the SWAG weights (Y-16GF/32GF/128GF) all build their model's architecture."""
  weights = [w for w in torchvision_weights.WEIGHTS.values() if w.model.startswith("regnet_")]
  assert {w.model for w in weights} == set(regnet.DESIGNS)
  for w in weights:
    assert models.build(w.name) == models.build(w.model), w.name
