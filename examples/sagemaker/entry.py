"""SageMaker entry point: the unmodified training job, with SageMaker's hyperparameter spelling accepted.

SageMaker runs `python entry.py --epochs 3 --load_in_8bit False ...` inside the Hugging Face training container
with `source_dir` (the repository root, so requirements.txt is installed) as the working directory.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, where whisper_studio lives

from whisper_studio.cli import main  # noqa: E402
from whisper_studio.sagemaker import normalize_argv  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(["train", *normalize_argv(sys.argv[1:], {"--load-in-8bit": ("--8bit=on", "--no-8bit")})]))
