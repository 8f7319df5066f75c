from setuptools import find_packages, setup

setup(
    name="guided-diffusion",
    version="0.1.0",
    description="ADM-compatible diffusion models with classifier guidance and Progressive Guidance (ProG)",
    packages=find_packages(include=["guided_diffusion", "guided_diffusion.*"]),
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
    ],
    extras_require={"dev": ["pytest", "ruff"]},
)
