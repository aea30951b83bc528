// Hashing and ingest throughput of the store (see docs/PERFORMANCE.md).
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

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

// Ingest of a real file ($STRATA_BENCH_FILE, e.g. 1 GiB), read in 1 MiB
// chunks: read + sha256 + write + fsync + link, the path of every pulled or
// committed blob. Compare with `openssl dgst -sha256 FILE`.
void BM_IngestFile(benchmark::State& state) {
  const char* file = std::getenv("STRATA_BENCH_FILE");
  if (file == nullptr) {
    state.SkipWithError("set STRATA_BENCH_FILE");
    return;
  }
  auto dir = strata::ScopedTempDir::Create(std::filesystem::path(file).parent_path());
  std::vector<char> buf(1 << 20);
  int64_t total = 0;
  for (auto _ : state) {
    auto store = strata::oci::Store::Open(dir->path() / "store");
    auto fd = strata::OpenFile(file, O_RDONLY);
    auto w = (*store)->Ingest();
    for (;;) {
      ssize_t n = ::read(fd->get(), buf.data(), buf.size());
      if (n <= 0) break;
      (void)w->Write(buf.data(), static_cast<size_t>(n));
      total += n;
    }
    auto d = w->Commit("application/octet-stream");
    state.PauseTiming();
    (void)strata::RemoveAll(dir->path() / "store");
    state.ResumeTiming();
  }
  state.SetBytesProcessed(total);
}
BENCHMARK(BM_IngestFile)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
