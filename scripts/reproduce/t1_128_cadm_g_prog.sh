#!/usr/bin/env bash
# Table 1, ImageNet 128x128, CADM-G + ProG (paper: 157.24 2.77 5.09 0.80 0.59).
# The checkpoints' names set their flags (the ADM README's); 250 respaced steps and the classifier scale
# are ADM's, since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t1_128_cadm_g_prog
TITLE="Table 1, ImageNet 128x128, CADM-G + ProG"
RES=128
MODEL=128x128_diffusion.pt
CLASSIFIER=128x128_classifier.pt
GUIDANCE="--guidance prog --gamma 0.04 --classifier_scale ${SCALE:-0.5}"
PAPER="157.24 2.77 5.09 0.80 0.59"
reproduce
