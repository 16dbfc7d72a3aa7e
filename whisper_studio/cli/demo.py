"""`python -m whisper_studio demo build mr | examples`: synthetic demo corpora and the example clips."""

from __future__ import annotations

import time


def register_cli(subparsers) -> None:
    from whisper_studio.demo import DEFAULT_SIZES, DEMO_LANGUAGES, EXAMPLES_DIR

    parser = subparsers.add_parser("demo", help="synthetic demo data spoken by eSpeak NG",
                                   description="Synthetic demo corpora (Common Voice layout) and example clips.")
    sub = parser.add_subparsers(dest="demo_cmd", required=True)
    b = sub.add_parser("build", help="build a demo corpus in the Common Voice layout (cached)")
    b.add_argument("locale", nargs="+", help=f"one or more of: {' '.join(DEMO_LANGUAGES)} (or 'all')")
    b.add_argument("--root", default=None, help="folder that gets <locale>/ (default: the cache)")
    b.add_argument("--n-train", type=int, default=DEFAULT_SIZES["train"])
    b.add_argument("--n-dev", type=int, default=DEFAULT_SIZES["dev"])
    b.add_argument("--n-test", type=int, default=DEFAULT_SIZES["test"])
    b.add_argument("--seed", type=int, default=0)
    sub.add_parser("examples", help=f"rewrite the example clips in {EXAMPLES_DIR}")
    parser.set_defaults(func=run)


def run(args) -> int:
    from whisper_studio import demo

    if args.demo_cmd == "examples":
        for entry in demo.write_examples():
            print(f"{entry['file']}\t{entry['seconds']} s\t{entry['text'][:60]}")
        return 0
    locales = demo.DEMO_LANGUAGES if args.locale == ["all"] else args.locale
    for locale in locales:
        t = time.perf_counter()
        folder = demo.build_corpus(locale, args.root, n_train=args.n_train, n_dev=args.n_dev, n_test=args.n_test,
                                   seed=args.seed)
        print(f"{locale}\t{folder}\t{time.perf_counter() - t:.1f} s")
    return 0
