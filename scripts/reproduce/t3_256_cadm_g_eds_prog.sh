#!/usr/bin/env bash
# Table 3, ImageNet 256x256, CADM-G + EDS + ProG (paper: 232.86 3.84 5.0 0.83 0.51).
# Flags are the ADM README's for the checkpoint; 250 respaced steps and the classifier scale are ADM's,
# since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t3_256_cadm_g_eds_prog
TITLE="Table 3, ImageNet 256x256, CADM-G + EDS + ProG"
RES=256
MODEL=256x256_diffusion.pt
MODEL_FLAGS="--attention_resolutions 32,16,8 --class_cond True --diffusion_steps 1000 --image_size 256 --learn_sigma True --noise_schedule linear --num_channels 256 --num_head_channels 64 --num_res_blocks 2 --resblock_updown True --use_fp16 True --use_scale_shift_norm True"
CLASSIFIER=256x256_classifier.pt
CLASSIFIER_FLAGS="--image_size 256"
GUIDANCE="--guidance prog_eds --gamma 0.04 --classifier_scale ${SCALE:-1.0}"
PAPER="232.86 3.84 5.0 0.83 0.51"
reproduce
