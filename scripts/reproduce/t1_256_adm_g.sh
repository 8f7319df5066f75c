#!/usr/bin/env bash
# Table 1, ImageNet 256x256, ADM-G (paper: 96.15 11.96 10.28 0.75 0.45).
# Flags are the ADM README's for the checkpoint; 250 respaced steps and the classifier scale are ADM's,
# since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t1_256_adm_g
TITLE="Table 1, ImageNet 256x256, ADM-G"
RES=256
MODEL=256x256_diffusion_uncond.pt
MODEL_FLAGS="--attention_resolutions 32,16,8 --class_cond False --diffusion_steps 1000 --image_size 256 --learn_sigma True --noise_schedule linear --num_channels 256 --num_head_channels 64 --num_res_blocks 2 --resblock_updown True --use_fp16 True --use_scale_shift_norm True"
CLASSIFIER=256x256_classifier.pt
CLASSIFIER_FLAGS="--image_size 256"
GUIDANCE="--guidance vanilla --classifier_scale ${SCALE:-10.0}"
PAPER="96.15 11.96 10.28 0.75 0.45"
reproduce
