// scale_bench: fills a file system with a data set of the size users have, for
// bench/scale_bench.sh to time mount, status, listing and stat over:
//
//   --files N   regular files of 1..60 KiB (mean ~30 KiB), 1,000 per directory "f<k>/"
//   --tiny M    tiny files of 16..80 bytes (inline in Cairn's metadata), 1,000 per directory
//   "t<k>/"
//
// Two targets: --root DIR writes through POSIX calls (the local file system); --data DIR opens a
// formatted Cairn data directory in-process and writes through the FileSystem facade (the same
// code a mount runs, without a FUSE round trip per call: loading 15 million files through FUSE on
// 2 cores would take hours). Content is deterministic per file index; `--verify` reads a sample
// back through POSIX (point --root at a Cairn mount) and checks it.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fs/file_system.h"

namespace {

constexpr uint64_t kPerDir = 1000;

struct Options {
  std::string root, data;
  uint64_t files = 0, tiny = 0;
  int threads = 2;
  bool verify = false;
};

uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}
// File i of a kind: its size and bytes.
size_t SizeOf(bool tiny, uint64_t i) {
  const uint64_t r = Mix(i * 2 + (tiny ? 1 : 0));
  return tiny ? 16 + r % 65 : 1024 + r % (59 * 1024);
}
void Fill(bool tiny, uint64_t i, std::string* out) {
  out->resize(SizeOf(tiny, i));
  uint64_t x = Mix(i * 2 + (tiny ? 1 : 0) + 12345);
  for (size_t p = 0; p < out->size(); p += 8) {
    x = Mix(x);
    std::memcpy(out->data() + p, &x, std::min<size_t>(8, out->size() - p));
  }
}
std::string DirName(bool tiny, uint64_t i) {
  return fmt::format("{}{}", tiny ? 't' : 'f', i / kPerDir);
}
std::string FileName(uint64_t i) { return fmt::format("{}", i % kPerDir); }

class Writer {
 public:
  virtual ~Writer() = default;
  virtual bool Mkdir(const std::string& dir) = 0;
  virtual bool Put(const std::string& dir, const std::string& name, const std::string& data) = 0;
};

class PosixWriter : public Writer {
 public:
  explicit PosixWriter(std::string root) : root_(std::move(root)) {}
  bool Mkdir(const std::string& dir) override {
    return ::mkdir((root_ + "/" + dir).c_str(), 0755) == 0 || errno == EEXIST;
  }
  bool Put(const std::string& dir, const std::string& name, const std::string& data) override {
    int fd = ::open((root_ + "/" + dir + "/" + name).c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) return false;
    bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
    return ::close(fd) == 0 && ok;
  }

 private:
  std::string root_;
};

class ApiWriter : public Writer {
 public:
  explicit ApiWriter(std::unique_ptr<cairn::fs::FileSystem> fs) : fs_(std::move(fs)) {}
  ~ApiWriter() override { (void)fs_->Shutdown(); }
  bool Mkdir(const std::string& dir) override {
    auto st = fs_->Mkdir(ctx_, cairn::meta::kRootIno, dir, 0755);
    if (!st) return false;
    fs_->Forget(st->st_ino, 1);
    return true;
  }
  bool Put(const std::string& dir, const std::string& name, const std::string& data) override {
    auto d = fs_->Lookup(cairn::meta::kRootIno, dir);
    if (!d) return false;
    fs_->Forget(d->st_ino, 1);
    auto st = fs_->Create(ctx_, d->st_ino, name, 0644, O_WRONLY);
    if (!st) return false;
    bool ok = fs_->Write(st->st_ino, 0, data.data(), data.size()).has_value();
    (void)fs_->Release(st->st_ino);
    fs_->Forget(st->st_ino, 1);
    return ok;
  }

 private:
  std::unique_ptr<cairn::fs::FileSystem> fs_;
  cairn::fs::Context ctx_{::getuid(), ::getgid()};
};

int Populate(const Options& o, Writer& w) {
  std::atomic<uint64_t> errors{0};
  auto run = [&](bool tiny, uint64_t count) {
    const auto start = std::chrono::steady_clock::now();
    for (uint64_t d = 0; d * kPerDir < count; ++d) {
      if (!w.Mkdir(DirName(tiny, d * kPerDir))) errors.fetch_add(1);
    }
    std::atomic<uint64_t> next_dir{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < o.threads; ++t) {
      threads.emplace_back([&] {
        std::string buf;
        for (;;) {
          const uint64_t d = next_dir.fetch_add(1);
          if (d * kPerDir >= count) return;
          for (uint64_t i = d * kPerDir; i < std::min(count, (d + 1) * kPerDir); ++i) {
            Fill(tiny, i, &buf);
            if (!w.Put(DirName(tiny, i), FileName(i), buf)) errors.fetch_add(1);
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    fmt::print(
        "{{\"phase\": \"populate_{}\", \"files\": {}, \"seconds\": {:.1f}, "
        "\"files_per_s\": {:.0f}}}\n",
        tiny ? "tiny" : "files", count, s, s > 0 ? count / s : 0);
    std::fflush(stdout);
  };
  if (o.files) run(false, o.files);
  if (o.tiny) run(true, o.tiny);
  return errors ? 1 : 0;
}

// Reads every 997th file of each kind under root and compares it with what Populate wrote.
int Verify(const Options& o) {
  uint64_t checked = 0, bad = 0;
  std::string want, got;
  for (bool tiny : {false, true}) {
    const uint64_t count = tiny ? o.tiny : o.files;
    for (uint64_t i = 0; i < count; i += 997) {
      Fill(tiny, i, &want);
      const std::string path = o.root + "/" + DirName(tiny, i) + "/" + FileName(i);
      int fd = ::open(path.c_str(), O_RDONLY);
      got.assign(want.size() + 1, '\0');
      ssize_t n = fd < 0 ? -1 : ::read(fd, got.data(), got.size());
      if (fd >= 0) ::close(fd);
      ++checked;
      if (n != static_cast<ssize_t>(want.size()) || got.compare(0, want.size(), want) != 0) {
        if (bad++ < 5) fmt::print(stderr, "scale_bench: {} differs\n", path);
      }
    }
  }
  fmt::print("{{\"phase\": \"verify\", \"checked\": {}, \"bad\": {}}}\n", checked, bad);
  return bad ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        fmt::print(stderr, "scale_bench: {} needs a value\n", flag);
        std::exit(2);
      }
      return argv[++i];
    };
    auto number = [&](uint64_t hi) {
      std::string v = value();
      char* end = nullptr;
      errno = 0;
      unsigned long long n = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || errno != 0 || n > hi) {
        fmt::print(stderr, "scale_bench: {} wants a number up to {}, not '{}'\n", flag, hi, v);
        std::exit(2);
      }
      return static_cast<uint64_t>(n);
    };
    if (flag == "--root") {
      o.root = value();
    } else if (flag == "--data") {
      o.data = value();
    } else if (flag == "--files") {
      o.files = number(100'000'000);
    } else if (flag == "--tiny") {
      o.tiny = number(1'000'000'000);
    } else if (flag == "--threads") {
      o.threads = static_cast<int>(std::max<uint64_t>(1, number(64)));
    } else if (flag == "--verify") {
      o.verify = true;
    } else {
      fmt::print(stderr,
                 "usage: scale_bench (--root DIR | --data DATA_DIR) [--files N] [--tiny M] "
                 "[--threads T] [--verify]\n");
      return flag == "-h" || flag == "--help" ? 0 : 2;
    }
  }
  if (o.root.empty() == o.data.empty()) {
    fmt::print(stderr, "scale_bench: give exactly one of --root and --data\n");
    return 2;
  }
  if (o.verify) {
    if (o.root.empty()) {
      fmt::print(stderr, "scale_bench: --verify reads through --root (a mount)\n");
      return 2;
    }
    return Verify(o);
  }
  if (!o.data.empty()) {
    auto fs = cairn::fs::FileSystem::Open(o.data, {});
    if (!fs) {
      fmt::print(stderr, "scale_bench: cannot open {}: {}\n", o.data, fs.error().ToString());
      return 1;
    }
    ApiWriter w(std::move(*fs));
    return Populate(o, w);
  }
  PosixWriter w(o.root);
  return Populate(o, w);
}
