# Two entry points for a fresh machine with Python 3.11: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The PyTorch CPU wheel lies in /opt/wheels on this workplace's machines; elsewhere pip uses PyPI.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)

SHARED_DATA ?= ../shared/data
DEMO_DIR ?= demo_output
DEMO_DATASET := $(if $(wildcard $(SHARED_DATA)/sst2/train.tsv),$(SHARED_DATA)/sst2,glue/sst2)
DEMO_TRAIN_SAMPLES ?= 4000
SOCIAL_DATASET := $(SHARED_DATA)/tweets
STREAM_SECONDS ?= 60

.PHONY: install lint test test-fast demo demo-stream clean

install: $(STAMP)

$(STAMP): setup.py requirements/constraints.txt
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet $(FIND_LINKS) -c requirements/constraints.txt -e '.[all]'
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# everything, lint first (what CI runs: .ci/run)
test: lint
	$(VPY) -m pytest

# the edit-and-test loop: no integration tests (real MiniLM, Dask, multi-process, Pub/Sub)
test-fast: $(STAMP)
	$(VPY) -m pytest -m "not integration"

# batch: train on SST-2, export, score a review dump per product and day, write the report page
demo: $(STAMP)
	@echo "demo: training data $(DEMO_DATASET), $(DEMO_TRAIN_SAMPLES) training rows, output in $(DEMO_DIR)/"
	rm -rf $(DEMO_DIR)/model $(DEMO_DIR)/bundle $(DEMO_DIR)/scored $(DEMO_DIR)/reviews.parquet
	$(VENV)/bin/sentiment-train --dataset $(DEMO_DATASET) --output_dir $(DEMO_DIR)/model \
	    --labels negative,positive --max_train_samples $(DEMO_TRAIN_SAMPLES) --epochs 1 \
	    --batch_size 32 --learning_rate 1e-4 --max_length 64
	$(VENV)/bin/sentiment-export --model_dir $(DEMO_DIR)/model --output_dir $(DEMO_DIR)/bundle \
	    --precisions fp32,int8 --eval_dataset $(DEMO_DATASET)
	$(VPY) scripts/make_demo_dump.py --sst2 $(DEMO_DATASET) --output $(DEMO_DIR)/reviews.parquet
	$(VENV)/bin/sentiment-score --input $(DEMO_DIR)/reviews.parquet --output $(DEMO_DIR)/scored/reviews \
	    --model $(DEMO_DIR)/bundle --id_column review_id --key_column product \
	    --time_column reviewed_at --show_rows 8

# streaming: a three-class social model (trained once on ../shared/data/tweets), a local
# Pub/Sub, the stream for $(STREAM_SECONDS) s, its records, aggregates, alerts and stream page
demo-stream: $(STAMP) $(DEMO_DIR)/social-bundle/bundle.json
	$(VPY) scripts/demo_stream.py --bundle $(DEMO_DIR)/social-bundle \
	    --output_dir $(DEMO_DIR)/stream --shared_data $(SHARED_DATA) --seconds $(STREAM_SECONDS)

$(DEMO_DIR)/social-bundle/bundle.json: | $(STAMP)
	$(VENV)/bin/sentiment-train --dataset $(SOCIAL_DATASET) --output_dir $(DEMO_DIR)/social-model \
	    --labels negative,neutral,positive --text_normalization social --languages en \
	    --epochs 1 --batch_size 32 --learning_rate 5e-5 --max_length 96
	$(VENV)/bin/sentiment-export --model_dir $(DEMO_DIR)/social-model \
	    --output_dir $(DEMO_DIR)/social-bundle --precisions fp32 --max_length 96 \
	    --eval_dataset $(SOCIAL_DATASET)

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
