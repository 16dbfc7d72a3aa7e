"""demo: the synthetic eSpeak NG corpus (Common Voice layout) built by `whisper_studio.demo`, then read as a
Common Voice folder. Works offline; marked synthetic everywhere."""

from __future__ import annotations

from whisper_studio.sources.base import Source, scaled
from whisper_studio.sources.cv_folder import read_cv_folder


class DemoSource(Source):
    kind = "demo"
    label = "Demo — synthetic eSpeak NG speech"

    def load(self, src, language, splits, progress, report, *, api_key=None):
        from whisper_studio import demo  # lazy: it loads eSpeak NG

        # 1. Build (or find in the cache) the corpus: most of the time of a first load.
        folder = demo.build_corpus(language.locale, progress=scaled(progress, 0.0, 0.8))
        report.synthetic = True
        report.notes.append("Synthetic speech (eSpeak NG): for trying the pipeline, not for real accuracy.")
        # 2. Read it like any Common Voice release.
        return read_cv_folder(folder, language, splits, progress=scaled(progress, 0.8, 0.2), report=report)

    def describe(self, src) -> str:
        return "synthetic eSpeak NG demo corpus (robotic speech, Common Voice layout)"
