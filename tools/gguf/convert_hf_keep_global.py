"""Run llama.cpp's convert_hf_to_gguf.py on a Gemma 4 checkpoint, keeping its global-attention keys.

transformers 5.x folds `global_head_dim` and `num_global_key_value_heads` of config.json into
`per_layer_config`, and llama.cpp's converter (which reads the config through transformers) then misses
them. This wrapper puts the values of the model's own config.json back into Gemma4TextConfig.to_dict and
runs the converter unchanged with the remaining arguments.

Usage (PYTHONPATH must hold llama.cpp's gguf-py):
  python3 convert_hf_keep_global.py LLAMA_CPP/convert_hf_to_gguf.py MODEL_DIR --outtype f32 --outfile OUT.gguf
"""
import json
import os
import runpy
import sys

from transformers.models.gemma4 import configuration_gemma4 as gemma4_config

converter, model_dir = sys.argv[1], sys.argv[2]
with open(os.path.join(model_dir, "config.json")) as f:
    config = json.load(f)
text = config.get("text_config", config)
kept = {k: text[k] for k in ("global_head_dim", "num_global_key_value_heads") if k in text}

original_to_dict = gemma4_config.Gemma4TextConfig.to_dict


def to_dict_with_global_keys(self):
    d = original_to_dict(self)
    d.update(kept)
    return d


gemma4_config.Gemma4TextConfig.to_dict = to_dict_with_global_keys
sys.argv = [converter] + sys.argv[2:]
runpy.run_path(converter, run_name="__main__")
