#!/usr/bin/env bash
# Table 3, ImageNet 256x256, CADM + classifier-free guidance (paper: 191.31 3.76 4.87 0.80 0.55).
# The checkpoints' names set their flags (the ADM README's); 250 respaced steps and the classifier scale
# are ADM's, since the paper does not state them.
# The paper's w is not stated; 1.0 is a placeholder.
source "$(dirname "$0")/common.sh"
ROW=t3_256_cadm_cfg
TITLE="Table 3, ImageNet 256x256, CADM + classifier-free guidance"
RES=256
MODEL=256x256_diffusion_cfg.pt
# ADM released no such model: the flags of 256x256_diffusion.pt, with label dropout
MODEL_FLAGS="$(released_flags 256x256_diffusion.pt label_dropout 0.1)"
CLASSIFIER=
GUIDANCE="--guidance cfg --cfg_scale 1.0"
PAPER="191.31 3.76 4.87 0.80 0.55"
NOT_RELEASED="train a class-conditional model with label dropout (scripts/image_train.py $MODEL_FLAGS)"
reproduce
