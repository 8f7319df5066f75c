#!/usr/bin/env bash
# Table 1, ImageNet 256x256, ADM-G + ProG (paper: 99.45 11.21 8.67 0.76 0.46).
# The checkpoints' names set their flags (the ADM README's); 250 respaced steps and the classifier scale
# are ADM's, since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t1_256_adm_g_prog
TITLE="Table 1, ImageNet 256x256, ADM-G + ProG"
RES=256
MODEL=256x256_diffusion_uncond.pt
CLASSIFIER=256x256_classifier.pt
GUIDANCE="--guidance prog --gamma 0.04 --classifier_scale ${SCALE:-10.0}"
PAPER="99.45 11.21 8.67 0.76 0.46"
reproduce
