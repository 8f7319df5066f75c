#!/usr/bin/env bash
# Table 1, ImageNet 64x64, CADM-G + ProG (paper: 65.65 1.87 4.33 0.77 0.60).
# The checkpoints' names set their flags (the ADM README's); 250 respaced steps and the classifier scale
# are ADM's, since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t1_64_cadm_g_prog
TITLE="Table 1, ImageNet 64x64, CADM-G + ProG"
RES=64
MODEL=64x64_diffusion.pt
CLASSIFIER=64x64_classifier.pt
GUIDANCE="--guidance prog --gamma 0.04 --classifier_scale ${SCALE:-1.0}"
PAPER="65.65 1.87 4.33 0.77 0.60"
reproduce
