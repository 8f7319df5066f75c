#!/usr/bin/env bash
# Table 1, ImageNet 256x256, ADM-G (paper: 96.15 11.96 10.28 0.75 0.45).
# The checkpoints' names set their flags (the ADM README's); 250 respaced steps and the classifier scale
# are ADM's, since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t1_256_adm_g
TITLE="Table 1, ImageNet 256x256, ADM-G"
RES=256
MODEL=256x256_diffusion_uncond.pt
CLASSIFIER=256x256_classifier.pt
GUIDANCE="--guidance vanilla --classifier_scale ${SCALE:-10.0}"
PAPER="96.15 11.96 10.28 0.75 0.45"
reproduce
