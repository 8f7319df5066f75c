#!/usr/bin/env bash
# Table 3, ImageNet 256x256, CADM-G + EDS (paper: 212.51 3.96 5.0 0.82 0.52).
# The checkpoints' names set their flags (the ADM README's); 250 respaced steps and the classifier scale
# are ADM's, since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t3_256_cadm_g_eds
TITLE="Table 3, ImageNet 256x256, CADM-G + EDS"
RES=256
MODEL=256x256_diffusion.pt
CLASSIFIER=256x256_classifier.pt
GUIDANCE="--guidance eds --classifier_scale ${SCALE:-1.0}"
PAPER="212.51 3.96 5.0 0.82 0.52"
reproduce
