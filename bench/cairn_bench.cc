// cairn_bench: the core benchmark. It creates a synthetic training data set (many small files with
// log-normal sizes, some tiny and some multi-MiB ones) and runs named workloads on any directory,
// so the same binary measures a plain local file system and a Cairn mount side by side:
//
//   create      4 threads create every file (open O_CREAT|O_WRONLY, write, close).
//   stat        drop the page, dentry and inode caches, then 4 threads stat every file and check
//               its size (cold: the file system answers each stat from what it has stored).
//   restat      the same without dropping caches (warm: what a second pass over the tree costs).
//   list        4 threads readdir every directory and check the entry count.
//   epoch       drop the page cache, then 16 threads read every file whole in a shuffled order,
//               check the size and spot-check the content.
//   native-epoch  the same epoch through Cairn's native client (include/cairn/client.h) on the
//               Cairn mount --mount that holds --root: the dataset index is taken first (its
//               time is the "native-index" line), then the page cache dropped and the files read.
//   checkpoint  write one large file with 1 MiB writes and fsync; drop the page cache; read it
//               back with 1 MiB reads and check all of its content; drop the page cache again and
//               read it with 16 threads, each its own range. Then 8 threads each write and fsync
//               a shard file (the shards add up to the same size) and, after a cache drop, read
//               their shard back.
//
// Sizes, contents and the shuffle come from our own splitmix64 and integer arithmetic only (no
// std:: distributions or libm), so the data set is the same byte for byte on every compiler and
// standard library. MB/s means 10^6 bytes per second.
//
// The program exits 1 if any I/O error, size mismatch or content mismatch was seen, 2 on bad
// usage.

#include <cairn/client.h>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/core.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace cairn::bench {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;

constexpr uint64_t kFilesPerDir = 1000;
constexpr uint64_t kMaxFileSize = 16 * kMiB;
constexpr uint64_t kMedianFileSize = 48 * kKiB;
// Out of 10,000 files: 200 tiny (< 4 KiB) and 50 large (2-16 MiB); the rest are log-normal.
constexpr uint64_t kTinyPer10k = 200;
constexpr uint64_t kLargePer10k = 50;
constexpr uint64_t kIoBlock = 1 * kMiB;
constexpr uint64_t kSpotWindow = 4 * kKiB;
constexpr int kPipelineDepth = 4;
constexpr int kMaxPrintedErrors = 20;

// Tags keep the random streams for sizes, contents, the shuffle and the checkpoint apart.
constexpr uint64_t kSizeTag = 0x73697a6573697a65;
constexpr uint64_t kContentTag = 0x636f6e74656e7421;
constexpr uint64_t kShuffleTag = 0x73687566666c6521;
constexpr uint64_t kCheckpointTag = 0x636b7074636b7074;
constexpr uint64_t kGolden = 0x9e3779b97f4a7c15;

// The splitmix64 output function: a bijective mix of all 64 bits.
constexpr uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9;
  x ^= x >> 27;
  x *= 0x94d049bb133111eb;
  x ^= x >> 31;
  return x;
}

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    state_ += kGolden;
    return Mix64(state_);
  }
  // Uniform in [0, n) by the multiply-shift method; the bias is below 2^-40 for our n.
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }

 private:
  uint64_t state_;
};

// round(2^(k/16) * 2^32) for k = 0..16, for the piecewise-linear 2^x below.
constexpr uint64_t kExp2Q32[17] = {4294967296, 4485121744, 4683695048, 4891059943, 5107605667,
                                   5333738689, 5569883475, 5816483285, 6074001000, 6342919999,
                                   6623745059, 6917003306, 7223245206, 7543045592, 7877004752,
                                   8225749546, 8589934592};
// round(sigma * log2(e) * 2^32) with sigma = 1.0: e^(sigma*z) = 2^(sigma*log2(e)*z).
constexpr int64_t kSigmaLog2eQ32 = 6196328019;

// median * e^(sigma * z) for z ~ N(0, 1), in integer arithmetic so that it is the same everywhere.
// z is the Irwin-Hall sum of 12 uniforms minus 6 (mean 0, variance 1, bounded by +-6).
uint64_t LogNormalSize(SplitMix64& rng) {
  int64_t sum = 0;
  for (int i = 0; i < 12; ++i) sum += static_cast<int64_t>(rng.Next() >> 32);
  const int64_t z_q32 = sum - (int64_t{6} << 32);
  const int64_t x_q32 = static_cast<int64_t>((static_cast<__int128>(z_q32) * kSigmaLog2eQ32) >> 32);
  const int64_t whole = x_q32 >> 32;  // floor, also for negative x
  const uint64_t frac = static_cast<uint64_t>(x_q32) & 0xffffffff;
  const uint64_t slot = frac >> 28;
  const uint64_t rest = frac & ((uint64_t{1} << 28) - 1);
  const uint64_t mantissa_q32 =
      kExp2Q32[slot] + (((kExp2Q32[slot + 1] - kExp2Q32[slot]) * rest) >> 28);
  // |whole| <= 9 because |x| <= 6 * 1.45, so the shift stays within 23..41.
  const unsigned __int128 scaled = static_cast<unsigned __int128>(kMedianFileSize) * mantissa_q32;
  const uint64_t size = static_cast<uint64_t>(scaled >> (32 - whole));
  return std::clamp<uint64_t>(size, 1, kMaxFileSize);
}

// The synthetic data set: file i lives at ROOT/d{i/1000:05}/f{i:06}.bin; its size and content
// depend only on (seed, i).
class DataSet {
 public:
  DataSet(uint64_t seed, uint64_t files) : seed_(seed), files_(files) {}

  uint64_t seed() const { return seed_; }
  uint64_t files() const { return files_; }
  uint64_t dirs() const { return (files_ + kFilesPerDir - 1) / kFilesPerDir; }
  uint64_t FilesInDir(uint64_t dir) const {
    return std::min(kFilesPerDir, files_ - dir * kFilesPerDir);
  }

  uint64_t FileSize(uint64_t index) const {
    SplitMix64 rng(Mix64(seed_ ^ kSizeTag) ^ Mix64(index));
    const uint64_t kind = rng.Below(10000);
    if (kind < kTinyPer10k) return 1 + rng.Below(4 * kKiB - 1);
    if (kind < kTinyPer10k + kLargePer10k) return 2 * kMiB + rng.Below(14 * kMiB + 1);
    return LogNormalSize(rng);
  }
  uint64_t ContentKey(uint64_t index) const { return Mix64(Mix64(seed_ ^ kContentTag) + index); }
  uint64_t CheckpointKey() const { return Mix64(seed_ ^ kCheckpointTag); }

  static std::string DirPath(std::string_view root, uint64_t dir) {
    return fmt::format("{}/d{:05}", root, dir);
  }
  static std::string FilePath(std::string_view root, uint64_t index) {
    return fmt::format("{}/d{:05}/f{:06}.bin", root, index / kFilesPerDir, index);
  }

 private:
  uint64_t seed_;
  uint64_t files_;
};

// Content of a stream with key k: the little-endian bytes of Mix64(k + w * golden) for word w.
// Any byte range can be produced without producing what comes before it.
void FillContent(uint64_t key, uint64_t offset, char* out, size_t length) {
  uint64_t word_index = offset / 8;
  size_t skip = offset % 8;
  while (length > 0) {
    const uint64_t word = Mix64(key + word_index * kGolden);
    if (skip == 0 && length >= 8 && std::endian::native == std::endian::little) {
      std::memcpy(out, &word, 8);
      out += 8;
      length -= 8;
    } else {
      for (size_t b = skip; b < 8 && length > 0; ++b) {
        *out++ = static_cast<char>((word >> (8 * b)) & 0xff);
        --length;
      }
      skip = 0;
    }
    ++word_index;
  }
}

// Returns the offset of the first 4 KiB chunk that differs, or nullopt if all of it matches.
std::optional<uint64_t> CheckContent(uint64_t key, uint64_t offset, const char* data,
                                     size_t length) {
  char expected[kSpotWindow];
  for (size_t done = 0; done < length;) {
    const size_t n = std::min<size_t>(sizeof(expected), length - done);
    FillContent(key, offset + done, expected, n);
    if (std::memcmp(expected, data + done, n) != 0) return offset + done;
    done += n;
  }
  return std::nullopt;
}

// A heap buffer that only grows and is never zero-filled.
class Buffer {
 public:
  char* Reserve(size_t size) {
    if (size > capacity_) {
      data_ = std::make_unique_for_overwrite<char[]>(size);
      capacity_ = size;
    }
    return data_.get();
  }

 private:
  std::unique_ptr<char[]> data_;
  size_t capacity_ = 0;
};

// Reads until `length` bytes or end of file. Returns the bytes read, or -1 with errno set.
ssize_t ReadFull(int fd, char* data, size_t length) {
  size_t done = 0;
  while (done < length) {
    const ssize_t n = read(fd, data + done, length - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(done);
}

// Returns false with errno set on failure; a write that makes no progress counts as EIO.
bool WriteFull(int fd, const char* data, size_t length) {
  while (length > 0) {
    const ssize_t n = write(fd, data, length);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) {
      errno = EIO;
      return false;
    }
    data += n;
    length -= static_cast<size_t>(n);
  }
  return true;
}

// Counts failures by kind and prints the first few. Thread-safe.
class ErrorLog {
 public:
  enum class Kind { kIo, kSize, kContent };

  void Add(Kind kind, const std::string& message) {
    switch (kind) {
      case Kind::kIo:
        io_.fetch_add(1, std::memory_order_relaxed);
        break;
      case Kind::kSize:
        size_.fetch_add(1, std::memory_order_relaxed);
        break;
      case Kind::kContent:
        content_.fetch_add(1, std::memory_order_relaxed);
        break;
    }
    std::lock_guard lock(mu_);
    if (printed_ < kMaxPrintedErrors) {
      fmt::print(stderr, "error: {}\n", message);
      if (++printed_ == kMaxPrintedErrors)
        fmt::print(stderr, "error: (further errors not shown)\n");
    }
  }
  void AddErrno(const std::string& what, const std::string& path) {
    Add(Kind::kIo, fmt::format("{} {}: {}", what, path, std::strerror(errno)));
  }

  uint64_t io() const { return io_.load(); }
  uint64_t size() const { return size_.load(); }
  uint64_t content() const { return content_.load(); }
  uint64_t total() const { return io() + size() + content(); }

 private:
  std::atomic<uint64_t> io_{0};
  std::atomic<uint64_t> size_{0};
  std::atomic<uint64_t> content_{0};
  std::mutex mu_;
  int printed_ = 0;  // GUARDED_BY(mu_)
};

struct WorkloadResult {
  std::string workload;
  uint64_t files = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  int threads = 1;
  uint64_t errors = 0;

  double FilesPerSecond() const { return seconds > 0 ? files / seconds : 0; }
  double MegabytesPerSecond() const { return seconds > 0 ? bytes / seconds / 1e6 : 0; }
};

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// Runs body(item) for item in [0, count) on `threads` threads, handing out `batch` items at a time.
void ParallelFor(int threads, uint64_t count, uint64_t batch,
                 const std::function<void(uint64_t)>& body) {
  std::atomic<uint64_t> next{0};
  std::vector<std::jthread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (;;) {
        const uint64_t begin = next.fetch_add(batch, std::memory_order_relaxed);
        if (begin >= count) return;
        const uint64_t end = std::min(count, begin + batch);
        for (uint64_t item = begin; item < end; ++item) body(item);
      }
    });
  }
}

// An unbounded queue between threads; Pop() returns nullopt once it is closed and empty.
template <typename T>
class Channel {
 public:
  void Push(T value) {
    {
      std::lock_guard lock(mu_);
      items_.push_back(std::move(value));
    }
    cv_.notify_one();
  }
  std::optional<T> Pop() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !items_.empty() || closed_; });
    if (items_.empty()) return std::nullopt;
    T value = std::move(items_.front());
    items_.pop_front();
    return value;
  }
  void Close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> items_;  // GUARDED_BY(mu_)
  bool closed_ = false;  // GUARDED_BY(mu_)
};

// Blocks that circulate between an I/O thread and a thread that makes or checks their content,
// so that content generation overlaps with the I/O being measured.
struct Block {
  std::unique_ptr<char[]> data = std::make_unique_for_overwrite<char[]>(kIoBlock);
  uint64_t offset = 0;
  size_t length = 0;
};

// Lets the disk finish what deletes left it (a file system mounted with `discard` trims freed
// blocks after the commit), so that the next measurement does not pay for the previous one.
void Settle() {
  sync();
  std::this_thread::sleep_for(std::chrono::seconds(3));
}

// Syncs, then drops the kernel's page, dentry and inode caches so that the reads that follow go
// to the file system below. Warns once if that is not allowed (not root); the run goes on warm.
void DropCaches() {
  static std::once_flag warn_once;
  sync();
  const int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
  const bool ok = fd >= 0 && write(fd, "3", 1) == 1;
  const int saved_errno = errno;
  if (fd >= 0) close(fd);
  if (!ok) {
    std::call_once(warn_once, [&] {
      fmt::print(stderr,
                 "warning: cannot drop the page cache ({}); reads may be served from memory. "
                 "Run as root for cold-cache numbers.\n",
                 std::strerror(saved_errno));
    });
  }
}

struct Options {
  std::string command;
  std::string root;
  uint64_t files = 0;
  uint64_t seed = 42;
  int threads = 4;
  int threads_read = 16;
  uint64_t checkpoint_size = 4 * kGiB;
  int checkpoint_writers = 8;
  int checkpoint_readers = 16;
  std::vector<std::string> workloads;
  bool json = false;
  std::string mount;  // native-epoch: the Cairn mount point that holds root
};

class Bench {
 public:
  explicit Bench(const Options& options)
      : options_(options), data_(options.seed, options.files), root_(options.root) {}

  const ErrorLog& errors() const { return errors_; }

  WorkloadResult Create() {
    WorkloadResult result{
        .workload = "create", .files = data_.files(), .threads = options_.threads};
    const uint64_t errors_before = errors_.total();
    std::atomic<uint64_t> bytes{0};
    Stopwatch watch;
    if (mkdir(root_.c_str(), 0755) != 0 && errno != EEXIST) errors_.AddErrno("mkdir", root_);
    for (uint64_t dir = 0; dir < data_.dirs(); ++dir) {
      const std::string path = DataSet::DirPath(root_, dir);
      if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) errors_.AddErrno("mkdir", path);
    }
    ParallelFor(options_.threads, data_.files(), 16, [&](uint64_t index) {
      thread_local Buffer buffer;
      const std::string path = DataSet::FilePath(root_, index);
      const uint64_t size = data_.FileSize(index);
      const uint64_t key = data_.ContentKey(index);
      const int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0) return errors_.AddErrno("open", path);
      char* chunk = buffer.Reserve(kIoBlock);
      for (uint64_t offset = 0; offset < size;) {
        const size_t n = std::min(kIoBlock, size - offset);
        FillContent(key, offset, chunk, n);
        if (!WriteFull(fd, chunk, n)) {
          errors_.AddErrno("write", path);
          break;
        }
        offset += n;
        bytes.fetch_add(n, std::memory_order_relaxed);
      }
      if (close(fd) != 0) errors_.AddErrno("close", path);
    });
    result.seconds = watch.Seconds();
    result.bytes = bytes.load();
    result.errors = errors_.total() - errors_before;
    return result;
  }

  WorkloadResult Stat(bool cold) {
    WorkloadResult result{
        .workload = cold ? "stat" : "restat", .files = data_.files(), .threads = options_.threads};
    const uint64_t errors_before = errors_.total();
    if (cold) DropCaches();
    Stopwatch watch;
    ParallelFor(options_.threads, data_.files(), 64, [&](uint64_t index) {
      const std::string path = DataSet::FilePath(root_, index);
      struct stat st;
      if (stat(path.c_str(), &st) != 0) return errors_.AddErrno("stat", path);
      const uint64_t expected = data_.FileSize(index);
      if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != expected) {
        errors_.Add(ErrorLog::Kind::kSize,
                    fmt::format("stat {}: mode {:o} size {}, expected a regular file of {} bytes",
                                path, st.st_mode, st.st_size, expected));
      }
    });
    result.seconds = watch.Seconds();
    result.errors = errors_.total() - errors_before;
    return result;
  }

  WorkloadResult List() {
    WorkloadResult result{.workload = "list", .threads = options_.threads};
    const uint64_t errors_before = errors_.total();
    std::atomic<uint64_t> entries{0};
    Stopwatch watch;
    ParallelFor(options_.threads, data_.dirs(), 1, [&](uint64_t dir) {
      const std::string path = DataSet::DirPath(root_, dir);
      DIR* handle = opendir(path.c_str());
      if (handle == nullptr) return errors_.AddErrno("opendir", path);
      uint64_t count = 0;
      errno = 0;
      while (const dirent* entry = readdir(handle)) {
        if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0) ++count;
      }
      if (errno != 0) errors_.AddErrno("readdir", path);
      closedir(handle);
      entries.fetch_add(count, std::memory_order_relaxed);
      if (count != data_.FilesInDir(dir)) {
        errors_.Add(ErrorLog::Kind::kSize, fmt::format("readdir {}: {} entries, expected {}", path,
                                                       count, data_.FilesInDir(dir)));
      }
    });
    result.seconds = watch.Seconds();
    result.files = entries.load();
    result.errors = errors_.total() - errors_before;
    return result;
  }

  // The epoch's order of the files. Fisher-Yates with our own generator, so the order is the
  // same with every standard library.
  std::vector<uint64_t> ShuffledOrder() const {
    std::vector<uint64_t> order(data_.files());
    for (uint64_t i = 0; i < order.size(); ++i) order[i] = i;
    SplitMix64 rng(Mix64(data_.seed() ^ kShuffleTag));
    for (uint64_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.Below(i)]);
    return order;
  }

  WorkloadResult Epoch() {
    WorkloadResult result{
        .workload = "epoch", .files = data_.files(), .threads = options_.threads_read};
    const uint64_t errors_before = errors_.total();
    const std::vector<uint64_t> order = ShuffledOrder();
    DropCaches();

    std::atomic<uint64_t> bytes{0};
    Stopwatch watch;
    ParallelFor(options_.threads_read, order.size(), 1, [&](uint64_t position) {
      thread_local Buffer buffer;
      const uint64_t index = order[position];
      const std::string path = DataSet::FilePath(root_, index);
      const uint64_t size = data_.FileSize(index);
      const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return errors_.AddErrno("open", path);
      // One byte more than expected, so that a file that grew is noticed too.
      char* data = buffer.Reserve(size + 1);
      const ssize_t n = ReadFull(fd, data, size + 1);
      if (n < 0) errors_.AddErrno("read", path);
      if (close(fd) != 0) errors_.AddErrno("close", path);
      if (n < 0) return;
      bytes.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
      if (static_cast<uint64_t>(n) != size) {
        return errors_.Add(ErrorLog::Kind::kSize,
                           fmt::format("read {}: got {}{} bytes, expected {}", path, n,
                                       static_cast<uint64_t>(n) > size ? "+" : "", size));
      }
      SpotCheck(path, data_.ContentKey(index), data, size);
    });
    result.seconds = watch.Seconds();
    result.bytes = bytes.load();
    result.errors = errors_.total() - errors_before;
    return result;
  }

  // The index, then the epoch, through the native client.
  std::vector<WorkloadResult> NativeEpoch() {
    WorkloadResult index{.workload = "native-index", .files = data_.files(), .threads = 1};
    WorkloadResult result{
        .workload = "native-epoch", .files = data_.files(), .threads = options_.threads_read};
    const uint64_t errors_before = errors_.total();
    std::string mount = options_.mount;
    while (mount.size() > 1 && mount.back() == '/') mount.pop_back();
    if (root_.compare(0, mount.size() + 1, mount + "/") != 0) {
      errors_.Add(ErrorLog::Kind::kIo, fmt::format("{} is not inside {}", root_, mount));
      return {index, result};
    }
    const std::string dir = root_.substr(mount.size() + 1);
    Stopwatch index_watch;
    auto client = cairn::Client::Open(mount);
    auto dataset =
        client ? (*client)->OpenDataset(dir)
               : cairn::Expected<std::unique_ptr<cairn::Dataset>>(std::unexpected(client.error()));
    index.seconds = index_watch.Seconds();
    if (!dataset) {
      errors_.Add(ErrorLog::Kind::kIo, "native client: " + dataset.error().message);
      return {index, result};
    }
    const cairn::Dataset& ds = **dataset;
    const std::vector<uint64_t> order = ShuffledOrder();
    // The dataset's index of each file, by its path under root.
    std::vector<size_t> slot(data_.files());
    for (uint64_t i = 0; i < slot.size(); ++i) {
      const std::string rel = DataSet::FilePath("", i).substr(1);
      auto found = ds.Find(rel);
      if (!found) {
        errors_.Add(ErrorLog::Kind::kIo, "native client: " + found.error().message);
        return {index, result};
      }
      slot[i] = *found;
    }
    DropCaches();
    std::atomic<uint64_t> bytes{0};
    Stopwatch watch;
    ParallelFor(options_.threads_read, order.size(), 1, [&](uint64_t position) {
      thread_local Buffer buffer;
      const uint64_t i = order[position];
      const uint64_t size = data_.FileSize(i);
      char* data = buffer.Reserve(size + 1);
      auto n = ds.Read(slot[i], 0, size + 1, data);
      const std::string path = DataSet::FilePath(root_, i);
      if (!n) {
        return errors_.Add(ErrorLog::Kind::kIo,
                           fmt::format("native read {}: {}", path, n.error().message));
      }
      bytes.fetch_add(*n, std::memory_order_relaxed);
      if (*n != size) {
        return errors_.Add(
            ErrorLog::Kind::kSize,
            fmt::format("native read {}: got {} bytes, expected {}", path, *n, size));
      }
      SpotCheck(path, data_.ContentKey(i), data, size);
    });
    result.seconds = watch.Seconds();
    result.bytes = bytes.load();
    result.errors = errors_.total() - errors_before;
    return {index, result};
  }

  // Returns, in order: one writer, one reader and --checkpoint-readers range readers of one file;
  // then --checkpoint-writers writers of one shard file each and as many readers, one a shard.
  // Every read starts from a dropped page cache.
  std::vector<WorkloadResult> Checkpoint() {
    const std::string path = root_ + "/checkpoint.bin";
    const uint64_t key = data_.CheckpointKey();
    std::vector<WorkloadResult> results;
    results.push_back(CheckpointWrite(path, key));
    DropCaches();
    results.push_back(CheckpointRead(path, key));
    DropCaches();
    results.push_back(RangeRead(path, key, options_.checkpoint_readers));
    if (unlink(path.c_str()) != 0) errors_.AddErrno("unlink", path);
    Settle();

    const int shards = options_.checkpoint_writers;
    std::vector<std::string> paths;
    for (int i = 0; i < shards; ++i) paths.push_back(fmt::format("{}/shard-{:03}.bin", root_, i));
    results.push_back(ShardWrite(paths, key));
    DropCaches();
    results.push_back(ShardRead(paths, key));
    for (const std::string& shard : paths) {
      if (unlink(shard.c_str()) != 0) errors_.AddErrno("unlink", shard);
    }
    return results;
  }

 private:
  // Compares the first, the last and one pseudo-random 4 KiB window of a file with the generator.
  void SpotCheck(const std::string& path, uint64_t key, const char* data, uint64_t size) {
    const uint64_t window = std::min(kSpotWindow, size);
    const uint64_t middle = (Mix64(key) % (size - window + 1)) & ~uint64_t{7};
    for (const uint64_t offset : {uint64_t{0}, size - window, middle}) {
      if (const auto bad = CheckContent(key, offset, data + offset, window)) {
        errors_.Add(ErrorLog::Kind::kContent,
                    fmt::format("content of {} differs near offset {}", path, *bad));
        return;
      }
    }
  }

  WorkloadResult CheckpointWrite(const std::string& path, uint64_t key) {
    const uint64_t size = options_.checkpoint_size;
    WorkloadResult result{.workload = "checkpoint-write", .files = 1};
    const uint64_t errors_before = errors_.total();
    std::vector<Block> blocks(kPipelineDepth);
    Channel<Block*> empty;
    Channel<Block*> full;
    for (Block& block : blocks) empty.Push(&block);

    Stopwatch watch;
    const int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      errors_.AddErrno("open", path);
      result.errors = errors_.total() - errors_before;
      return result;
    }
    std::jthread maker([&] {
      for (uint64_t offset = 0; offset < size; offset += kIoBlock) {
        const std::optional<Block*> block = empty.Pop();
        if (!block) break;
        (*block)->offset = offset;
        (*block)->length = std::min(kIoBlock, size - offset);
        FillContent(key, offset, (*block)->data.get(), (*block)->length);
        full.Push(*block);
      }
      full.Close();
    });
    while (const std::optional<Block*> block = full.Pop()) {
      if (!WriteFull(fd, (*block)->data.get(), (*block)->length)) {
        errors_.AddErrno("write", path);
        empty.Close();  // stops the maker
        break;
      }
      result.bytes += (*block)->length;
      empty.Push(*block);
    }
    maker.join();
    if (fsync(fd) != 0) errors_.AddErrno("fsync", path);
    if (close(fd) != 0) errors_.AddErrno("close", path);
    result.seconds = watch.Seconds();
    result.errors = errors_.total() - errors_before;
    return result;
  }

  WorkloadResult CheckpointRead(const std::string& path, uint64_t key) {
    const uint64_t size = options_.checkpoint_size;
    WorkloadResult result{.workload = "checkpoint-read", .files = 1};
    const uint64_t errors_before = errors_.total();
    std::vector<Block> blocks(kPipelineDepth);
    Channel<Block*> empty;
    Channel<Block*> full;
    for (Block& block : blocks) empty.Push(&block);

    Stopwatch watch;
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      errors_.AddErrno("open", path);
      result.errors = errors_.total() - errors_before;
      return result;
    }
    std::atomic<bool> content_ok{true};
    std::jthread checker([&] {
      while (const std::optional<Block*> block = full.Pop()) {
        // Bytes past the expected end are reported as a size mismatch by the reader.
        const uint64_t offset = (*block)->offset;
        const uint64_t length =
            offset < size ? std::min<uint64_t>((*block)->length, size - offset) : 0;
        if (content_ok.load(std::memory_order_relaxed)) {
          if (const auto bad = CheckContent(key, offset, (*block)->data.get(), length)) {
            content_ok = false;  // one report is enough for one file
            errors_.Add(ErrorLog::Kind::kContent,
                        fmt::format("content of {} differs near offset {}", path, *bad));
          }
        }
        empty.Push(*block);
      }
    });
    uint64_t offset = 0;
    for (;;) {
      const std::optional<Block*> block = empty.Pop();
      const ssize_t n = ReadFull(fd, (*block)->data.get(), kIoBlock);
      if (n < 0) {
        errors_.AddErrno("read", path);
        break;
      }
      if (n == 0) break;
      (*block)->offset = offset;
      (*block)->length = static_cast<size_t>(n);
      offset += static_cast<uint64_t>(n);
      full.Push(*block);
    }
    full.Close();
    checker.join();
    if (close(fd) != 0) errors_.AddErrno("close", path);
    result.seconds = watch.Seconds();
    result.bytes = offset;
    if (offset != size) {
      errors_.Add(ErrorLog::Kind::kSize,
                  fmt::format("read {}: got {} bytes, expected {}", path, offset, size));
    }
    result.errors = errors_.total() - errors_before;
    return result;
  }

  // Byte range [begin, end) of part `index` when `size` bytes are cut into `parts` pieces, each a
  // whole number of I/O blocks but the last.
  static std::pair<uint64_t, uint64_t> Part(uint64_t size, int parts, int index) {
    const uint64_t blocks = (size + kIoBlock - 1) / kIoBlock;
    const uint64_t begin = std::min(size, blocks * index / parts * kIoBlock);
    const uint64_t end = std::min(size, blocks * (index + 1) / parts * kIoBlock);
    return {begin, end};
  }
  static uint64_t ShardKey(uint64_t key, int shard) { return Mix64(key + 1 + shard); }

  // Writes [begin, end) of the stream `key` at those offsets of fd. Returns the bytes written.
  uint64_t WriteRange(int fd, const std::string& path, uint64_t key, uint64_t begin, uint64_t end) {
    Buffer buffer;
    char* chunk = buffer.Reserve(kIoBlock);
    uint64_t done = 0;
    for (uint64_t offset = begin; offset < end; offset += kIoBlock) {
      const size_t n = std::min(kIoBlock, end - offset);
      FillContent(key, offset, chunk, n);
      if (pwrite(fd, chunk, n, static_cast<off_t>(offset)) != static_cast<ssize_t>(n)) {
        errors_.AddErrno("pwrite", path);
        break;
      }
      done += n;
    }
    return done;
  }

  // Reads [begin, end) of fd with 1 MiB reads and checks it against the stream `key`. Returns the
  // bytes read.
  uint64_t ReadRange(int fd, const std::string& path, uint64_t key, uint64_t begin, uint64_t end) {
    Buffer buffer;
    char* chunk = buffer.Reserve(kIoBlock);
    uint64_t done = 0;
    for (uint64_t offset = begin; offset < end; offset += kIoBlock) {
      const size_t n = std::min(kIoBlock, end - offset);
      const ssize_t got = pread(fd, chunk, n, static_cast<off_t>(offset));
      if (got < 0) {
        errors_.AddErrno("pread", path);
        break;
      }
      done += static_cast<uint64_t>(got);
      if (static_cast<size_t>(got) != n) {
        errors_.Add(ErrorLog::Kind::kSize,
                    fmt::format("pread {} at {}: got {} bytes, expected {}", path, offset, got, n));
        break;
      }
      if (const auto bad = CheckContent(key, offset, chunk, n)) {
        errors_.Add(ErrorLog::Kind::kContent,
                    fmt::format("content of {} differs near offset {}", path, *bad));
        break;
      }
    }
    return done;
  }

  // Runs body(i) for i in [0, threads) on a thread each and times them all; body returns the
  // bytes it moved. Fills in the result's seconds, bytes and errors.
  WorkloadResult Threaded(WorkloadResult result, int threads,
                          const std::function<uint64_t(int)>& body) {
    const uint64_t errors_before = errors_.total();
    std::atomic<uint64_t> bytes{0};
    Stopwatch watch;
    {
      std::vector<std::jthread> workers;
      for (int i = 0; i < threads; ++i) {
        workers.emplace_back([&, i] { bytes.fetch_add(body(i), std::memory_order_relaxed); });
      }
    }
    result.seconds = watch.Seconds();
    result.bytes = bytes.load();
    result.errors = errors_.total() - errors_before;
    return result;
  }

  // `readers` threads, each reading its own contiguous range of one file, as ranks loading one
  // checkpoint do.
  WorkloadResult RangeRead(const std::string& path, uint64_t key, int readers) {
    const uint64_t size = options_.checkpoint_size;
    return Threaded({.workload = "checkpoint-ranges", .files = 1, .threads = readers}, readers,
                    [&](int i) -> uint64_t {
                      const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
                      if (fd < 0) return errors_.AddErrno("open", path), 0;
                      const auto [begin, end] = Part(size, readers, i);
                      const uint64_t n = ReadRange(fd, path, key, begin, end);
                      if (close(fd) != 0) errors_.AddErrno("close", path);
                      return n;
                    });
  }

  // One thread per shard file, each writing its share of the checkpoint size and fsyncing it, as
  // distributed checkpointing does; the time ends when the last shard is durable.
  WorkloadResult ShardWrite(const std::vector<std::string>& paths, uint64_t key) {
    const uint64_t size = options_.checkpoint_size;
    const int shards = static_cast<int>(paths.size());
    return Threaded({.workload = "checkpoint-shards-w", .files = paths.size(), .threads = shards},
                    shards, [&](int i) -> uint64_t {
                      const std::string& path = paths[i];
                      const int fd =
                          open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
                      if (fd < 0) return errors_.AddErrno("open", path), 0;
                      const auto [begin, end] = Part(size, shards, i);
                      const uint64_t n = WriteRange(fd, path, ShardKey(key, i), 0, end - begin);
                      if (fsync(fd) != 0) errors_.AddErrno("fsync", path);
                      if (close(fd) != 0) errors_.AddErrno("close", path);
                      return n;
                    });
  }

  // One thread per shard file, each reading its shard whole and checking its size and content.
  WorkloadResult ShardRead(const std::vector<std::string>& paths, uint64_t key) {
    const uint64_t size = options_.checkpoint_size;
    const int shards = static_cast<int>(paths.size());
    return Threaded(
        {.workload = "checkpoint-shards-r", .files = paths.size(), .threads = shards}, shards,
        [&](int i) -> uint64_t {
          const std::string& path = paths[i];
          const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
          if (fd < 0) return errors_.AddErrno("open", path), 0;
          const auto [begin, end] = Part(size, shards, i);
          struct stat st;
          if (fstat(fd, &st) != 0) {
            errors_.AddErrno("fstat", path);
          } else if (static_cast<uint64_t>(st.st_size) != end - begin) {
            errors_.Add(ErrorLog::Kind::kSize,
                        fmt::format("{} has {} bytes, expected {}", path, st.st_size, end - begin));
          }
          const uint64_t n = ReadRange(fd, path, ShardKey(key, i), 0, end - begin);
          if (close(fd) != 0) errors_.AddErrno("close", path);
          return n;
        });
  }

  const Options& options_;
  DataSet data_;
  std::string root_;
  ErrorLog errors_;
};

std::string HumanBytes(uint64_t bytes) {
  if (bytes >= kGiB) return fmt::format("{:.2f} GiB", static_cast<double>(bytes) / kGiB);
  if (bytes >= kMiB) return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / kMiB);
  return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / kKiB);
}

void PrintLine(FILE* out, const WorkloadResult& r) {
  fmt::print(out,
             "{:<17} {:>9} files {:>11} {:>9.3f} s {:>11.1f} files/s {:>9.1f} MB/s  "
             "threads {:<2} errors {}\n",
             r.workload, r.files, HumanBytes(r.bytes), r.seconds, r.FilesPerSecond(),
             r.MegabytesPerSecond(), r.threads, r.errors);
  std::fflush(out);
}

std::string ToJson(const WorkloadResult& r) {
  return fmt::format(
      "{{\"workload\": \"{}\", \"files\": {}, \"bytes\": {}, \"seconds\": {:.6f}, "
      "\"files_per_s\": {:.1f}, \"mb_per_s\": {:.3f}, \"threads\": {}, \"errors\": {}}}",
      r.workload, r.files, r.bytes, r.seconds, r.FilesPerSecond(), r.MegabytesPerSecond(),
      r.threads, r.errors);
}

// Same rules as cairn::ParseSize: K/KB = 1000, KiB = 1024, and so on; case-insensitive.
std::optional<uint64_t> ParseSize(std::string_view text) {
  uint64_t number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  std::string suffix(end, text.data() + text.size());
  for (char& c : suffix) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static constexpr struct {
    std::string_view suffix;
    uint64_t multiplier;
  } kSuffixes[] = {
      {"", 1},
      {"b", 1},
      {"k", 1000},
      {"kb", 1000},
      {"kib", kKiB},
      {"m", 1000000},
      {"mb", 1000000},
      {"mib", kMiB},
      {"g", 1000000000},
      {"gb", 1000000000},
      {"gib", kGiB},
      {"t", 1000000000000},
      {"tb", 1000000000000},
      {"tib", 1024 * kGiB},
  };
  for (const auto& [name, multiplier] : kSuffixes) {
    if (suffix == name) {
      if (number > UINT64_MAX / multiplier) return std::nullopt;
      return number * multiplier;
    }
  }
  return std::nullopt;
}

std::vector<std::string> SplitCommas(std::string_view text) {
  std::vector<std::string> parts;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    if (comma != 0) parts.emplace_back(text.substr(0, comma));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return parts;
}

constexpr std::string_view kUsage = R"(usage:
  cairn_bench generate --root DIR --files N [--seed S] [--threads T] [--json]
  cairn_bench run --root DIR --files N [--workloads create,stat,restat,list,epoch,checkpoint,
                  native-epoch] [--mount MNT] [--seed S] [--threads T] [--threads-read R]
                  [--checkpoint-size SIZE] [--checkpoint-writers W] [--checkpoint-readers R] [--json]

  generate   creates the synthetic data set (the same as `run --workloads create`)
  run        runs the named workloads in order; all but `create` expect the data set to exist
             with the same --files and --seed

  --seed S              data set seed (default 42)
  --threads T           threads for create, stat and list (default 4)
  --threads-read R      threads for epoch and native-epoch (default 16)
  --mount MNT           native-epoch: the Cairn mount point that holds --root
  --checkpoint-size S   size of the checkpoint file, e.g. 4GiB (default 4GiB); the shard
                        files of the sharded checkpoint add up to the same size
  --checkpoint-writers W  shard files written (and then read) in parallel (default 8)
  --checkpoint-readers R  threads reading disjoint ranges of the one checkpoint file (default 16)
  --json                print a JSON array of the results on stdout, the lines on stderr
)";

[[noreturn]] void UsageError(std::string_view message) {
  fmt::print(stderr, "cairn_bench: {}\n\n{}", message, kUsage);
  std::exit(2);
}

Options ParseOptions(int argc, char** argv) {
  if (argc < 2) UsageError("missing command");
  Options options;
  options.command = argv[1];
  if (options.command == "-h" || options.command == "--help") {
    fmt::print("{}", kUsage);
    std::exit(0);
  }
  if (options.command != "generate" && options.command != "run") {
    UsageError(fmt::format("unknown command '{}'", options.command));
  }
  options.workloads = {"create"};
  const auto number = [](std::string_view flag, std::string_view value) {
    uint64_t n = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || end != value.data() + value.size()) {
      UsageError(fmt::format("{} needs a number, not '{}'", flag, value));
    }
    return n;
  };
  for (int i = 2; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--json") {
      options.json = true;
      continue;
    }
    if (flag == "-h" || flag == "--help") {
      fmt::print("{}", kUsage);
      std::exit(0);
    }
    if (i + 1 >= argc) UsageError(fmt::format("{} needs a value", flag));
    const std::string_view value = argv[++i];
    if (flag == "--root") {
      options.root = value;
    } else if (flag == "--files") {
      options.files = number(flag, value);
    } else if (flag == "--seed") {
      options.seed = number(flag, value);
    } else if (flag == "--threads") {
      options.threads = static_cast<int>(std::clamp<uint64_t>(number(flag, value), 1, 1024));
    } else if (flag == "--threads-read") {
      options.threads_read = static_cast<int>(std::clamp<uint64_t>(number(flag, value), 1, 1024));
    } else if (flag == "--checkpoint-size" && options.command == "run") {
      const std::optional<uint64_t> size = ParseSize(value);
      if (!size || *size == 0) UsageError(fmt::format("bad size '{}'", value));
      options.checkpoint_size = *size;
    } else if (flag == "--checkpoint-writers" && options.command == "run") {
      options.checkpoint_writers =
          static_cast<int>(std::clamp<uint64_t>(number(flag, value), 1, 1024));
    } else if (flag == "--checkpoint-readers" && options.command == "run") {
      options.checkpoint_readers =
          static_cast<int>(std::clamp<uint64_t>(number(flag, value), 1, 1024));
    } else if (flag == "--mount" && options.command == "run") {
      options.mount = value;
    } else if (flag == "--workloads" && options.command == "run") {
      options.workloads = SplitCommas(value);
    } else {
      UsageError(fmt::format("unknown option {}", flag));
    }
  }
  if (options.root.empty()) UsageError("--root is required");
  while (options.root.size() > 1 && options.root.back() == '/') options.root.pop_back();
  if (options.files == 0) UsageError("--files must be at least 1");
  for (const std::string& name : options.workloads) {
    if (name != "create" && name != "stat" && name != "restat" && name != "list" &&
        name != "epoch" && name != "checkpoint" && name != "native-epoch") {
      UsageError(fmt::format("unknown workload '{}'", name));
    }
    if (name == "native-epoch" && options.mount.empty()) {
      UsageError("native-epoch needs --mount (the Cairn mount point that holds --root)");
    }
  }
  return options;
}

int Main(int argc, char** argv) {
  const Options options = ParseOptions(argc, argv);
  FILE* lines = options.json ? stderr : stdout;
  Bench bench(options);
  std::vector<WorkloadResult> results;
  const auto record = [&](WorkloadResult result) {
    PrintLine(lines, result);
    results.push_back(std::move(result));
  };
  for (const std::string& name : options.workloads) {
    if (name == "create") {
      record(bench.Create());
    } else if (name == "stat") {
      record(bench.Stat(true));
    } else if (name == "restat") {
      record(bench.Stat(false));
    } else if (name == "list") {
      record(bench.List());
    } else if (name == "epoch") {
      record(bench.Epoch());
    } else if (name == "native-epoch") {
      for (WorkloadResult& result : bench.NativeEpoch()) record(std::move(result));
    } else if (name == "checkpoint") {
      for (WorkloadResult& result : bench.Checkpoint()) record(std::move(result));
    }
  }
  if (options.json) {
    fmt::print("[\n");
    for (size_t i = 0; i < results.size(); ++i) {
      fmt::print("  {}{}\n", ToJson(results[i]), i + 1 < results.size() ? "," : "");
    }
    fmt::print("]\n");
  }
  const ErrorLog& errors = bench.errors();
  if (errors.total() > 0) {
    fmt::print(stderr,
               "cairn_bench: FAILED: {} I/O errors, {} size or count mismatches, {} content "
               "mismatches\n",
               errors.io(), errors.size(), errors.content());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace cairn::bench

int main(int argc, char** argv) { return cairn::bench::Main(argc, argv); }
