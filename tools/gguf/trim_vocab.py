"""Copy a GGUF, cutting the tokenizer arrays to the model's vocabulary (rows of token_embd.weight).

transformers' GemmaTokenizer adds a `<mask>` token past the end of a small model's vocabulary, so
llama.cpp's converter writes one token more than the embedding has rows and llama.cpp then refuses
the file. Everything else (metadata, tensors, their types and bytes) is copied unchanged.

Usage: /usr/bin/python3 trim_vocab.py IN.gguf OUT.gguf LLAMA_CPP/gguf-py
"""
import sys

sys.path.insert(0, sys.argv[3])
import gguf  # noqa: E402

src, dst = sys.argv[1], sys.argv[2]
reader = gguf.GGUFReader(src)
arch = reader.fields["general.architecture"].contents()
embedding = next(t for t in reader.tensors if t.name == "token_embd.weight")
n_vocab = int(embedding.shape[1])  # ggml order: [n_embd, n_vocab]

writer = gguf.GGUFWriter(dst, arch)
for field in reader.fields.values():
    if field.name == "general.architecture" or field.name.startswith("GGUF."):
        continue
    value_type = field.types[0]
    sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
    value = field.contents()
    if field.name in ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"):
        value = value[:n_vocab]
    writer.add_key_value(field.name, value, value_type, sub_type=sub_type)
for t in reader.tensors:
    writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_ti_data_to_file()
for t in reader.tensors:
    writer.write_tensor_data(t.data, tensor_endianess=reader.endianess)
writer.close()
print(f"wrote {dst}: vocabulary cut to {n_vocab} tokens")
