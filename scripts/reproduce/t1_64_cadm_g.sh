#!/usr/bin/env bash
# Table 1, ImageNet 64x64, CADM-G (paper: 66.52 2.02 4.62 0.78 0.59).
# The checkpoints' names set their flags (the ADM README's); 250 respaced steps and the classifier scale
# are ADM's, since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t1_64_cadm_g
TITLE="Table 1, ImageNet 64x64, CADM-G"
RES=64
MODEL=64x64_diffusion.pt
CLASSIFIER=64x64_classifier.pt
GUIDANCE="--guidance vanilla --classifier_scale ${SCALE:-1.0}"
PAPER="66.52 2.02 4.62 0.78 0.59"
reproduce
