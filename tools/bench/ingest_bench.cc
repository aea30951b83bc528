// Hashing and ingest throughput of the store (see docs/PERFORMANCE.md).
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>

#include "oci/digest.h"
#include "oci/store.h"
#include "oci/util/file_util.h"

namespace {

std::string RandomBuffer(size_t n) {
  std::mt19937_64 rng(42);
  std::string s(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&s[i], &v, 8);
  }
  return s;
}

void BM_Sha256(benchmark::State& state) {
  std::string buf = RandomBuffer(1 << 20);
  for (auto _ : state) {
    strata::oci::Digester h;
    for (int i = 0; i < 64; ++i) h.Update(buf);
    benchmark::DoNotOptimize(h.Finish());
  }
  state.SetBytesProcessed(state.iterations() * 64 * (1 << 20));
}
BENCHMARK(BM_Sha256)->Unit(benchmark::kMillisecond);

void BM_Ingest(benchmark::State& state) {
  auto dir = strata::ScopedTempDir::Create();
  auto store = strata::oci::Store::Open(dir->path() / "store");
  std::string buf = RandomBuffer(1 << 20);
  int round = 0;
  for (auto _ : state) {
    auto w = (*store)->Ingest();
    std::string salt = std::to_string(round++);
    (void)w->Write(salt);
    for (int i = 0; i < 64; ++i) (void)w->Write(buf);
    benchmark::DoNotOptimize(w->Commit("application/octet-stream"));
  }
  state.SetBytesProcessed(state.iterations() * 64 * (1 << 20));
}
BENCHMARK(BM_Ingest)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
