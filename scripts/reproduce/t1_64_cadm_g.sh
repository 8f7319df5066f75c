#!/usr/bin/env bash
# Table 1, ImageNet 64x64, CADM-G (paper: 66.52 2.02 4.62 0.78 0.59).
# Flags are the ADM README's for the checkpoint; 250 respaced steps and the classifier scale are ADM's,
# since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t1_64_cadm_g
TITLE="Table 1, ImageNet 64x64, CADM-G"
RES=64
MODEL=64x64_diffusion.pt
MODEL_FLAGS="--attention_resolutions 32,16,8 --class_cond True --diffusion_steps 1000 --dropout 0.1 --image_size 64 --learn_sigma True --noise_schedule cosine --num_channels 192 --num_head_channels 64 --num_res_blocks 3 --resblock_updown True --use_new_attention_order True --use_fp16 True --use_scale_shift_norm True"
CLASSIFIER=64x64_classifier.pt
CLASSIFIER_FLAGS="--image_size 64 --classifier_depth 4"
GUIDANCE="--guidance vanilla --classifier_scale ${SCALE:-1.0}"
PAPER="66.52 2.02 4.62 0.78 0.59"
reproduce
