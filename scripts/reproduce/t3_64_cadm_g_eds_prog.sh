#!/usr/bin/env bash
# Table 3, ImageNet 64x64, CADM-G + EDS + ProG (paper: 65.89 1.77 4.25 0.77 0.61).
# Flags are the ADM README's for the checkpoint; 250 respaced steps and the classifier scale are ADM's,
# since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t3_64_cadm_g_eds_prog
TITLE="Table 3, ImageNet 64x64, CADM-G + EDS + ProG"
RES=64
MODEL=64x64_diffusion.pt
MODEL_FLAGS="--attention_resolutions 32,16,8 --class_cond True --diffusion_steps 1000 --dropout 0.1 --image_size 64 --learn_sigma True --noise_schedule cosine --num_channels 192 --num_head_channels 64 --num_res_blocks 3 --resblock_updown True --use_new_attention_order True --use_fp16 True --use_scale_shift_norm True"
CLASSIFIER=64x64_classifier.pt
CLASSIFIER_FLAGS="--image_size 64 --classifier_depth 4"
GUIDANCE="--guidance prog_eds --gamma 0.04 --classifier_scale ${SCALE:-1.0}"
PAPER="65.89 1.77 4.25 0.77 0.61"
reproduce
