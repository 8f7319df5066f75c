#!/usr/bin/env bash
# Table 1, ImageNet 64x64, ADM-G (paper: 46.90 6.40 9.67 0.65 0.54).
# The checkpoints' names set their flags (the ADM README's); 250 respaced steps and the classifier scale
# are ADM's, since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t1_64_adm_g
TITLE="Table 1, ImageNet 64x64, ADM-G"
RES=64
MODEL=64x64_diffusion_uncond.pt
# ADM released no such model: the flags of 64x64_diffusion.pt, unconditional
MODEL_FLAGS="$(released_flags 64x64_diffusion.pt class_cond False)"
CLASSIFIER=64x64_classifier.pt
GUIDANCE="--guidance vanilla --classifier_scale ${SCALE:-1.0}"
PAPER="46.90 6.40 9.67 0.65 0.54"
NOT_RELEASED="train one with scripts/image_train.py and these MODEL_FLAGS on ImageNet 64x64"
reproduce
