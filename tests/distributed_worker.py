"""One process of a two-process CPU evaluation, all three suites (tests/test_distributed.py)."""
import json
import sys

import jax


def tiny_classifier():
  """A deterministic, cheap classifier: 8x8 average-pooled pixels -> random linear map."""
  import jax.numpy as jnp
  w = jax.random.normal(jax.random.key(7), (8 * 8 * 3, 1000))

  def apply_fn(variables, images):
    n = images.shape[0]
    pooled = images.reshape(n, 8, 28, 8, 28, 3).mean(axis=(2, 4)).reshape(n, -1)
    return jnp.dot(pooled, variables["w"], precision=jax.lax.Precision.HIGHEST)

  return apply_fn, {"w": w}


EVAL_KWARGS = dict(source="demo", max_images=4, corruptions=("contrast",), severities=(1, 5),
                   perturbations=("translate", "gaussian_noise"), batch_size=4, bootstrap=0,
                   progress=False, chunk_size=1)


def adversarial_kwargs() -> dict:
  """The adversarial suite's settings (a budget search, a fixed-budget white-box and a black-box
  attack, a two-model transfer matrix), cheap on the 4 demo photos."""
  from imagenet_cp.suites import adversarial
  import adversarial_models
  config = adversarial.Config(steps=3, initial_eps=0.25, doubling_steps=5, bisection_steps=2,
                              apgd_iterations=4,
                              blackbox_steps=2, nes_samples=2,
                              iterations_eps=(("linf", 1.0), ("l2", 64.0)), transfer_eps=1.0)
  transfer = [("demo", *adversarial_models.demo_classifier()),
              ("sharp", *adversarial_models.demo_classifier_sharp())]
  return dict(source="demo", max_images=4, chunk_size=1, batch_size=4, config=config,
              attack_names=("pgd_linf", "apgd_ce_linf", "nes_linf"),
              transfer_models=transfer, model_name="demo", log=lambda _: None)


def adversarial_results() -> dict:
  """The adversarial suite on the demo classifier (tests/adversarial_models.py)."""
  from imagenet_cp.suites import adversarial
  import adversarial_models
  apply_fn, variables = adversarial_models.demo_classifier()
  return adversarial.evaluate_adversarial(apply_fn, variables, **adversarial_kwargs())


def arrays_results() -> dict:
  """The adversarial suite on one given example (an affine model on a 4x4 image): the second
  process has no row, so it attacks nothing and still joins every gather."""
  from imagenet_cp.suites import adversarial
  import attack_models
  case = attack_models.linear_problem(n=1, side=4, classes=2, seed=2)
  config = adversarial.Config(steps=5, initial_eps=1.0, doubling_steps=6, bisection_steps=4,
                              blackbox_steps=2, nes_samples=2, transfer_eps=4.0,
                              iterations_eps=(("linf", 4.0), ("l2", 16.0)))
  return adversarial.evaluate_adversarial(
      attack_models.linear_apply, case.variables, images=case.images, labels=case.labels,
      file_names=["only"], attack_names=("bim_linf", "nes_linf"), config=config, batch_size=2,
      log=lambda _: None)


OOD_DATASETS = ("imagenet_a", "imagenet2012_real")


def ood_kwargs(data_dir) -> dict:
  """The OOD suite's settings on the stand-ins of ``OOD_DATASETS`` (7 + 7 examples, 4 + 4
  slices of 2) built by tests/test_distributed.py."""
  return dict(datasets=OOD_DATASETS, data_dir=data_dir, batch_size=2, chunk_size=2,
              model_name="planted", log=lambda _: None)


def ood_results(data_dir, output_dir, datasets=OOD_DATASETS) -> dict:
  """The OOD suite with the planted classifier, and how many slices this process scored."""
  import ood_standin
  import test_ood
  from imagenet_cp.suites import ood
  scored, score = [], ood.slice_records

  def counted(*args, **kwargs):
    scored.append(1)
    return score(*args, **kwargs)

  ood.slice_records = counted
  try:
    results = ood.evaluate_ood(ood_standin.planted_apply, test_ood.planted_variables(),
                               output_dir=output_dir, **dict(ood_kwargs(data_dir),
                                                             datasets=datasets))
  finally:
    ood.slice_records = score
  return {"results": results, "scored_slices": len(scored)}


def main(port: int, process_id: int, out_path: str, ood_data_dir: str, ood_output_dir: str) -> None:
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=process_id,
                             initialization_timeout=120)
  from imagenet_cp.suites import corruption as evaluation
  apply_fn, variables = tiny_classifier()
  results = evaluation.evaluate(apply_fn, variables, **EVAL_KWARGS)
  results["adversarial"] = adversarial_results()
  results["adversarial_arrays"] = arrays_results()
  if process_id == 0:
    with open(out_path, "w") as f:
      json.dump(results, f)
  with open(f"{out_path}.ood{process_id}", "w") as f:   # every process's: all hold the results
    json.dump(ood_results(ood_data_dir, ood_output_dir), f)
  jax.distributed.shutdown()


if __name__ == "__main__":
  main(int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:6])
