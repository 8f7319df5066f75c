#!/usr/bin/env bash
# Table 1, ImageNet 64x64, CADM (paper: 53.79 2.07 4.35 0.73 0.63).
# Flags are the ADM README's for the checkpoint; 250 respaced steps and the classifier scale are ADM's,
# since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t1_64_cadm
TITLE="Table 1, ImageNet 64x64, CADM"
RES=64
MODEL=64x64_diffusion.pt
MODEL_FLAGS="--attention_resolutions 32,16,8 --class_cond True --diffusion_steps 1000 --dropout 0.1 --image_size 64 --learn_sigma True --noise_schedule cosine --num_channels 192 --num_head_channels 64 --num_res_blocks 3 --resblock_updown True --use_new_attention_order True --use_fp16 True --use_scale_shift_norm True"
CLASSIFIER=
CLASSIFIER_FLAGS=""
GUIDANCE="--guidance none"
PAPER="53.79 2.07 4.35 0.73 0.63"
reproduce
