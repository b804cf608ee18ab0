// meta_bench: namespace operations from many threads at once. Each thread works in directories
// of its own (--layout private: independent changes, which should scale with threads) or all in
// the same two directories (--layout shared: every change contends for the same directory locks):
//
//   mkdir       N directories (in a third directory of the thread's)
//   create      N empty files (open O_CREAT, close)
//   rename      each file to the thread's second directory (a rename across directories)
//   stat-cold   each file, after the kernel's caches were dropped (POSIX target, as root)
//   stat        each file again (warm)
//   readdir     each thread lists its second directory (N / threads entries), after the
//               kernel's caches were dropped; ops are entries
//   unlink      each file (and the directories go)
//
// Two targets: --root DIR goes through POSIX calls (a plain directory of the local file system, or
// a Cairn mount); --data DIR opens a formatted Cairn data directory in-process and calls the
// FileSystem facade directly, which measures Cairn's own locking without FUSE round trips.
// Output: one line per phase (ops/s), or JSON with --json.
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fs/file_system.h"

namespace {

struct Options {
  std::string root;  // POSIX target
  std::string data;  // in-process target
  uint64_t files = 20000;
  int threads = 4;
  bool shared = false;
  bool json = false;
  bool skip_unlink = false;  // leave the files (and their directories) in place
  std::string phases = "create,rename,stat,unlink";
  std::string prefix;  // prepended to the names of the directories it makes
};

// The operations, on either target. Paths are "dir/name" with dir "a<k>" or "b<k>".
class Target {
 public:
  virtual ~Target() = default;
  virtual bool Mkdir(const std::string& dir) = 0;
  virtual bool Create(const std::string& dir, const std::string& name) = 0;
  virtual bool Rename(const std::string& from_dir, const std::string& to_dir,
                      const std::string& name) = 0;
  virtual bool Stat(const std::string& dir, const std::string& name) = 0;
  virtual bool Unlink(const std::string& dir, const std::string& name) = 0;
  virtual bool Rmdir(const std::string& dir) = 0;
  // Makes directory dir/name (mkdir phase).
  virtual bool MkdirIn(const std::string& dir, const std::string& name) = 0;
  virtual bool RmdirIn(const std::string& dir, const std::string& name) = 0;
  // Lists dir; returns the entries read (not counting "." and ".."), or -1.
  virtual int64_t List(const std::string& dir) = 0;
  // Drops what the kernel caches of names and attributes (cold phases), when it can.
  virtual void DropCaches() {}
};

class PosixTarget : public Target {
 public:
  explicit PosixTarget(std::string root) : root_(std::move(root)) {}
  bool Mkdir(const std::string& dir) override {
    return ::mkdir((root_ + "/" + dir).c_str(), 0755) == 0;
  }
  bool Create(const std::string& dir, const std::string& name) override {
    int fd = ::open(Path(dir, name).c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0) return false;
    return ::close(fd) == 0;
  }
  bool Rename(const std::string& from_dir, const std::string& to_dir,
              const std::string& name) override {
    return ::rename(Path(from_dir, name).c_str(), Path(to_dir, name).c_str()) == 0;
  }
  bool Stat(const std::string& dir, const std::string& name) override {
    struct stat st;
    return ::stat(Path(dir, name).c_str(), &st) == 0;
  }
  bool Unlink(const std::string& dir, const std::string& name) override {
    return ::unlink(Path(dir, name).c_str()) == 0;
  }
  bool Rmdir(const std::string& dir) override { return ::rmdir((root_ + "/" + dir).c_str()) == 0; }
  bool MkdirIn(const std::string& dir, const std::string& name) override {
    return ::mkdir(Path(dir, name).c_str(), 0755) == 0;
  }
  bool RmdirIn(const std::string& dir, const std::string& name) override {
    return ::rmdir(Path(dir, name).c_str()) == 0;
  }
  int64_t List(const std::string& dir) override {
    DIR* d = ::opendir((root_ + "/" + dir).c_str());
    if (!d) return -1;
    int64_t n = 0;
    while (struct dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) ++n;
    }
    ::closedir(d);
    return n;
  }
  void DropCaches() override {
    ::sync();
    int fd = ::open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (fd < 0) return;  // not root: the phase runs warm
    (void)!::write(fd, "3", 1);
    ::close(fd);
  }

 private:
  std::string Path(const std::string& dir, const std::string& name) const {
    return root_ + "/" + dir + "/" + name;
  }
  std::string root_;
};

class ApiTarget : public Target {
 public:
  explicit ApiTarget(std::unique_ptr<cairn::fs::FileSystem> fs) : fs_(std::move(fs)) {}
  ~ApiTarget() override { (void)fs_->Shutdown(); }
  bool Mkdir(const std::string& dir) override {
    auto st = fs_->Mkdir(ctx_, cairn::meta::kRootIno, dir, 0755);
    if (!st) return false;
    std::lock_guard lock(mu_);
    dirs_[dir] = st->st_ino;  // the kernel-style reference stays: directories are few
    return true;
  }
  bool Create(const std::string& dir, const std::string& name) override {
    auto st = fs_->Create(ctx_, Dir(dir), name, 0644, O_WRONLY);
    if (!st) return false;
    (void)fs_->Release(st->st_ino);
    fs_->Forget(st->st_ino, 1);
    return true;
  }
  bool Rename(const std::string& from_dir, const std::string& to_dir,
              const std::string& name) override {
    return fs_->Rename(Dir(from_dir), name, Dir(to_dir), name, 0).ok();
  }
  bool Stat(const std::string& dir, const std::string& name) override {
    auto st = fs_->Lookup(Dir(dir), name);
    if (!st) return false;
    fs_->Forget(st->st_ino, 1);
    return true;
  }
  bool Unlink(const std::string& dir, const std::string& name) override {
    return fs_->Unlink(Dir(dir), name).ok();
  }
  bool Rmdir(const std::string& dir) override {
    return fs_->Rmdir(cairn::meta::kRootIno, dir).ok();
  }
  bool MkdirIn(const std::string& dir, const std::string& name) override {
    auto st = fs_->Mkdir(ctx_, Dir(dir), name, 0755);
    if (!st) return false;
    fs_->Forget(st->st_ino, 1);
    return true;
  }
  bool RmdirIn(const std::string& dir, const std::string& name) override {
    return fs_->Rmdir(Dir(dir), name).ok();
  }
  int64_t List(const std::string& dir) override {
    auto h = fs_->OpenDir(Dir(dir));
    if (!h) return -1;
    auto entries = fs_->DirHandle(*h);
    const int64_t n = entries ? static_cast<int64_t>((*entries)->size()) - 2 : -1;
    fs_->ReleaseDir(*h);
    return n;
  }

 private:
  uint64_t Dir(const std::string& dir) {
    std::lock_guard lock(mu_);
    return dirs_.at(dir);
  }
  std::unique_ptr<cairn::fs::FileSystem> fs_;
  cairn::fs::Context ctx_{::getuid(), ::getgid()};
  std::mutex mu_;
  std::map<std::string, uint64_t> dirs_;
};

struct Phase {
  std::string name;
  double seconds = 0;
  uint64_t ops = 0;
  uint64_t errors = 0;
};

int Run(const Options& o) {
  std::unique_ptr<Target> target;
  if (!o.data.empty()) {
    auto fs = cairn::fs::FileSystem::Open(o.data, {});
    if (!fs) {
      fmt::print(stderr, "meta_bench: cannot open {}: {}\n", o.data, fs.error().ToString());
      return 1;
    }
    target = std::make_unique<ApiTarget>(std::move(*fs));
  } else {
    target = std::make_unique<PosixTarget>(o.root);
  }
  const int dir_sets = o.shared ? 1 : o.threads;
  for (int k = 0; k < dir_sets; ++k) {
    if (!target->Mkdir(fmt::format("{}a{}", o.prefix, k)) ||
        !target->Mkdir(fmt::format("{}b{}", o.prefix, k)) ||
        !target->Mkdir(fmt::format("{}c{}", o.prefix, k))) {
      fmt::print(stderr, "meta_bench: cannot make the directories under {}{} (not empty?)\n",
                 o.root, o.data);
      return 1;
    }
  }
  const uint64_t per_thread = o.files / o.threads;
  auto name = [](int t, uint64_t i) { return fmt::format("t{}_{}", t, i); };
  std::vector<Phase> phases;
  auto phase = [&](const std::string& label,
                   const std::function<bool(int, const std::string&, const std::string&,
                                            const std::string&)>& op) {
    std::atomic<uint64_t> errors{0};
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < o.threads; ++t) {
      threads.emplace_back([&, t] {
        const int k = o.shared ? 0 : t;
        const std::string a = fmt::format("{}a{}", o.prefix, k);
        const std::string b = fmt::format("{}b{}", o.prefix, k);
        for (uint64_t i = 0; i < per_thread; ++i) {
          if (!op(t, a, b, name(t, i))) errors.fetch_add(1);
        }
      });
    }
    for (auto& th : threads) th.join();
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    phases.push_back({label, s, per_thread * o.threads, errors.load()});
  };
  const auto wanted = [&](std::string_view p) {
    return ("," + o.phases + ",").find("," + std::string(p) + ",") != std::string::npos;
  };
  const auto dir_of = [&](int t, char set) {
    return fmt::format("{}{}{}", o.prefix, set, o.shared ? 0 : t);
  };
  if (wanted("mkdir")) {
    phase("mkdir", [&](int t, const std::string&, const std::string&, const std::string& n) {
      return target->MkdirIn(dir_of(t, 'c'), n);
    });
  }
  phase("create", [&](int, const std::string& a, const std::string&, const std::string& n) {
    return target->Create(a, n);
  });
  if (wanted("rename")) {
    phase("rename", [&](int, const std::string& a, const std::string& b, const std::string& n) {
      return target->Rename(a, b, n);
    });
  }
  // Where the files are now.
  const bool moved = wanted("rename");
  if (wanted("stat-cold")) {
    target->DropCaches();
    phase("stat-cold", [&](int, const std::string& a, const std::string& b, const std::string& n) {
      return target->Stat(moved ? b : a, n);
    });
  }
  if (wanted("stat")) {
    phase("stat", [&](int, const std::string& a, const std::string& b, const std::string& n) {
      return target->Stat(moved ? b : a, n);
    });
  }
  if (wanted("readdir")) {
    target->DropCaches();
    std::atomic<uint64_t> entries{0}, errors{0};
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < dir_sets; ++t) {
      threads.emplace_back([&, t] {
        const int64_t n = target->List(fmt::format("{}{}{}", o.prefix, moved ? 'b' : 'a', t));
        if (n < 0) {
          errors.fetch_add(1);
        } else {
          entries.fetch_add(static_cast<uint64_t>(n));
        }
      });
    }
    for (auto& th : threads) th.join();
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (entries.load() != per_thread * o.threads) errors.fetch_add(1);
    phases.push_back({"readdir", s, entries.load(), errors.load()});
  }
  if (!o.skip_unlink) {
    phase("unlink", [&](int, const std::string& a, const std::string& b, const std::string& n) {
      return target->Unlink(moved ? b : a, n);
    });
    if (wanted("mkdir")) {
      phase("rmdir", [&](int t, const std::string&, const std::string&, const std::string& n) {
        return target->RmdirIn(dir_of(t, 'c'), n);
      });
    }
    for (int k = 0; k < dir_sets; ++k) {
      for (char set : {'a', 'b', 'c'}) (void)target->Rmdir(fmt::format("{}{}{}", o.prefix, set, k));
    }
  }
  uint64_t errors = 0;
  if (o.json) fmt::print("[");
  for (size_t i = 0; i < phases.size(); ++i) {
    const Phase& p = phases[i];
    errors += p.errors;
    const double rate = p.seconds > 0 ? p.ops / p.seconds : 0;
    if (o.json) {
      fmt::print(
          "{}{{\"phase\": \"{}\", \"ops\": {}, \"seconds\": {:.3f}, \"ops_per_s\": {:.1f}, "
          "\"threads\": {}, \"layout\": \"{}\", \"errors\": {}}}",
          i ? ", " : "", p.name, p.ops, p.seconds, rate, o.threads, o.shared ? "shared" : "private",
          p.errors);
    } else {
      fmt::print("{:<9} {:>9} ops {:>8.3f} s {:>11.1f} ops/s  threads {:<2} {} errors {}\n", p.name,
                 p.ops, p.seconds, rate, o.threads, o.shared ? "shared " : "private", p.errors);
    }
  }
  if (o.json) fmt::print("]\n");
  return errors ? 1 : 0;
}

void Usage(FILE* out) {
  fmt::print(out, R"(usage: meta_bench (--root DIR | --data DATA_DIR) [options]

  --root DIR        run through POSIX calls under DIR (a local directory or a Cairn mount)
  --data DATA_DIR   open this formatted Cairn data directory in-process (not mounted)
  --files N         files in all (default 20000), split evenly over the threads
  --threads T       threads (default 4)
  --layout L        private (each thread its own directories, default) or shared
  --no-unlink       skip the unlink phase (the files stay)
  --prefix P        prepend P to the names of the directories it makes (runs beside others)
  --phases LIST     which of mkdir,rename,stat-cold,stat,readdir to run besides create and
                    unlink (default rename,stat)
  --json            one JSON array instead of text
)");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        fmt::print(stderr, "meta_bench: {} needs a value\n", flag);
        std::exit(2);
      }
      return argv[++i];
    };
    auto number = [&](uint64_t lo, uint64_t hi) {
      std::string v = value();
      char* end = nullptr;
      errno = 0;
      unsigned long long n = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || errno != 0 || n < lo || n > hi) {
        fmt::print(stderr, "meta_bench: {} wants a number in [{}, {}], not '{}'\n", flag, lo, hi,
                   v);
        std::exit(2);
      }
      return static_cast<uint64_t>(n);
    };
    if (flag == "--root") {
      o.root = value();
    } else if (flag == "--data") {
      o.data = value();
    } else if (flag == "--files") {
      o.files = number(1, 100'000'000);
    } else if (flag == "--threads") {
      o.threads = static_cast<int>(number(1, 256));
    } else if (flag == "--layout") {
      std::string l = value();
      if (l != "private" && l != "shared") {
        fmt::print(stderr, "meta_bench: --layout is private or shared, not '{}'\n", l);
        return 2;
      }
      o.shared = l == "shared";
    } else if (flag == "--phases") {
      o.phases = value();
      std::string_view rest = o.phases;
      while (!rest.empty()) {
        const std::string_view p = rest.substr(0, rest.find(','));
        rest.remove_prefix(std::min(rest.size(), p.size() + 1));
        if (p != "mkdir" && p != "create" && p != "rename" && p != "stat-cold" && p != "stat" &&
            p != "readdir" && p != "unlink") {
          fmt::print(stderr, "meta_bench: unknown phase '{}'\n", p);
          return 2;
        }
      }
    } else if (flag == "--prefix") {
      o.prefix = value();
    } else if (flag == "--no-unlink") {
      o.skip_unlink = true;
    } else if (flag == "--json") {
      o.json = true;
    } else if (flag == "-h" || flag == "--help") {
      Usage(stdout);
      return 0;
    } else {
      fmt::print(stderr, "meta_bench: unknown argument '{}'\n", flag);
      Usage(stderr);
      return 2;
    }
  }
  if (o.root.empty() == o.data.empty()) {
    fmt::print(stderr, "meta_bench: give exactly one of --root and --data\n");
    Usage(stderr);
    return 2;
  }
  return Run(o);
}
