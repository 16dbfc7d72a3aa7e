"""The inference engine behind `transcribe.Transcriber`, split along faster-whisper's lines.

    int8.py      precision: inference_mode (int8 / bf16 / fp32 / fp16), the int8 Linear layer, load_base
    decode.py    DecodeOptions, resolve_language, Decoder: the greedy loop, language detection, generate() kwargs
    adapters.py  AdapterCache: LoRA adapters by folder over one base (LRU), the model lock, session()
"""
