// One conformance suite for every BlobStore implementation (oci/blob_store.h),
// after containerd's content-store test suite (content/testsuite): writer
// round trips, commit errors that leave nothing behind, abandoned and
// concurrent writers, commit of existing content, delete, walk, verified
// reads and a large streamed blob. Add an implementation by adding an Impl
// class to BlobStoreImpls below.
#include <sys/stat.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "oci/blob_store.h"
#include "oci/local_blob_store.h"
#include "oci/memory_blob_store.h"
#include "tests/testing/test_util.h"

namespace strata::oci {
namespace {

namespace fs = std::filesystem;
constexpr std::string_view kType = "application/octet-stream";

// --- implementations under test: store(), plus hooks to look behind it ----

class LocalImpl {
 public:
  LocalImpl() : dir_(testing::MakeTempDir()) {
    auto s = LocalBlobStore::Open(dir_.path());
    EXPECT_TRUE(s.has_value());
    store_ = std::move(*s);
  }
  static constexpr const char* kName = "Local";
  BlobStore& store() { return *store_; }
  // Partial writes left behind (files under ROOT/ingest).
  int Leftovers() const {
    int n = 0;
    for (const auto& e : fs::directory_iterator(store_->IngestDir())) {
      (void)e;
      ++n;
    }
    return n;
  }
  // Changes whenever the stored object is replaced or rewritten.
  std::string Identity(const Digest& d) const {
    struct stat st;
    if (::stat(store_->BlobPath(d).c_str(), &st) != 0) return "absent";
    return fmt::format("{}:{}:{}", st.st_ino, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  }
  void Corrupt(const Digest& d, std::string_view bytes) {
    fs::path p = store_->BlobPath(d);
    fs::permissions(p, fs::perms::owner_write, fs::perm_options::add);
    testing::WriteTestFile(p, bytes, 0444);
  }

 private:
  ScopedTempDir dir_;
  std::unique_ptr<LocalBlobStore> store_;
};

class MemoryImpl {
 public:
  static constexpr const char* kName = "Memory";
  BlobStore& store() { return store_; }
  int Leftovers() const { return store_.open_writers(); }
  std::string Identity(const Digest& d) const {
    const void* p = store_.StorageForTesting(d);
    return p ? fmt::format("{}", p) : "absent";
  }
  void Corrupt(const Digest& d, std::string_view bytes) {
    store_.CorruptForTesting(d, std::string(bytes));
  }

 private:
  MemoryBlobStore store_;
};

template <typename Impl>
class BlobStoreConformanceTest : public ::testing::Test {
 protected:
  BlobStore& store() { return impl_.store(); }

  Result<Descriptor> Write(std::string_view data, std::optional<Digest> expected = std::nullopt,
                           int64_t size = -1) {
    STRATA_ASSIGN_OR_RETURN(auto w, store().NewWriter());
    // In pieces, as a stream arrives.
    for (size_t off = 0; off < data.size(); off += 7) {
      STRATA_RETURN_IF_ERROR(w->Write(data.substr(off, 7)));
    }
    return w->Commit(std::string(kType), std::move(expected), size);
  }

  Result<std::string> ReadAll(const Digest& d) { return ReadBlob(store(), d); }

  Impl impl_;
};

using BlobStoreImpls = ::testing::Types<LocalImpl, MemoryImpl>;
class ImplNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return T::kName;
  }
};
TYPED_TEST_SUITE(BlobStoreConformanceTest, BlobStoreImpls, ImplNames);

// --- writer ---------------------------------------------------------------

TYPED_TEST(BlobStoreConformanceTest, WriteThenReadBack) {
  const std::string data = "hello, content store";
  ASSERT_OK_AND_ASSIGN(auto d, this->Write(data, Digest::Of(data), data.size()));
  EXPECT_EQ(d.digest, Digest::Of(data));
  EXPECT_EQ(d.size, static_cast<int64_t>(data.size()));
  EXPECT_EQ(d.media_type, kType);
  ASSERT_OK_AND_ASSIGN(auto info, this->store().Stat(d.digest));
  EXPECT_EQ(info, (BlobInfo{d.digest, d.size}));
  EXPECT_TRUE(this->store().Has(d.digest));
  ASSERT_OK_AND_ASSIGN(auto back, this->ReadAll(d.digest));
  EXPECT_EQ(back, data);
  EXPECT_EQ(this->impl_.Leftovers(), 0);
}

TYPED_TEST(BlobStoreConformanceTest, CommitWithoutExpectationsNamesTheContent) {
  ASSERT_OK_AND_ASSIGN(auto d, this->Write("anything"));
  EXPECT_EQ(d.digest, Digest::Of("anything"));
  EXPECT_TRUE(this->store().Has(d.digest));
}

TYPED_TEST(BlobStoreConformanceTest, EmptyBlobRoundTrips) {
  ASSERT_OK_AND_ASSIGN(auto d, this->Write("", Digest::Of(""), 0));
  ASSERT_OK_AND_ASSIGN(auto back, this->ReadAll(d.digest));
  EXPECT_EQ(back, "");
}

TYPED_TEST(BlobStoreConformanceTest, WrittenCountsTheBytes) {
  ASSERT_OK_AND_ASSIGN(auto w, this->store().NewWriter());
  EXPECT_EQ(w->written(), 0u);
  ASSERT_OK(w->Write("abc"));
  ASSERT_OK(w->Write("defg"));
  EXPECT_EQ(w->written(), 7u);
}

TYPED_TEST(BlobStoreConformanceTest, WrongDigestIsRefusedAndNothingIsVisible) {
  const Digest claimed = Digest::Of("what the registry promised");
  auto r = this->Write("what arrived", claimed);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr(claimed.ToString()));
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr(Digest::Of("what arrived").ToString()));
  EXPECT_FALSE(this->store().Has(claimed));
  EXPECT_FALSE(this->store().Has(Digest::Of("what arrived")));
  ASSERT_OK_AND_ASSIGN(auto all, this->store().List());
  EXPECT_TRUE(all.empty());
  EXPECT_EQ(this->impl_.Leftovers(), 0);
}

TYPED_TEST(BlobStoreConformanceTest, WrongSizeIsRefusedAndNothingIsVisible) {
  const std::string data = "twelve bytes";
  auto r = this->Write(data, Digest::Of(data), 13);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(r.error().message(), ::testing::HasSubstr("size"));
  EXPECT_FALSE(this->store().Has(Digest::Of(data)));
  EXPECT_EQ(this->impl_.Leftovers(), 0);
}

TYPED_TEST(BlobStoreConformanceTest, FailedCommitThenANewWriterSucceeds) {
  const std::string data = "retry me";
  ASSERT_FALSE(this->Write("truncated", Digest::Of(data)));
  ASSERT_OK(this->Write(data, Digest::Of(data), data.size()));
  ASSERT_OK_AND_ASSIGN(auto back, this->ReadAll(Digest::Of(data)));
  EXPECT_EQ(back, data);
}

TYPED_TEST(BlobStoreConformanceTest, AbandonedWriterLeavesNothing) {
  {
    ASSERT_OK_AND_ASSIGN(auto w, this->store().NewWriter());
    ASSERT_OK(w->Write("half a blob"));
    EXPECT_EQ(this->impl_.Leftovers(), 1);
  }
  EXPECT_EQ(this->impl_.Leftovers(), 0);
  EXPECT_FALSE(this->store().Has(Digest::Of("half a blob")));
  ASSERT_OK_AND_ASSIGN(auto all, this->store().List());
  EXPECT_TRUE(all.empty());
}

TYPED_TEST(BlobStoreConformanceTest, WriterCommitsOnlyOnce) {
  ASSERT_OK_AND_ASSIGN(auto w, this->store().NewWriter());
  ASSERT_OK(w->Write("once"));
  ASSERT_OK(w->Commit(std::string(kType)));
  auto again = w->Commit(std::string(kType));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kFailedPrecondition);
  auto write = w->Write("more");
  ASSERT_FALSE(write);
  EXPECT_EQ(write.error().code(), ErrorCode::kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(auto back, this->ReadAll(Digest::Of("once")));
  EXPECT_EQ(back, "once");
}

TYPED_TEST(BlobStoreConformanceTest, TwoWritersOfTheSameContentBothSucceed) {
  const std::string data = "same bytes from two pulls";
  ASSERT_OK_AND_ASSIGN(auto a, this->store().NewWriter());
  ASSERT_OK_AND_ASSIGN(auto b, this->store().NewWriter());
  ASSERT_OK(a->Write(data.substr(0, 5)));
  ASSERT_OK(b->Write(data.substr(0, 9)));
  ASSERT_OK(a->Write(data.substr(5)));
  ASSERT_OK(b->Write(data.substr(9)));
  ASSERT_OK_AND_ASSIGN(auto da, a->Commit(std::string(kType), Digest::Of(data), data.size()));
  ASSERT_OK_AND_ASSIGN(auto db, b->Commit(std::string(kType), Digest::Of(data), data.size()));
  EXPECT_EQ(da, db);
  ASSERT_OK_AND_ASSIGN(auto all, this->store().List());
  EXPECT_EQ(all, std::vector<Digest>{Digest::Of(data)});
  EXPECT_EQ(this->impl_.Leftovers(), 0);
}

TYPED_TEST(BlobStoreConformanceTest, ConcurrentWritersFromManyThreads) {
  constexpr int kThreads = 8;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      // Half write the same content, half their own.
      std::string data = i % 2 ? "shared content" : fmt::format("own content {}", i);
      for (int round = 0; round < 20; ++round) {
        if (!this->Write(data, Digest::Of(data), data.size())) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_OK_AND_ASSIGN(auto all, this->store().List());
  EXPECT_EQ(all.size(), 1u + kThreads / 2);
  ASSERT_OK_AND_ASSIGN(auto back, this->ReadAll(Digest::Of("shared content")));
  EXPECT_EQ(back, "shared content");
  EXPECT_EQ(this->impl_.Leftovers(), 0);
}

// --- existing content -------------------------------------------------------

TYPED_TEST(BlobStoreConformanceTest, CommitOfExistingContentIsANoOp) {
  const std::string data = "already here";
  ASSERT_OK_AND_ASSIGN(auto first, this->Write(data, Digest::Of(data), data.size()));
  const std::string before = this->impl_.Identity(first.digest);
  ASSERT_OK_AND_ASSIGN(auto second, this->Write(data, Digest::Of(data), data.size()));
  EXPECT_EQ(second.digest, first.digest);
  EXPECT_EQ(second.size, first.size);
  EXPECT_EQ(this->impl_.Identity(first.digest), before);
  EXPECT_EQ(this->impl_.Leftovers(), 0);
}

TYPED_TEST(BlobStoreConformanceTest, ExistingBlobIsNeverReopenedForWriting) {
  const std::string data = "immutable";
  ASSERT_OK_AND_ASSIGN(auto d, this->Write(data));
  const std::string before = this->impl_.Identity(d.digest);
  // A reader is mid-way through the blob while another writer commits it.
  ASSERT_OK_AND_ASSIGN(auto reader, this->store().OpenBlob(d.digest));
  char head[3];
  ASSERT_OK_AND_ASSIGN(size_t n, reader->Read(head, sizeof(head)));
  ASSERT_EQ(n, 3u);
  ASSERT_OK(this->Write(data));
  ASSERT_OK(PutBlob(this->store(), data, "other/type"));
  EXPECT_EQ(this->impl_.Identity(d.digest), before);
  std::string rest(64, '\0');
  ASSERT_OK_AND_ASSIGN(size_t m, reader->Read(rest.data(), rest.size()));
  EXPECT_EQ(std::string(head, 3) + rest.substr(0, m), data);
  ASSERT_OK_AND_ASSIGN(size_t end, reader->Read(rest.data(), rest.size()));
  EXPECT_EQ(end, 0u);
}

// --- missing, delete, list ----------------------------------------------------

TYPED_TEST(BlobStoreConformanceTest, MissingBlobIsNotFound) {
  const Digest missing = Digest::Of("never written");
  EXPECT_FALSE(this->store().Has(missing));
  auto stat = this->store().Stat(missing);
  ASSERT_FALSE(stat);
  EXPECT_EQ(stat.error().code(), ErrorCode::kNotFound);
  auto open = this->store().OpenBlob(missing);
  ASSERT_FALSE(open);
  EXPECT_EQ(open.error().code(), ErrorCode::kNotFound);
  auto del = this->store().Delete(missing);
  ASSERT_FALSE(del);
  EXPECT_EQ(del.error().code(), ErrorCode::kNotFound);
  auto read = this->ReadAll(missing);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code(), ErrorCode::kNotFound);
}

TYPED_TEST(BlobStoreConformanceTest, DeleteRemovesTheBlobButNotAnOpenReader) {
  ASSERT_OK_AND_ASSIGN(auto keep, this->Write("keep"));
  ASSERT_OK_AND_ASSIGN(auto drop, this->Write("drop"));
  ASSERT_OK_AND_ASSIGN(auto reader, this->store().OpenBlob(drop.digest));
  ASSERT_OK(this->store().Delete(drop.digest));
  EXPECT_FALSE(this->store().Has(drop.digest));
  EXPECT_TRUE(this->store().Has(keep.digest));
  auto again = this->store().Delete(drop.digest);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kNotFound);
  char buf[16];
  ASSERT_OK_AND_ASSIGN(size_t n, reader->Read(buf, sizeof(buf)));
  EXPECT_EQ(std::string(buf, n), "drop");
  // Deleted content can be written again.
  ASSERT_OK(this->Write("drop", drop.digest, 4));
  EXPECT_TRUE(this->store().Has(drop.digest));
}

TYPED_TEST(BlobStoreConformanceTest, ListAndWalkSeeEveryCommittedBlob) {
  std::vector<Digest> want;
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK_AND_ASSIGN(auto d, this->Write(fmt::format("blob {}", i)));
    want.push_back(d.digest);
  }
  std::sort(want.begin(), want.end());
  ASSERT_OK_AND_ASSIGN(auto listed, this->store().List());
  EXPECT_EQ(listed, want);
  int64_t total = 0;
  ASSERT_OK(this->store().Walk([&](const BlobInfo& info) -> Status {
    total += info.size;
    return OkStatus();
  }));
  EXPECT_EQ(total, 5 * 6);
}

TYPED_TEST(BlobStoreConformanceTest, WalkMayDeleteWhatItVisitsAndStopsAtAnError) {
  for (int i = 0; i < 4; ++i) ASSERT_OK(this->Write(fmt::format("w{}", i)));
  ASSERT_OK(this->store().Walk(
      [&](const BlobInfo& info) -> Status { return this->store().Delete(info.digest); }));
  ASSERT_OK_AND_ASSIGN(auto left, this->store().List());
  EXPECT_TRUE(left.empty());
  for (int i = 0; i < 4; ++i) ASSERT_OK(this->Write(fmt::format("w{}", i)));
  int visited = 0;
  auto s = this->store().Walk([&](const BlobInfo&) -> Status {
    ++visited;
    return MakeError(ErrorCode::kCancelled, "stop");
  });
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kCancelled);
  EXPECT_EQ(visited, 1);
}

// --- reading ----------------------------------------------------------------

TYPED_TEST(BlobStoreConformanceTest, CorruptBlobIsDataLossAtTheEnd) {
  ASSERT_OK_AND_ASSIGN(auto d, this->Write("original content"));
  this->impl_.Corrupt(d.digest, "tampered content");  // same size
  auto read = this->ReadAll(d.digest);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code(), ErrorCode::kDataLoss);
  EXPECT_THAT(read.error().message(), ::testing::HasSubstr(d.digest.ToString()));
}

TYPED_TEST(BlobStoreConformanceTest, ReadOfZeroBytesIsNotTheEnd) {
  ASSERT_OK_AND_ASSIGN(auto d, this->Write("0123456789"));
  ASSERT_OK_AND_ASSIGN(auto r, this->store().OpenBlob(d.digest));
  EXPECT_EQ(r->size(), 10);
  EXPECT_EQ(r->digest(), d.digest);
  char buf[4];
  ASSERT_OK_AND_ASSIGN(size_t n, r->Read(buf, 4));
  EXPECT_EQ(n, 4u);
  // An empty read mid-stream must not be taken for the end (and verified).
  ASSERT_OK_AND_ASSIGN(size_t zero, r->Read(buf, 0));
  EXPECT_EQ(zero, 0u);
  std::string rest;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(size_t m, r->Read(buf, sizeof(buf)));
    if (m == 0) break;
    rest.append(buf, m);
  }
  EXPECT_EQ(rest, "456789");
}

TYPED_TEST(BlobStoreConformanceTest, LargeBlobIsStreamedInBothDirections) {
  // 48 MiB written and read in 1 MiB pieces through fixed buffers, hashed on
  // both sides: nothing in the API needs the whole blob in one buffer.
  constexpr size_t kPiece = 1 << 20;
  constexpr int kPieces = 48;
  std::vector<char> piece(kPiece);
  Digester expect;
  ASSERT_OK_AND_ASSIGN(auto w, this->store().NewWriter());
  for (int i = 0; i < kPieces; ++i) {
    for (size_t j = 0; j < kPiece; j += 64) piece[j] = static_cast<char>(i * 31 + j / 64);
    expect.Update(piece.data(), piece.size());
    ASSERT_OK(w->Write(piece.data(), piece.size()));
  }
  const Digest digest = expect.Finish();
  const int64_t size = static_cast<int64_t>(kPiece) * kPieces;
  ASSERT_OK_AND_ASSIGN(auto d, w->Commit(std::string(kType), digest, size));
  EXPECT_EQ(d.size, size);
  ASSERT_OK_AND_ASSIGN(auto r, this->store().OpenBlob(digest));
  Digester got;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(size_t n, r->Read(piece.data(), piece.size()));
    if (n == 0) break;
    got.Update(piece.data(), n);
  }
  EXPECT_EQ(got.bytes(), static_cast<uint64_t>(size));
  EXPECT_EQ(got.Finish(), digest);
}

// --- helpers over the interface -------------------------------------------

TYPED_TEST(BlobStoreConformanceTest, PutBlobAndIngestFromVerify) {
  ASSERT_OK_AND_ASSIGN(auto put, PutBlob(this->store(), "{}", "application/json"));
  EXPECT_EQ(put.digest, Digest::Of("{}"));
  EXPECT_EQ(put.media_type, "application/json");
  ASSERT_OK_AND_ASSIGN(auto again, PutBlob(this->store(), "{}", "application/json"));
  EXPECT_EQ(again, put);

  ASSERT_OK_AND_ASSIGN(auto src, this->store().OpenBlob(put.digest));
  auto wrong = IngestFrom(this->store(), *src, std::string(kType), Digest::Of("x"));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_FALSE(this->store().Has(Digest::Of("x")));
  EXPECT_EQ(this->impl_.Leftovers(), 0);
}

}  // namespace
}  // namespace strata::oci
