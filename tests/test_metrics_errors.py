"""Bad input raises a ValueError that says what is wrong."""
import numpy as np
import pytest

from imagenet_cp import metrics

LOGITS = np.zeros((3, 10), np.float32)
SEQ = np.zeros((2, 5, 10), np.float32)
FOG = [0.5] * 5


@pytest.mark.parametrize("a,b,match", [
    (np.zeros((10,), np.float32), np.zeros((10,), np.float32), "rank 2"),
    (np.zeros((3, 10), np.float32), np.zeros((4, 10), np.float32), "same shape"),
    (np.zeros((3, 4), np.float32), np.zeros((3, 4), np.float32), "at least 5 classes"),
    (np.zeros((3, 10), np.int32), np.zeros((3, 10), np.int32), "floating point"),
])
def test_top5_distance_bad_shapes(a, b, match):
  with pytest.raises(ValueError, match=match):
    metrics.top5_distance(a, b)


def test_nan_logits_raise():
  bad = LOGITS.copy()
  bad[1, 2] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    metrics.top5_distance(LOGITS, bad)
  seq = SEQ.copy()
  seq[0, 4, 0] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    metrics.mean_top5_distance(seq, noise=False)
  with pytest.raises(ValueError, match="NaN"):
    metrics.error_counts(bad, np.zeros(3, np.int32)).host()


@pytest.mark.parametrize("kwargs,match", [
    (dict(predictions=np.zeros((5,), np.int32), noise=False), "rank 2"),
    (dict(predictions=np.zeros((2, 5), np.float32), noise=False), "integers"),
    (dict(predictions=np.zeros((2, 5), np.int32), noise=False, difficulty=0), "difficulty"),
    (dict(predictions=np.zeros((2, 5), np.int32), noise=False, difficulty=4), "difficulty"),
    (dict(predictions=np.zeros((2, 5), np.int32), noise=False, difficulty=1.0), "difficulty"),
    (dict(predictions=np.zeros((2, 5), np.int32), noise="yes"), "noise"),
    (dict(predictions=np.zeros((2, 2), np.int32), noise=False, difficulty=2), "no pairs"),
    (dict(predictions=np.zeros((2, 1), np.int32), noise=True), "no pairs"),
])
def test_flip_probability_bad_input(kwargs, match):
  with pytest.raises(ValueError, match=match):
    metrics.flip_probability(**kwargs)


def test_streaming_bad_input():
  with pytest.raises(ValueError, match="labels have 2 entries"):
    metrics.error_counts(LOGITS, np.zeros(2, np.int32))
  with pytest.raises(ValueError, match=r"labels must be in \[0, 10\)"):
    metrics.error_counts(LOGITS, np.array([0, 10, 1]))
  with pytest.raises(ValueError, match="labels must be integers"):
    metrics.error_counts(LOGITS, np.zeros(3, np.float32))
  with pytest.raises(ValueError, match="mask must be bool"):
    metrics.error_counts(LOGITS, np.zeros(3, np.int32), np.ones(3, np.int32))
  with pytest.raises(ValueError, match="mask must have shape"):
    metrics.sequence_counts(SEQ, noise=False, mask=np.ones(3, bool))
  with pytest.raises(ValueError, match="rank 3"):
    metrics.sequence_counts(LOGITS, noise=False)


def test_unknown_names_raise():
  with pytest.raises(ValueError, match="unknown corruption 'fogg'"):
    metrics.ce(FOG, "fogg")
  with pytest.raises(ValueError, match="unknown corruption"):
    metrics.relative_ce(FOG, 0.2, "translate")
  with pytest.raises(ValueError, match="unknown perturbation 'jpeg_compression'"):
    metrics.fr(0.1, "jpeg_compression")
  with pytest.raises(ValueError, match="unknown names"):
    metrics.mce({"fogg": 1.0})
  with pytest.raises(ValueError, match="missing"):
    metrics.mce({"fog": 1.0})
  with pytest.raises(ValueError, match="unknown corruption"):
    metrics.summarize({("fogg", 1): metrics.ErrorCounts(errors=1, examples=2)})
  with pytest.raises(ValueError, match="unknown perturbation"):
    metrics.Baseline(name="x", flip_probability={("blur", 1): 0.1})


@pytest.mark.parametrize("severity", [0, 6, -1, 2.5, True, np.True_, "3"])
def test_severities_outside_1_to_5_raise(severity):
  if severity is not True and severity is not np.True_:  # True == 1 as a dict key
    with pytest.raises(ValueError, match="severit"):
      metrics.ce({1: 0.5, 2: 0.5, 3: 0.5, 4: 0.5, 5: 0.5, severity: 0.5}, "fog")
  with pytest.raises(ValueError, match="severity"):
    metrics.Baseline(name="x", errors={("fog", severity): 0.5})


def test_wrong_number_of_severities_raises():
  with pytest.raises(ValueError, match="one error per severity"):
    metrics.ce([0.5] * 4, "fog")
  with pytest.raises(ValueError, match=r"no error for severities \[5\]"):
    metrics.ce({1: 0.5, 2: 0.5, 3: 0.5, 4: 0.5}, "fog")


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), "high"])
def test_probabilities_outside_0_1_raise(value):
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    metrics.ce([0.5, 0.5, 0.5, 0.5, value], "fog")
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    metrics.relative_ce(FOG, value, "fog")
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    metrics.fr(value, "rotate")
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    metrics.Baseline(name="x", clean_error=value)


def test_ut5d_outside_0_18_raises():
  with pytest.raises(ValueError, match=r"\[0, 18\]"):
    metrics.t5d(19.0, "rotate")


def test_missing_baseline_values_raise_clearly():
  with pytest.raises(ValueError, match="difficulty 1 only"):
    metrics.fr(0.1, "rotate", difficulty=2)
  empty = metrics.Baseline(name="empty")
  with pytest.raises(ValueError, match="no error for fog"):
    metrics.ce(FOG, "fog", baseline=empty)
  with pytest.raises(ValueError, match="no clean error"):
    metrics.relative_ce(FOG, 0.2, "fog", baseline=metrics.Baseline(
        name="no clean", errors={("fog", s): 0.6 for s in range(1, 6)}))
