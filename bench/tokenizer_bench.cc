// Tokenizer benchmark: load time of a tokenizer.json and encode throughput on a text file (or a built-in mixed
// corpus). Prints one human line per measurement and a final JSON line.
// Usage: tokenizer_bench TOKENIZER.json [TEXT_FILE] [--repeat N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "tokenizer/tokenizer.h"

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string builtin_corpus() {
  // English prose, code, CJK, emoji and whitespace runs, so word-cache hits and long BPE words both occur.
  const char* parts[] = {
      "The quick brown fox jumps over the lazy dog. Tokenizers split text into pieces by merge rank.\n",
      "int main(int argc, char** argv) {\n    return argc > 1 ? std::atoi(argv[1]) : 0;\n}\n",
      "日本語のテキストも正しく分割されるべきです。中文文本也应该被正确地切分。\n",
      "Emoji 😀🎉🚀 and accents: naïve café Zürich. Numbers 1234567890 3.14159.\n",
      "    indented    with     long      runs of       spaces\t\ttabs\n\n\n",
  };
  std::string s;
  for (int i = 0; i < 2000; ++i) s += parts[i % 5];
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s TOKENIZER.json [TEXT_FILE] [--repeat N]\n", argv[0]);
    return 2;
  }
  std::string text_file;
  int repeat = 5;
  for (int i = 2; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = std::max(1, std::atoi(argv[++i]));
    else text_file = argv[i];
  }
  try {
    std::vector<double> loads;
    for (int i = 0; i < 3; ++i) {
      const double t0 = now_s();
      g4::Tokenizer tok = g4::Tokenizer::from_json_file(argv[1]);
      loads.push_back(now_s() - t0);
    }
    std::sort(loads.begin(), loads.end());
    std::printf("load %s: best %.1f ms, median %.1f ms (3 runs)\n", argv[1], loads[0] * 1e3, loads[1] * 1e3);

    g4::Tokenizer tok = g4::Tokenizer::from_json_file(argv[1]);
    std::string text;
    if (text_file.empty()) {
      text = builtin_corpus();
    } else {
      std::ifstream f(text_file, std::ios::binary);
      if (!f) throw g4::Error("cannot open " + text_file);
      std::stringstream ss;
      ss << f.rdbuf();
      text = ss.str();
    }
    // Cold: first pass fills the word cache; warm: later passes, as a server sees repeated vocabulary.
    double t0 = now_s();
    size_t n_tokens = tok.encode(text).size();
    const double cold = now_s() - t0;
    double best = 1e30;
    for (int r = 0; r < repeat; ++r) {
      t0 = now_s();
      n_tokens = tok.encode(text).size();
      best = std::min(best, now_s() - t0);
    }
    const double mb = double(text.size()) / 1e6;
    std::printf("encode %.2f MB -> %zu tokens: first pass %.1f MB/s, best of %d %.1f MB/s\n", mb, n_tokens, mb / cold,
                repeat, mb / best);
    t0 = now_s();
    const std::vector<int32_t> ids = tok.encode(text);
    t0 = now_s();
    const std::string back = tok.decode(ids);
    const double dec = now_s() - t0;
    std::printf("decode %.1f MB/s\n", double(back.size()) / 1e6 / dec);
    std::printf("{\"load_ms\":%.2f,\"encode_cold_mb_s\":%.2f,\"encode_mb_s\":%.2f,\"decode_mb_s\":%.2f,\"bytes\":%zu,\"tokens\":%zu}\n",
                loads[0] * 1e3, mb / cold, mb / best, double(back.size()) / 1e6 / dec, text.size(), n_tokens);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenizer_bench: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
