#!/usr/bin/env bash
# A Cloud TPU VM pod slice: the same command on every worker; jax.distributed.initialize()
# discovers the pod by itself. Each worker needs the repository (with `make venv` done) and the
# ImageNet validation tar at the same path (e.g. a GCS FUSE mount or a copy on each worker).
# Not run here (no TPU). CPU stand-in: tests/test_distributed.py.
#
#   launch/evaluate_tpu_pod.sh my-tpu us-central2-b resnet50 /mnt/imagenet /mnt/out/resnet50
set -euo pipefail
TPU=${1:?TPU name}
ZONE=${2:?zone}
MODEL=${3:?model}
IMAGENET_DIR=${4:?folder with ILSVRC2012_img_val.tar on every worker}
OUT=${5:?output folder (shared, or read on worker 0)}
gcloud compute tpus tpu-vm ssh "$TPU" --zone="$ZONE" --worker=all --command="\
  cd imagenet-cp && .venv/bin/python -m metrics.run --distributed --model=$MODEL \
  --imagenet_dir=$IMAGENET_DIR --output_dir=$OUT --batch_size=1024"
