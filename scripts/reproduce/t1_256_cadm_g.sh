#!/usr/bin/env bash
# Table 1, ImageNet 256x256, CADM-G (paper: 188.91 4.58 5.21 0.81 0.52).
# Flags are the ADM README's for the checkpoint; 250 respaced steps and the classifier scale are ADM's,
# since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t1_256_cadm_g
TITLE="Table 1, ImageNet 256x256, CADM-G"
RES=256
MODEL=256x256_diffusion.pt
MODEL_FLAGS="--attention_resolutions 32,16,8 --class_cond True --diffusion_steps 1000 --image_size 256 --learn_sigma True --noise_schedule linear --num_channels 256 --num_head_channels 64 --num_res_blocks 2 --resblock_updown True --use_fp16 True --use_scale_shift_norm True"
CLASSIFIER=256x256_classifier.pt
CLASSIFIER_FLAGS="--image_size 256"
GUIDANCE="--guidance vanilla --classifier_scale ${SCALE:-1.0}"
PAPER="188.91 4.58 5.21 0.81 0.52"
reproduce
