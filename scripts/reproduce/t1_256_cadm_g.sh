#!/usr/bin/env bash
# Table 1, ImageNet 256x256, CADM-G (paper: 188.91 4.58 5.21 0.81 0.52).
# The checkpoints' names set their flags (the ADM README's); 250 respaced steps and the classifier scale
# are ADM's, since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t1_256_cadm_g
TITLE="Table 1, ImageNet 256x256, CADM-G"
RES=256
MODEL=256x256_diffusion.pt
CLASSIFIER=256x256_classifier.pt
GUIDANCE="--guidance vanilla --classifier_scale ${SCALE:-1.0}"
PAPER="188.91 4.58 5.21 0.81 0.52"
reproduce
