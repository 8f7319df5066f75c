#!/usr/bin/env bash
# Table 3, ImageNet 64x64, CADM-G + EDS (paper: 61.91 1.85 4.36 0.76 0.61).
# The checkpoints' names set their flags (the ADM README's); 250 respaced steps and the classifier scale
# are ADM's, since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t3_64_cadm_g_eds
TITLE="Table 3, ImageNet 64x64, CADM-G + EDS"
RES=64
MODEL=64x64_diffusion.pt
CLASSIFIER=64x64_classifier.pt
GUIDANCE="--guidance eds --classifier_scale ${SCALE:-1.0}"
PAPER="61.91 1.85 4.36 0.76 0.61"
reproduce
