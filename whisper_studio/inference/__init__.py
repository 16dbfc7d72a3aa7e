"""The inference engine behind `transcribe.Transcriber`, split along faster-whisper's lines.

    int8.py      precision: inference_mode (int8 / bf16 / fp32 / fp16), the int8 Linear layer, load_base
    decode.py    DecodeOptions, resolve_language, Decoder: the greedy loop, language detection, generate() kwargs
    longform.py  LongForm: audio over 30 s in 30 s windows with timestamp seeking, through the same greedy loop
    adapters.py  AdapterCache: LoRA adapters by folder over one base (LRU), the model lock, session()
"""
