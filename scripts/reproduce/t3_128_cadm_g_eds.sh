#!/usr/bin/env bash
# Table 3, ImageNet 128x128, CADM-G + EDS (paper: 160.2 2.58 4.92 0.78 0.58).
# The checkpoints' names set their flags (the ADM README's); 250 respaced steps and the classifier scale
# are ADM's, since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t3_128_cadm_g_eds
TITLE="Table 3, ImageNet 128x128, CADM-G + EDS"
RES=128
MODEL=128x128_diffusion.pt
CLASSIFIER=128x128_classifier.pt
GUIDANCE="--guidance eds --classifier_scale ${SCALE:-0.5}"
PAPER="160.2 2.58 4.92 0.78 0.58"
reproduce
