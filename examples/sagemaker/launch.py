"""Launch a Whisper Studio fine-tune as a SageMaker training job (the source recipe's platform).

    pip install sagemaker            # optional extra; not a Whisper Studio requirement
    python examples/sagemaker/launch.py --role arn:aws:iam::123456789012:role/SageMakerRole \
        --data s3://my-bucket/cv-corpus-17.0/mr --language mr

The `train` channel is an extracted Common Voice release folder (`<locale>/train.tsv`, `test.tsv`, `clips/`)
in S3. The adapter comes back as the job's model.tar.gz; metrics, status and log in its output.tar.gz.
"""

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", required=True, help="IAM role SageMaker runs the job as")
    parser.add_argument("--data", required=True, help="s3:// URI of the Common Voice <locale> folder")
    parser.add_argument("--language", default="mr")
    parser.add_argument("--model", default="openai/whisper-large-v2")
    parser.add_argument("--instance-type", default="ml.g5.2xlarge", help="one 24 GB A10G: enough for large-v2 in 8-bit + LoRA")
    parser.add_argument("--instance-count", type=int, default=1)
    parser.add_argument("--epochs", type=float, default=3)
    args = parser.parse_args()

    from sagemaker.huggingface import HuggingFace  # imported late: an optional extra

    estimator = HuggingFace(
        entry_point="examples/sagemaker/entry.py",
        source_dir=str(REPO),
        role=args.role,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        transformers_version="4.49",
        pytorch_version="2.5",
        py_version="py311",
        # More than one GPU or instance: SageMaker starts torchrun; the job is data parallel unchanged.
        distribution={"torch_distributed": {"enabled": True}} if args.instance_count > 1 else None,
        hyperparameters={
            "model": args.model,
            "language": args.language,
            "epochs": args.epochs,
            "rank": 32,
            "alpha": 64,
            "batch-size": 8,
            "learning-rate": 1e-3,
            "load_in_8bit": True,
        },
    )
    estimator.fit({"train": args.data})


if __name__ == "__main__":
    main()
