#!/usr/bin/env bash
# Table 1, ImageNet 256x256, ADM (paper: 39.7 26.21 6.35 0.61 0.63).
# Flags are the ADM README's for the checkpoint; 250 respaced steps and the classifier scale are ADM's,
# since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t1_256_adm
TITLE="Table 1, ImageNet 256x256, ADM"
RES=256
MODEL=256x256_diffusion_uncond.pt
MODEL_FLAGS="--attention_resolutions 32,16,8 --class_cond False --diffusion_steps 1000 --image_size 256 --learn_sigma True --noise_schedule linear --num_channels 256 --num_head_channels 64 --num_res_blocks 2 --resblock_updown True --use_fp16 True --use_scale_shift_norm True"
CLASSIFIER=
CLASSIFIER_FLAGS=""
GUIDANCE="--guidance none"
PAPER="39.7 26.21 6.35 0.61 0.63"
reproduce
