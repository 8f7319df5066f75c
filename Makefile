# make demo:          install, then run the main job (ProG) on the shipped digit models (2-core CPU, < 1 min)
# make test:          install with the test extras, then run the test suite
# make digits-models: retrain every shipped digit model with the project's own training scripts
# make fashion-models: train the Fashion-MNIST models (~7.7 h on 2 cores; resumable: run it again to continue)
# make train-demo:    train a tiny model and classifier on a generated toy set, then sample with guidance
PYTHON ?= python3
DEMO ?= demo_out
DEMO_STEPS ?= 400
TOY_FLAGS := --image_size 16 --num_channels 32 --num_res_blocks 1 --channel_mult 1,2 --attention_resolutions 8 \
             --num_head_channels 32 --class_cond True --num_classes 3 --diffusion_steps 1000 --noise_schedule cosine
TOY_CLASSIFIER_FLAGS := --classifier_width 32 --classifier_depth 1 --classifier_channel_mult 1,2 \
             --classifier_attention_resolutions 8 --num_classes 3

.PHONY: install install-dev test lint demo digits-models fashion-models train-demo clean

install:
	$(PYTHON) -m pip install -q -e .

install-dev:
	$(PYTHON) -m pip install -q -e ".[dev]"

test: install-dev
	$(PYTHON) -m pytest -q

lint: install-dev
	$(PYTHON) -m ruff check .

demo: install
	OPENAI_LOGDIR=$(DEMO)/prog $(PYTHON) scripts/prog_classifier_sample.py
	@echo "samples: $(DEMO)/prog/samples_64x16x16x3.npz, grid: $(DEMO)/prog/samples_64x16x16x3.png"

digits-models: install-dev
	$(PYTHON) scripts/train_digits_models.py --jobs 2

fashion-models: install-dev
	$(PYTHON) scripts/train_fashion_models.py --jobs 2

train-demo: install
	$(PYTHON) scripts/make_toy_dataset.py --out_dir $(DEMO)/data --num_images 300 --image_size 16
	OPENAI_LOGDIR=$(DEMO)/model $(PYTHON) scripts/image_train.py --data_dir $(DEMO)/data $(TOY_FLAGS) \
		--batch_size 32 --lr 2e-3 --ema_rate 0.99 --lr_anneal_steps $(DEMO_STEPS) --save_interval $(DEMO_STEPS) --log_interval 100
	OPENAI_LOGDIR=$(DEMO)/classifier $(PYTHON) scripts/classifier_train.py --data_dir $(DEMO)/data --image_size 16 \
		$(TOY_CLASSIFIER_FLAGS) --diffusion_steps 1000 --noise_schedule cosine --batch_size 32 --lr 1e-3 \
		--iterations $(DEMO_STEPS) --save_interval $(DEMO_STEPS) --log_interval 100
	OPENAI_LOGDIR=$(DEMO)/samples $(PYTHON) scripts/classifier_sample.py $(TOY_FLAGS) $(TOY_CLASSIFIER_FLAGS) \
		--model_path $(DEMO)/model/ema_0.99_$$(printf %06d $(DEMO_STEPS)).pt \
		--classifier_path $(DEMO)/classifier/model$$(printf %06d $(DEMO_STEPS)).pt \
		--classifier_scale 2.0 --timestep_respacing 250 --num_samples 48 --batch_size 48
	$(PYTHON) scripts/npz_to_grid.py $(DEMO)/samples/samples_48x16x16x3.npz --out $(DEMO)/samples/grid.png --nrow 12

clean:
	rm -rf $(DEMO) build *.egg-info
