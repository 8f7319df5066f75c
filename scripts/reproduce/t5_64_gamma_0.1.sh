#!/usr/bin/env bash
# Table 5, ImageNet 64x64, ADM-G + ProG, gamma = 0.1 (paper: 56.84 7.28 9.58).
# The checkpoints' names set their flags (the ADM README's); 250 respaced steps and the classifier scale
# are ADM's, since the paper does not state them.
# Table 5 gives IS, FID and sFID only.
source "$(dirname "$0")/common.sh"
ROW=t5_64_gamma_0.1
TITLE="Table 5, ImageNet 64x64, ADM-G + ProG, gamma = 0.1"
RES=64
MODEL=64x64_diffusion_uncond.pt
# ADM released no such model: the flags of 64x64_diffusion.pt, unconditional
MODEL_FLAGS="$(released_flags 64x64_diffusion.pt class_cond False)"
CLASSIFIER=64x64_classifier.pt
GUIDANCE="--guidance prog --gamma 0.1 --classifier_scale ${SCALE:-1.0}"
PAPER="56.84 7.28 9.58"
NOT_RELEASED="train one with scripts/image_train.py and these MODEL_FLAGS on ImageNet 64x64"
reproduce
