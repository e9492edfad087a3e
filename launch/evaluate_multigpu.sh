#!/usr/bin/env bash
# One host, all its GPUs (or TPU cores): no jax.distributed needed. JAX sees every local device;
# metrics.evaluate shards each batch (corruption, perturbation and model) over all of them.
# Not run here (this project's CI has no GPU); the same code path runs on 4 fake CPU devices in
# the tests.
#
#   launch/evaluate_multigpu.sh resnet50 /data/imagenet out/resnet50
set -euo pipefail
MODEL=${1:?model name, e.g. resnet50}
IMAGENET_DIR=${2:?folder with ILSVRC2012_img_val.tar}
OUT=${3:-out/$MODEL}
NGPU=$(nvidia-smi -L 2>/dev/null | wc -l || echo 1)
# 64 images per device per step; the last batch is padded and masked, never dropped.
exec python -m metrics.run --model="$MODEL" --imagenet_dir="$IMAGENET_DIR" \
  --output_dir="$OUT" --batch_size=$(( 64 * (NGPU > 0 ? NGPU : 1) ))
