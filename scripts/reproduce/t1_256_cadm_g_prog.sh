#!/usr/bin/env bash
# Table 1, ImageNet 256x256, CADM-G + ProG (paper: 222.09 4.53 5.08 0.85 0.49).
# The checkpoints' names set their flags (the ADM README's); 250 respaced steps and the classifier scale
# are ADM's, since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t1_256_cadm_g_prog
TITLE="Table 1, ImageNet 256x256, CADM-G + ProG"
RES=256
MODEL=256x256_diffusion.pt
CLASSIFIER=256x256_classifier.pt
GUIDANCE="--guidance prog --gamma 0.04 --classifier_scale ${SCALE:-1.0}"
PAPER="222.09 4.53 5.08 0.85 0.49"
reproduce
