"""Three tiny stand-ins for the demo's three EfficientNet-Lites (``--models=demo_models:...`` in
the tests of the several-model run): pooled linear models that get every demo photo right when
clean, each with its own slopes (so its own corrupted errors and attacks)."""
import adversarial_models


def small():
  return adversarial_models.demo_classifier()


def sharp():
  return adversarial_models.demo_classifier_sharp()


def flat():
  return adversarial_models.demo_classifier(margin=2.0, steepness=0.5)
