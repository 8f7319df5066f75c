#!/usr/bin/env bash
# Table 3, ImageNet 256x256, CADM-G + EDS + ProG (paper: 232.86 3.84 5.0 0.83 0.51).
# The checkpoints' names set their flags (the ADM README's); 250 respaced steps and the classifier scale
# are ADM's, since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t3_256_cadm_g_eds_prog
TITLE="Table 3, ImageNet 256x256, CADM-G + EDS + ProG"
RES=256
MODEL=256x256_diffusion.pt
CLASSIFIER=256x256_classifier.pt
GUIDANCE="--guidance prog_eds --gamma 0.04 --classifier_scale ${SCALE:-1.0}"
PAPER="232.86 3.84 5.0 0.83 0.51"
reproduce
