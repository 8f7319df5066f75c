#!/usr/bin/env bash
# Table 3, ImageNet 256x256, CADM + classifier-free guidance (paper: 191.31 3.76 4.87 0.80 0.55).
# Flags are the ADM README's for the checkpoint; 250 respaced steps and the classifier scale are ADM's,
# since the paper does not state them.
# The paper's w is not stated; 1.0 is a placeholder.
source "$(dirname "$0")/common.sh"
ROW=t3_256_cadm_cfg
TITLE="Table 3, ImageNet 256x256, CADM + classifier-free guidance"
RES=256
MODEL=256x256_diffusion_cfg.pt
MODEL_FLAGS="--attention_resolutions 32,16,8 --class_cond True --diffusion_steps 1000 --image_size 256 --learn_sigma True --noise_schedule linear --num_channels 256 --num_head_channels 64 --num_res_blocks 2 --resblock_updown True --use_fp16 True --use_scale_shift_norm True --label_dropout 0.1"
CLASSIFIER=
CLASSIFIER_FLAGS=""
GUIDANCE="--guidance cfg --cfg_scale 1.0"
PAPER="191.31 3.76 4.87 0.80 0.55"
NOT_RELEASED="train a class-conditional model with label dropout (scripts/image_train.py $MODEL_FLAGS --label_dropout 0.1)"
reproduce
