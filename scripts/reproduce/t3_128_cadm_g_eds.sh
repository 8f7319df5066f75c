#!/usr/bin/env bash
# Table 3, ImageNet 128x128, CADM-G + EDS (paper: 160.2 2.58 4.92 0.78 0.58).
# Flags are the ADM README's for the checkpoint; 250 respaced steps and the classifier scale are ADM's,
# since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t3_128_cadm_g_eds
TITLE="Table 3, ImageNet 128x128, CADM-G + EDS"
RES=128
MODEL=128x128_diffusion.pt
MODEL_FLAGS="--attention_resolutions 32,16,8 --class_cond True --diffusion_steps 1000 --image_size 128 --learn_sigma True --noise_schedule linear --num_channels 256 --num_heads 4 --num_res_blocks 2 --resblock_updown True --use_fp16 True --use_scale_shift_norm True"
CLASSIFIER=128x128_classifier.pt
CLASSIFIER_FLAGS="--image_size 128"
GUIDANCE="--guidance eds --classifier_scale ${SCALE:-0.5}"
PAPER="160.2 2.58 4.92 0.78 0.58"
reproduce
