#!/usr/bin/env bash
# Table 5, ImageNet 64x64, ADM-G + ProG, gamma = 0.0 (paper: 7.97 73.10 19.77).
# Flags are the ADM README's for the checkpoint; 250 respaced steps and the classifier scale are ADM's,
# since the paper does not state them.
# Table 5 gives IS, FID and sFID only.
source "$(dirname "$0")/common.sh"
ROW=t5_64_gamma_0.0
TITLE="Table 5, ImageNet 64x64, ADM-G + ProG, gamma = 0.0"
RES=64
MODEL=64x64_diffusion_uncond.pt
MODEL_FLAGS="--attention_resolutions 32,16,8 --class_cond False --diffusion_steps 1000 --dropout 0.1 --image_size 64 --learn_sigma True --noise_schedule cosine --num_channels 192 --num_head_channels 64 --num_res_blocks 3 --resblock_updown True --use_new_attention_order True --use_fp16 True --use_scale_shift_norm True"
CLASSIFIER=64x64_classifier.pt
CLASSIFIER_FLAGS="--image_size 64 --classifier_depth 4"
GUIDANCE="--guidance prog --gamma 0.0 --classifier_scale ${SCALE:-1.0}"
PAPER="7.97 73.10 19.77"
NOT_RELEASED="train one with scripts/image_train.py and these MODEL_FLAGS on ImageNet 64x64"
reproduce
