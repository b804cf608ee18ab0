#include "tier/s3_object_store.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <semaphore>
#include <thread>
#include <utility>
#include <vector>

#include "common/file.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "tier/sigv4.h"

namespace cairn::tier {
namespace {

using Clock = std::chrono::steady_clock;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr char kEmptySha256[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
// Limits of S3 multipart uploads.
constexpr uint64_t kMinPartSize = 5ull << 20;
constexpr uint64_t kMaxParts = 10000;
// Part uploads of one multipart upload that run at once (within max_parallel).
constexpr int kMultipartWorkers = 4;
// A reply body kept in memory (List XML, multipart replies); larger ones are malformed.
constexpr size_t kMaxReplyBody = 64u << 20;
// An error body kept for its Code and Message; the rest is dropped.
constexpr size_t kMaxErrorBody = 64u << 10;
constexpr std::chrono::milliseconds kMaxConnectTimeout{10000};

enum class Op { kPut = 0, kGet, kHead, kList, kDelete };
constexpr const char* kOpNames[] = {"put", "get", "head", "list", "delete"};

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

std::string Trim(std::string_view s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string StripQuotes(std::string_view etag) {
  std::string e = Trim(etag);
  if (e.starts_with("W/")) e.erase(0, 2);
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  return e;
}

// ---- XML: just enough for S3 replies -------------------------------------------------------

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Decodes the five predefined entities and numeric references (&#NN; &#xHH;). Anything else
// stays as it is.
std::string XmlDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] != '&') {
      out.push_back(s[i++]);
      continue;
    }
    size_t semi = s.find(';', i);
    if (semi == std::string_view::npos || semi - i > 12) {
      out.push_back(s[i++]);
      continue;
    }
    std::string_view ent = s.substr(i + 1, semi - i - 1);
    bool ok = true;
    if (ent == "amp") {
      out.push_back('&');
    } else if (ent == "lt") {
      out.push_back('<');
    } else if (ent == "gt") {
      out.push_back('>');
    } else if (ent == "quot") {
      out.push_back('"');
    } else if (ent == "apos") {
      out.push_back('\'');
    } else if (ent.size() >= 2 && ent[0] == '#') {
      bool hex = ent[1] == 'x' || ent[1] == 'X';
      std::string_view digits = ent.substr(hex ? 2 : 1);
      uint32_t cp = 0;
      ok = !digits.empty();
      for (char c : digits) {
        int d = -1;
        if (c >= '0' && c <= '9') d = c - '0';
        if (hex && c >= 'a' && c <= 'f') d = c - 'a' + 10;
        if (hex && c >= 'A' && c <= 'F') d = c - 'A' + 10;
        if (d < 0 || cp > 0x10FFFF) {
          ok = false;
          break;
        }
        cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(d);
      }
      ok = ok && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
      if (ok) AppendUtf8(out, cp);
    } else {
      ok = false;
    }
    if (ok) {
      i = semi + 1;
    } else {
      out.push_back(s[i++]);
    }
  }
  return out;
}

// The raw inner text of each element <name ...>...</name> of xml, in document order. An element
// does not nest in itself in the replies parsed here; <name/> yields an empty text.
std::vector<std::string_view> XmlElements(std::string_view xml, std::string_view name) {
  std::vector<std::string_view> out;
  const std::string close = "</" + std::string(name) + ">";
  size_t pos = 0;
  while (true) {
    size_t lt = xml.find('<', pos);
    if (lt == std::string_view::npos) break;
    size_t after = lt + 1 + name.size();
    if (after < xml.size() && xml.compare(lt + 1, name.size(), name) == 0 &&
        (xml[after] == '>' || xml[after] == '/' ||
         std::isspace(static_cast<unsigned char>(xml[after])))) {
      size_t gt = xml.find('>', after);
      if (gt == std::string_view::npos) break;
      if (xml[gt - 1] == '/') {
        out.emplace_back();
        pos = gt + 1;
        continue;
      }
      size_t end = xml.find(close, gt + 1);
      if (end == std::string_view::npos) break;
      out.push_back(xml.substr(gt + 1, end - gt - 1));
      pos = end + close.size();
      continue;
    }
    pos = lt + 1;
  }
  return out;
}

// The decoded text of the first element name, if there is one.
std::optional<std::string> XmlFirst(std::string_view xml, std::string_view name) {
  auto all = XmlElements(xml, name);
  if (all.empty()) return std::nullopt;
  return XmlDecode(all.front());
}

// ---- time -----------------------------------------------------------------------------------

std::string AmzTimestamp(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// "Wed, 21 Oct 2015 07:28:00 GMT" (RFC 7231 IMF-fixdate) to epoch seconds; 0 if malformed.
int64_t ParseHttpDate(std::string_view s) {
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::string str(s);
  char month[4] = {};
  std::tm tm{};
  if (std::sscanf(str.c_str(), "%*3s, %d %3s %d %d:%d:%d", &tm.tm_mday, month, &tm.tm_year,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6) {
    return 0;
  }
  tm.tm_mon = -1;
  for (int i = 0; i < 12; ++i) {
    if (std::strcmp(month, kMonths[i]) == 0) tm.tm_mon = i;
  }
  if (tm.tm_mon < 0) return 0;
  tm.tm_year -= 1900;
  return static_cast<int64_t>(timegm(&tm));
}

// "2009-10-12T17:50:30.000Z" to epoch seconds; 0 if malformed.
int64_t ParseIsoDate(std::string_view s) {
  std::string str(s);
  std::tm tm{};
  if (std::sscanf(str.c_str(), "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6) {
    return 0;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm));
}

std::optional<uint64_t> ParseU64(std::string_view s) {
  std::string t = Trim(s);
  if (t.empty() || t.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : t) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

// ---- configuration --------------------------------------------------------------------------

struct Endpoint {
  std::string scheme;     // "http" or "https"
  std::string host;       // host[:port], the port only when not the scheme's default
  std::string base_path;  // "" or "/some/path" (no trailing '/')
  std::string url;        // as given, normalized, for messages
};

Result<Endpoint> ParseEndpoint(std::string_view url) {
  Endpoint e;
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) {
    return Err(Code::kInvalid, "S3 endpoint URL must start with http:// or https://");
  }
  e.scheme = Lower(url.substr(0, sep));
  if (e.scheme != "http" && e.scheme != "https") {
    return Err(Code::kInvalid, "S3 endpoint URL must start with http:// or https://");
  }
  std::string_view rest = url.substr(sep + 3);
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (authority.find('@') != std::string_view::npos) {
    // Never echo it: it holds credentials.
    return Err(Code::kInvalid, "S3 endpoint URL must not contain credentials (user:pass@)");
  }
  if (authority.empty() || rest.find_first_of("?#") != std::string_view::npos) {
    return Err(Code::kInvalid, "S3 endpoint URL '" + std::string(url) +
                                   "' is malformed: want scheme://host[:port][/path]");
  }
  e.host = Lower(authority);
  if (e.scheme == "http" && e.host.ends_with(":80")) e.host.resize(e.host.size() - 3);
  if (e.scheme == "https" && e.host.ends_with(":443")) e.host.resize(e.host.size() - 4);
  if (slash != std::string_view::npos) {
    std::string path(rest.substr(slash));
    while (!path.empty() && path.back() == '/') path.pop_back();
    e.base_path = path;
  }
  e.url = e.scheme + "://" + e.host + e.base_path;
  return e;
}

// Reads profile from an AWS shared credentials file (INI: [profile] then key = value lines).
Credentials ReadCredentialsFile(const std::string& path, const std::string& profile) {
  Credentials c;
  std::ifstream in(path);
  if (!in) return c;
  std::string line;
  bool in_profile = false;
  while (std::getline(in, line)) {
    std::string t = Trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t.front() == '[' && t.back() == ']') {
      std::string name = Trim(std::string_view(t).substr(1, t.size() - 2));
      if (name.starts_with("profile ")) name = Trim(std::string_view(name).substr(8));
      in_profile = name == profile;
      continue;
    }
    if (!in_profile) continue;
    size_t eq = t.find('=');
    if (eq == std::string::npos) continue;
    std::string key = Lower(Trim(std::string_view(t).substr(0, eq)));
    std::string value = Trim(std::string_view(t).substr(eq + 1));
    if (key == "aws_access_key_id") c.access_key = value;
    if (key == "aws_secret_access_key") c.secret_key = value;
    if (key == "aws_session_token") c.session_token = value;
  }
  return c;
}

Result<Credentials> LoadCredentials() {
  Credentials c{Env("AWS_ACCESS_KEY_ID"), Env("AWS_SECRET_ACCESS_KEY"), Env("AWS_SESSION_TOKEN")};
  if (!c.access_key.empty() || !c.secret_key.empty()) {
    if (c.access_key.empty() || c.secret_key.empty()) {
      return Err(Code::kInvalid,
                 "S3 credentials: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    }
    return c;
  }
  std::string profile = Env("AWS_PROFILE");
  if (profile.empty()) profile = "default";
  std::string path = Env("AWS_SHARED_CREDENTIALS_FILE");
  if (path.empty()) {
    std::string home = Env("HOME");
    if (!home.empty()) path = home + "/.aws/credentials";
  }
  if (!path.empty()) c = ReadCredentialsFile(path, profile);
  if (c.access_key.empty() || c.secret_key.empty()) {
    return Err(Code::kInvalid,
               "no S3 credentials: set AWS_ACCESS_KEY_ID and "
               "AWS_SECRET_ACCESS_KEY, or add profile '" +
                   profile + "' to " + (path.empty() ? "~/.aws/credentials" : path));
  }
  return c;
}

bool ValidBucket(std::string_view b) {
  if (b.empty() || b.size() > 255) return false;
  return std::all_of(b.begin(), b.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
  });
}

// ---- HTTP -----------------------------------------------------------------------------------

struct HttpRequest {
  std::string method;  // GET, HEAD, PUT, POST, DELETE
  std::string key;     // the full object key (prefix included); empty: the bucket
  Headers query;       // not encoded
  Headers headers;     // extra headers, all signed
  std::string_view body;
  std::string payload_sha256 = kEmptySha256;
};

struct HttpResponse {
  long status = 0;
  Headers headers;   // names lower-cased
  std::string body;  // the body unless a sink took it

  std::string Header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (n == name) return v;
    }
    return {};
  }
  bool Has(std::string_view name) const {
    return std::any_of(headers.begin(), headers.end(),
                       [&](const auto& h) { return h.first == name; });
  }
};

// Takes the body of a 2xx reply (e.g. into a caller's buffer or a file). Reset() starts over
// for a new attempt. A Write error aborts the transfer and is returned as it is (not retried).
class BodySink {
 public:
  virtual ~BodySink() = default;
  virtual Status Reset() = 0;
  virtual Status Write(const HttpResponse& response, std::string_view chunk) = 0;
};

// Checks a reply accepted by status; kUnavailable means retry, any other error is final.
using Validator = std::function<Status(const HttpResponse&)>;

struct Transfer {
  HttpResponse response;
  BodySink* sink = nullptr;
  Status sink_error;
  std::string_view upload;
  size_t upload_pos = 0;
};

size_t HeaderCallback(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    // A new status line (after 100 Continue or a redirect): start over.
    t->response.headers.clear();
    size_t sp = line.find(' ');
    t->response.status = 0;
    if (sp != std::string_view::npos) {
      auto code = ParseU64(line.substr(sp + 1, 3));
      if (code) t->response.status = static_cast<long>(*code);
    }
  } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    t->response.headers.emplace_back(Lower(Trim(line.substr(0, colon))),
                                     Trim(line.substr(colon + 1)));
  }
  return size * n;
}

size_t WriteCallback(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  std::string_view chunk(data, len);
  bool success = t->response.status >= 200 && t->response.status < 300;
  if (success && t->sink != nullptr) {
    Status st = t->sink->Write(t->response, chunk);
    if (!st.ok()) {
      t->sink_error = std::move(st);
      return 0;  // aborts with CURLE_WRITE_ERROR
    }
    return len;
  }
  if (!success) {
    // An error body: keep the start for its Code and Message.
    size_t room = kMaxErrorBody - std::min(kMaxErrorBody, t->response.body.size());
    t->response.body.append(chunk.substr(0, room));
    return len;
  }
  if (t->response.body.size() + len > kMaxReplyBody) {
    t->sink_error =
        Status(Code::kCorruption, fmt::format("reply larger than {} bytes", kMaxReplyBody));
    return 0;
  }
  t->response.body.append(chunk);
  return len;
}

size_t ReadCallback(char* buffer, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = std::min(size * n, t->upload.size() - t->upload_pos);
  std::memcpy(buffer, t->upload.data() + t->upload_pos, len);
  t->upload_pos += len;
  return len;
}

int SeekCallback(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<size_t>(offset) > t->upload.size()) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  t->upload_pos = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

bool RetryableCurl(CURLcode code) {
  switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_FILESIZE_EXCEEDED:
    case CURLE_LOGIN_DENIED:
    case CURLE_REMOTE_ACCESS_DENIED:
      return false;
    default:
      return true;
  }
}

// "HTTP 503 SlowDown: Please reduce your request rate." from a reply.
std::string HttpErrorText(const HttpResponse& r) {
  std::string out = fmt::format("HTTP {}", r.status);
  std::string_view body = r.body;
  if (auto code = XmlFirst(body, "Code")) out += " " + *code;
  if (auto message = XmlFirst(body, "Message"); message && !message->empty()) {
    out += ": " + message->substr(0, 200);
  }
  return out;
}

std::once_flag curl_init_once;
CURLcode curl_init_result = CURLE_OK;

std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

// ---- the store ------------------------------------------------------------------------------

class S3ObjectStore final : public ObjectStore {
 public:
  S3ObjectStore(std::string bucket, std::string prefix, Endpoint endpoint, std::string region,
                Credentials credentials, bool virtual_host, const StoreOptions& options)
      : bucket_(std::move(bucket)),
        prefix_(std::move(prefix)),
        key_prefix_(prefix_.empty() ? "" : prefix_ + "/"),
        endpoint_(std::move(endpoint)),
        region_(std::move(region)),
        credentials_(std::move(credentials)),
        virtual_host_(virtual_host),
        options_(options),
        slots_(options.max_parallel) {
    for (size_t i = 0; i < std::size(kOpNames); ++i) {
      retries_[i] = &metrics::GetCounter("cairn_object_store_retries_total",
                                         fmt::format("op=\"{}\"", kOpNames[i]));
    }
  }

  ~S3ObjectStore() override {
    for (CURL* h : handles_) curl_easy_cleanup(h);
  }

  Status Put(std::string_view key, std::string_view data, const CallOptions& o) override;
  Status PutFile(std::string_view key, const std::string& path, uint64_t offset, uint64_t length,
                 const CallOptions& o) override;
  Result<size_t> GetRange(std::string_view key, uint64_t offset, size_t length, char* out,
                          std::string_view if_match, const CallOptions& o) override;
  Result<uint64_t> GetToFile(std::string_view key, const std::string& path,
                             std::string_view if_match, const CallOptions& o) override;
  Result<ObjectInfo> Head(std::string_view key, const CallOptions& o) override;
  Result<ListPage> List(std::string_view prefix, std::string_view delimiter, std::string_view token,
                        int max_keys, const CallOptions& o) override {
    return ListImpl(prefix, delimiter, token, {}, max_keys, o);
  }
  Result<ListPage> ListAfter(std::string_view prefix, std::string_view start_after, int max_keys,
                             const CallOptions& o) override {
    return ListImpl(prefix, {}, {}, start_after, max_keys, o);
  }
  Result<ListPage> ListImpl(std::string_view prefix, std::string_view delimiter,
                            std::string_view token, std::string_view start_after, int max_keys,
                            const CallOptions& o);
  Status Delete(std::string_view key, const CallOptions& o) override;

  std::string Describe() const override {
    return "s3://" + bucket_ + (prefix_.empty() ? "" : "/" + prefix_) + " (" + endpoint_.url + ")";
  }

 private:
  // Reads [offset, offset + n) of the body being uploaded; view points into data or scratch.
  using PartReader = std::function<Status(uint64_t offset, size_t n, std::string& scratch,
                                          std::string_view& view)>;

  struct Attempt {
    CURLcode curl = CURLE_OK;
    std::string curl_error;
    Transfer transfer;
  };

  Clock::time_point Deadline(const CallOptions& o) const {
    auto d = o.deadline.count() > 0 ? o.deadline : options_.deadline;
    return Clock::now() + d;
  }
  std::string FullKey(std::string_view key) const { return key_prefix_ + std::string(key); }

  // Never let a secret out, whatever a server or library echoed.
  std::string Redact(std::string message) const {
    for (const std::string* secret : {&credentials_.secret_key, &credentials_.session_token}) {
      if (secret->size() < 4) continue;
      for (size_t p; (p = message.find(*secret)) != std::string::npos;) {
        message.replace(p, secret->size(), "<redacted>");
      }
    }
    return message;
  }
  Status Fail(Code code, std::string message) const {
    return Status(code, Redact(std::move(message)));
  }

  CURL* TakeHandle() {
    {
      std::lock_guard lock(handles_mu_);
      if (!handles_.empty()) {
        CURL* h = handles_.back();
        handles_.pop_back();
        return h;
      }
    }
    return curl_easy_init();
  }
  void ReturnHandle(CURL* h) {
    std::lock_guard lock(handles_mu_);
    if (handles_.size() < static_cast<size_t>(std::max(1, options_.max_parallel))) {
      handles_.push_back(h);
      return;
    }
    curl_easy_cleanup(h);
  }

  Attempt PerformOnce(const HttpRequest& req, BodySink* sink, Clock::time_point deadline);
  Result<HttpResponse> Execute(Op op, const std::string& what, const HttpRequest& req,
                               BodySink* sink, Clock::time_point deadline,
                               std::initializer_list<long> also_ok = {},
                               const Validator& validate = {});
  Status PutSingle(const std::string& what, const std::string& full_key, std::string_view data,
                   Clock::time_point deadline);
  Status PutMultipart(const std::string& what, const std::string& full_key, uint64_t size,
                      const PartReader& read, Clock::time_point deadline);
  static Status CheckETag(const HttpResponse& r, std::string_view if_match);

  const std::string bucket_;
  const std::string prefix_;      // without trailing '/'
  const std::string key_prefix_;  // prefix_ + "/", or empty
  const Endpoint endpoint_;
  const std::string region_;
  const Credentials credentials_;
  const bool virtual_host_;
  const StoreOptions options_;
  std::counting_semaphore<> slots_;
  std::array<metrics::Counter*, std::size(kOpNames)> retries_{};
  std::mutex handles_mu_;
  std::vector<CURL*> handles_;  // idle handles, each with its kept-alive connections
};

S3ObjectStore::Attempt S3ObjectStore::PerformOnce(const HttpRequest& req, BodySink* sink,
                                                  Clock::time_point deadline) {
  Attempt a;
  a.transfer.sink = sink;
  a.transfer.upload = req.body;

  std::string host = endpoint_.host;
  std::string path = endpoint_.base_path;
  if (virtual_host_) {
    host = bucket_ + "." + host;
  } else {
    path += "/" + bucket_;
  }
  if (!req.key.empty()) {
    path += "/" + UriEncode(req.key, false);
  } else if (virtual_host_) {
    path += "/";
  }
  std::string query = CanonicalQueryString(req.query);
  std::string url = endpoint_.scheme + "://" + host + path + (query.empty() ? "" : "?" + query);

  std::string timestamp = AmzTimestamp(std::chrono::system_clock::now());
  SigV4Request sr;
  sr.method = req.method;
  sr.path = path;
  sr.query = req.query;
  sr.payload_sha256 = req.payload_sha256;
  sr.headers = {
      {"host", host}, {"x-amz-content-sha256", req.payload_sha256}, {"x-amz-date", timestamp}};
  if (!credentials_.session_token.empty()) {
    sr.headers.emplace_back("x-amz-security-token", credentials_.session_token);
  }
  for (const auto& h : req.headers) sr.headers.push_back(h);
  std::string authorization = SignV4(sr, credentials_, region_, "s3", timestamp);

  curl_slist* header_list = nullptr;
  for (const auto& [name, value] : sr.headers) {
    header_list = curl_slist_append(header_list, (name + ": " + value).c_str());
  }
  header_list = curl_slist_append(header_list, ("Authorization: " + authorization).c_str());
  header_list = curl_slist_append(header_list, "Expect:");  // no 100-continue round trip

  auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (remaining.count() <= 0) {
    curl_slist_free_all(header_list);
    a.curl = CURLE_OPERATION_TIMEDOUT;
    a.curl_error = "deadline passed";
    return a;
  }

  CURL* h = TakeHandle();
  if (h == nullptr) {
    curl_slist_free_all(header_list);
    a.curl = CURLE_OUT_OF_MEMORY;
    a.curl_error = "curl_easy_init failed";
    return a;
  }
  curl_easy_reset(h);  // keeps the handle's live connections
  char error_buffer[CURL_ERROR_SIZE];
  error_buffer[0] = '\0';
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, header_list);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(remaining.count()));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::min(remaining, kMaxConnectTimeout).count()));
  curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L << 10);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, HeaderCallback);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &a.transfer);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, WriteCallback);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &a.transfer);
  if (req.method == "PUT") {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 256L << 10);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    curl_easy_setopt(h, CURLOPT_READFUNCTION, ReadCallback);
    curl_easy_setopt(h, CURLOPT_READDATA, &a.transfer);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, SeekCallback);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, &a.transfer);
  } else if (req.method == "POST") {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    // Never null: a null body makes curl read the body from stdin.
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.empty() ? "" : req.body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  } else if (req.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (req.method == "DELETE") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
  } else {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  }
  a.curl = curl_easy_perform(h);
  if (a.curl != CURLE_OK) {
    a.curl_error = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(a.curl);
  } else {
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    a.transfer.response.status = status;
  }
  // The slist and the error buffer must not outlive their use by the handle.
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, static_cast<char*>(nullptr));
  curl_slist_free_all(header_list);
  ReturnHandle(h);
  return a;
}

Result<HttpResponse> S3ObjectStore::Execute(Op op, const std::string& what, const HttpRequest& req,
                                            BodySink* sink, Clock::time_point deadline,
                                            std::initializer_list<long> also_ok,
                                            const Validator& validate) {
  const int max_attempts = std::max(1, options_.max_attempts);
  const auto start = Clock::now();
  std::string last_error;
  int attempts = 0;
  while (true) {
    if (Clock::now() >= deadline) {
      if (last_error.empty()) last_error = "deadline passed";
      break;
    }
    if (!slots_.try_acquire_until(deadline)) {
      if (last_error.empty()) last_error = "deadline passed waiting for a free request slot";
      break;
    }
    ++attempts;
    Status reset = sink != nullptr ? sink->Reset() : Status::Ok();
    if (!reset.ok()) {
      slots_.release();
      return Err(Fail(reset.code(), "s3 " + what + ": " + reset.message()));
    }
    Attempt a = PerformOnce(req, sink, deadline);
    slots_.release();

    const HttpResponse& r = a.transfer.response;
    if (!a.transfer.sink_error.ok()) {
      const Status& st = a.transfer.sink_error;
      return Err(Fail(st.code(), "s3 " + what + ": " + st.message()));
    }
    if (a.curl != CURLE_OK) {
      last_error = a.curl_error;
      if (!RetryableCurl(a.curl)) {
        return Err(Fail(Code::kUnavailable, "s3 " + what + ": " + last_error));
      }
    } else if ((r.status >= 200 && r.status < 300) ||
               std::find(also_ok.begin(), also_ok.end(), r.status) != also_ok.end()) {
      Status st = validate ? validate(r) : Status::Ok();
      if (st.ok()) return std::move(a.transfer.response);
      if (st.code() != Code::kUnavailable) {
        return Err(Fail(st.code(), "s3 " + what + ": " + st.message()));
      }
      last_error = st.message();
    } else {
      last_error = HttpErrorText(r);
      std::string s3_code = XmlFirst(r.body, "Code").value_or("");
      bool retry = r.status >= 500 || r.status == 429 || r.status == 408 ||
                   s3_code == "RequestTimeout" || s3_code == "SlowDown" ||
                   s3_code == "InternalError";
      if (!retry) {
        Code code = Code::kInvalid;
        std::string hint;
        if (r.status == 401 || r.status == 403) code = Code::kAccess;
        if (r.status == 404) code = Code::kNotFound;
        if (r.status == 412) code = Code::kChanged;
        if (r.status == 301 || r.status == 307 || s3_code == "PermanentRedirect" ||
            s3_code == "AuthorizationHeaderMalformed") {
          hint = " (check AWS_REGION and AWS_ENDPOINT_URL for this bucket)";
        }
        return Err(Fail(code, "s3 " + what + ": " + last_error + hint));
      }
    }
    // Retry with exponential backoff and full jitter, within the attempts and the deadline.
    if (attempts >= max_attempts) break;
    auto cap = options_.backoff_base * (int64_t{1} << std::min(attempts - 1, 20));
    cap = std::min<std::chrono::milliseconds>(cap, options_.backoff_max);
    std::uniform_int_distribution<int64_t> jitter(0, std::max<int64_t>(0, cap.count()));
    std::chrono::milliseconds backoff{jitter(Rng())};
    if (Clock::now() + backoff >= deadline) break;
    retries_[static_cast<size_t>(op)]->Add();
    log::Debug("s3 {}: attempt {} failed ({}); retrying in {} ms", what, attempts,
               Redact(last_error), backoff.count());
    std::this_thread::sleep_for(backoff);
  }
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return Err(Fail(Code::kUnavailable,
                  fmt::format("s3 {} failed after {} attempt{} in {} ms: {}", what, attempts,
                              attempts == 1 ? "" : "s", elapsed.count(), last_error)));
}

Status S3ObjectStore::CheckETag(const HttpResponse& r, std::string_view if_match) {
  if (if_match.empty() || !r.Has("etag")) return Status::Ok();
  std::string etag = StripQuotes(r.Header("etag"));
  if (etag == StripQuotes(if_match)) return Status::Ok();
  return Status(Code::kChanged,
                fmt::format("object changed (ETag {} is not {})", etag, StripQuotes(if_match)));
}

Status S3ObjectStore::PutSingle(const std::string& what, const std::string& full_key,
                                std::string_view data, Clock::time_point deadline) {
  HttpRequest req;
  req.method = "PUT";
  req.key = full_key;
  req.body = data;
  req.payload_sha256 = Sha256Hex(data);
  req.headers = {{"content-type", "application/octet-stream"}};
  auto r = Execute(Op::kPut, what, req, nullptr, deadline);
  if (!r) return r.error();
  return Status::Ok();
}

Status S3ObjectStore::PutMultipart(const std::string& what, const std::string& full_key,
                                   uint64_t size, const PartReader& read,
                                   Clock::time_point deadline) {
  uint64_t part_size = std::max(options_.part_size, kMinPartSize);
  if ((size + part_size - 1) / part_size > kMaxParts) {
    constexpr uint64_t kMiB = 1ull << 20;
    part_size = ((size + kMaxParts - 1) / kMaxParts + kMiB - 1) / kMiB * kMiB;
  }
  const uint64_t parts = (size + part_size - 1) / part_size;

  // CreateMultipartUpload.
  HttpRequest create;
  create.method = "POST";
  create.key = full_key;
  create.query = {{"uploads", ""}};
  create.headers = {{"content-type", "application/octet-stream"}};
  std::string upload_id;
  auto created = Execute(Op::kPut, what + " (create multipart upload)", create, nullptr, deadline,
                         {}, [&](const HttpResponse& r) -> Status {
                           upload_id = XmlFirst(r.body, "UploadId").value_or("");
                           if (upload_id.empty()) {
                             return Status(Code::kCorruption, "no UploadId in the reply");
                           }
                           return Status::Ok();
                         });
  if (!created) return created.error();

  // UploadPart, a few at a time.
  std::vector<std::string> etags(parts);
  std::atomic<uint64_t> next{0};
  std::mutex error_mu;
  Status first_error;
  std::atomic<bool> failed{false};
  auto worker = [&] {
    std::string scratch;
    while (!failed.load()) {
      uint64_t i = next.fetch_add(1);
      if (i >= parts) return;
      uint64_t off = i * part_size;
      size_t n = static_cast<size_t>(std::min(part_size, size - off));
      std::string_view body;
      Status st = read(off, n, scratch, body);
      if (st.ok()) {
        HttpRequest req;
        req.method = "PUT";
        req.key = full_key;
        req.query = {{"partNumber", std::to_string(i + 1)}, {"uploadId", upload_id}};
        req.body = body;
        req.payload_sha256 = Sha256Hex(body);
        auto r = Execute(Op::kPut, fmt::format("{} (part {} of {})", what, i + 1, parts), req,
                         nullptr, deadline, {}, [&](const HttpResponse& resp) -> Status {
                           etags[i] = StripQuotes(resp.Header("etag"));
                           if (etags[i].empty()) {
                             return Status(Code::kCorruption, "no ETag in the UploadPart reply");
                           }
                           return Status::Ok();
                         });
        if (!r) st = r.error();
      }
      if (!st.ok()) {
        std::lock_guard lock(error_mu);
        if (first_error.ok()) first_error = std::move(st);
        failed.store(true);
        return;
      }
    }
  };
  const int workers = static_cast<int>(std::min<uint64_t>(
      parts,
      static_cast<uint64_t>(std::max(1, std::min(kMultipartWorkers, options_.max_parallel)))));
  {
    std::vector<std::jthread> threads;
    for (int w = 1; w < workers; ++w) threads.emplace_back(worker);
    worker();
  }

  Status result = first_error;
  if (result.ok()) {
    // CompleteMultipartUpload. S3 may answer 200 and put an error in the body.
    std::string xml = "<CompleteMultipartUpload>";
    for (uint64_t i = 0; i < parts; ++i) {
      xml += fmt::format("<Part><PartNumber>{}</PartNumber><ETag>\"{}\"</ETag></Part>", i + 1,
                         etags[i]);
    }
    xml += "</CompleteMultipartUpload>";
    HttpRequest complete;
    complete.method = "POST";
    complete.key = full_key;
    complete.query = {{"uploadId", upload_id}};
    complete.headers = {{"content-type", "application/xml"}};
    complete.body = xml;
    complete.payload_sha256 = Sha256Hex(xml);
    auto r = Execute(Op::kPut, what + " (complete multipart upload)", complete, nullptr, deadline,
                     {}, [&](const HttpResponse& resp) -> Status {
                       if (resp.body.find("<Error>") != std::string::npos) {
                         std::string code = XmlFirst(resp.body, "Code").value_or("?");
                         bool retry = code == "InternalError" || code == "SlowDown" ||
                                      code == "ServiceUnavailable" || code == "RequestTimeout";
                         return Status(retry ? Code::kUnavailable : Code::kInvalid,
                                       "CompleteMultipartUpload failed: " + code);
                       }
                       return Status::Ok();
                     });
    if (r) return Status::Ok();
    result = r.error();
  }

  // Abort, so the parts do not linger; best effort, shortly past the deadline at most.
  HttpRequest abort;
  abort.method = "DELETE";
  abort.key = full_key;
  abort.query = {{"uploadId", upload_id}};
  auto aborted = Execute(Op::kPut, what + " (abort multipart upload)", abort, nullptr,
                         std::max(deadline, Clock::now() + std::chrono::seconds(1)), {404});
  if (!aborted) {
    log::Warn(
        "s3: could not abort the multipart upload of '{}' ({}); its parts stay until a "
        "lifecycle rule removes them",
        full_key, aborted.error().message());
  }
  return result;
}

Status S3ObjectStore::Put(std::string_view key, std::string_view data, const CallOptions& o) {
  CAIRN_RETURN_IF_ERROR(CheckKey(key));
  const auto deadline = Deadline(o);
  const std::string what = fmt::format("put '{}'", key);
  if (data.size() <= options_.multipart_threshold) {
    return PutSingle(what, FullKey(key), data, deadline);
  }
  return PutMultipart(
      what, FullKey(key), data.size(),
      [data](uint64_t off, size_t n, std::string&, std::string_view& view) {
        view = data.substr(off, n);
        return Status::Ok();
      },
      deadline);
}

Status S3ObjectStore::PutFile(std::string_view key, const std::string& path, uint64_t offset,
                              uint64_t length, const CallOptions& o) {
  CAIRN_RETURN_IF_ERROR(CheckKey(key));
  const auto deadline = Deadline(o);
  const std::string what = fmt::format("put '{}'", key);
  auto file = File::Open(path, O_RDONLY | O_CLOEXEC);
  if (!file) return file.error();
  auto read = [&](uint64_t off, size_t n, std::string& scratch, std::string_view& view) -> Status {
    scratch.resize(n);
    auto got = file->ReadAt(offset + off, scratch.data(), n);
    if (!got) return got.error();
    if (*got != n) {
      return Status(Code::kInvalid, fmt::format("{} ends before byte {} of the range to upload",
                                                path, offset + off + n));
    }
    view = scratch;
    return Status::Ok();
  };
  if (length <= options_.multipart_threshold) {
    std::string scratch;
    std::string_view body;
    CAIRN_RETURN_IF_ERROR(read(0, static_cast<size_t>(length), scratch, body));
    return PutSingle(what, FullKey(key), body, deadline);
  }
  return PutMultipart(what, FullKey(key), length, read, deadline);
}

Result<size_t> S3ObjectStore::GetRange(std::string_view key, uint64_t offset, size_t length,
                                       char* out, std::string_view if_match, const CallOptions& o) {
  CAIRN_RETURN_IF_ERROR(CheckKey(key));
  if (length == 0) return size_t{0};
  const auto deadline = Deadline(o);
  const std::string what = fmt::format("get '{}' [{}, +{})", key, offset, length);

  // Places the body into out. A 206 reply carries exactly the range; a 200 reply (a server
  // that ignores Range) the whole object, of which the window is kept.
  class RangeSink final : public BodySink {
   public:
    RangeSink(uint64_t offset, size_t length, char* out)
        : offset_(offset), length_(length), out_(out) {}
    Status Reset() override {
      seen_ = 0;
      placed_ = 0;
      return Status::Ok();
    }
    Status Write(const HttpResponse& r, std::string_view chunk) override {
      const uint64_t skip = r.status == 206 ? 0 : offset_;
      if (r.status == 206 && placed_ + chunk.size() > length_) {
        return Status(Code::kCorruption, "the server sent more bytes than the range asked");
      }
      uint64_t begin = seen_;
      seen_ += chunk.size();
      // Intersect [begin, seen_) with the window [skip, skip + length_).
      uint64_t lo = std::max(begin, skip);
      uint64_t hi = std::min(seen_, skip + length_);
      if (lo < hi) {
        std::memcpy(out_ + (lo - skip), chunk.data() + (lo - begin), hi - lo);
        placed_ = std::max<uint64_t>(placed_, hi - skip);
      }
      return Status::Ok();
    }
    uint64_t seen() const { return seen_; }
    size_t placed() const { return static_cast<size_t>(placed_); }

   private:
    const uint64_t offset_;
    const size_t length_;
    char* const out_;
    uint64_t seen_ = 0;
    uint64_t placed_ = 0;
  } sink(offset, length, out);

  HttpRequest req;
  req.method = "GET";
  req.key = FullKey(key);
  req.headers = {{"range", fmt::format("bytes={}-{}", offset, offset + length - 1)}};
  if (!if_match.empty()) req.headers.emplace_back("if-match", "\"" + StripQuotes(if_match) + "\"");
  bool past_end = false;
  size_t result = 0;
  auto r =
      Execute(Op::kGet, what, req, &sink, deadline, {416}, [&](const HttpResponse& resp) -> Status {
        if (resp.status == 416) {
          past_end = true;
          result = 0;
          return Status::Ok();
        }
        CAIRN_RETURN_IF_ERROR(CheckETag(resp, if_match));
        if (resp.status == 206) {
          // "bytes FIRST-LAST/TOTAL" must be the range asked, cut short only at the object's end.
          std::string cr = resp.Header("content-range");
          unsigned long long first = 0, last = 0;
          char total_text[32] = {};
          if (std::sscanf(cr.c_str(), "bytes %llu-%llu/%31s", &first, &last, total_text) != 3 ||
              first != offset || last < first || last - first + 1 > length) {
            return Status(Code::kCorruption, "unexpected Content-Range '" + cr + "'");
          }
          const uint64_t announced = last - first + 1;
          if (announced < length) {
            auto total = ParseU64(total_text);
            if (!total || *total != last + 1) {
              return Status(Code::kCorruption, "short Content-Range '" + cr + "' before the end");
            }
          }
          if (sink.seen() != announced) {
            return Status(Code::kUnavailable,
                          fmt::format("short body: {} of {} bytes", sink.seen(), announced));
          }
          result = static_cast<size_t>(announced);
          return Status::Ok();
        }
        // 200: the whole object.
        if (auto cl = ParseU64(resp.Header("content-length")); cl && *cl != sink.seen()) {
          return Status(Code::kUnavailable,
                        fmt::format("short body: {} of {} bytes", sink.seen(), *cl));
        }
        result = sink.placed();
        return Status::Ok();
      });
  if (!r) return Err(r.error());
  if (past_end && !if_match.empty()) {
    // Past the end of the object; that is only a clean end if it is still the same object.
    // The HEAD gets what is left of this call's deadline.
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto info = Head(key, CallOptions{std::max(left, std::chrono::milliseconds(1))});
    if (!info) return Err(info.error());
    if (info->etag != StripQuotes(if_match)) {
      return Err(Code::kChanged, fmt::format("s3 {}: object changed (ETag {} is not {})", what,
                                             info->etag, StripQuotes(if_match)));
    }
  }
  return result;
}

Result<uint64_t> S3ObjectStore::GetToFile(std::string_view key, const std::string& path,
                                          std::string_view if_match, const CallOptions& o) {
  CAIRN_RETURN_IF_ERROR(CheckKey(key));
  const auto deadline = Deadline(o);
  const std::string what = fmt::format("get '{}' to {}", key, path);
  auto file = File::Open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC);
  if (!file) return Err(file.error());

  class FileSink final : public BodySink {
   public:
    explicit FileSink(const File& f) : file_(f) {}
    Status Reset() override {
      written_ = 0;
      if (::ftruncate(file_.fd(), 0) != 0) return ErrnoStatus("truncate " + file_.path());
      return Status::Ok();
    }
    Status Write(const HttpResponse&, std::string_view chunk) override {
      CAIRN_RETURN_IF_ERROR(file_.WriteAt(written_, chunk.data(), chunk.size()));
      written_ += chunk.size();
      return Status::Ok();
    }
    uint64_t written() const { return written_; }

   private:
    const File& file_;
    uint64_t written_ = 0;
  } sink(*file);

  HttpRequest req;
  req.method = "GET";
  req.key = FullKey(key);
  if (!if_match.empty()) req.headers.emplace_back("if-match", "\"" + StripQuotes(if_match) + "\"");
  auto r =
      Execute(Op::kGet, what, req, &sink, deadline, {}, [&](const HttpResponse& resp) -> Status {
        CAIRN_RETURN_IF_ERROR(CheckETag(resp, if_match));
        if (auto cl = ParseU64(resp.Header("content-length")); cl && *cl != sink.written()) {
          return Status(Code::kUnavailable,
                        fmt::format("short body: {} of {} bytes", sink.written(), *cl));
        }
        return Status::Ok();
      });
  if (!r) return Err(r.error());
  return sink.written();
}

Result<ObjectInfo> S3ObjectStore::Head(std::string_view key, const CallOptions& o) {
  CAIRN_RETURN_IF_ERROR(CheckKey(key));
  HttpRequest req;
  req.method = "HEAD";
  req.key = FullKey(key);
  const std::string what = fmt::format("head '{}'", key);
  ObjectInfo info;
  info.key = std::string(key);
  auto r = Execute(Op::kHead, what, req, nullptr, Deadline(o), {},
                   [&](const HttpResponse& resp) -> Status {
                     auto size = ParseU64(resp.Header("content-length"));
                     if (!size)
                       return Status(Code::kCorruption, "no Content-Length in the HEAD reply");
                     info.size = *size;
                     info.etag = StripQuotes(resp.Header("etag"));
                     info.mtime = ParseHttpDate(resp.Header("last-modified"));
                     return Status::Ok();
                   });
  if (!r) return Err(r.error());
  return info;
}

Result<ListPage> S3ObjectStore::ListImpl(std::string_view prefix, std::string_view delimiter,
                                         std::string_view token, std::string_view start_after,
                                         int max_keys, const CallOptions& o) {
  if (max_keys <= 0 || max_keys > 1000) max_keys = 1000;
  HttpRequest req;
  req.method = "GET";
  req.query = {
      {"list-type", "2"}, {"max-keys", std::to_string(max_keys)}, {"prefix", FullKey(prefix)}};
  if (!delimiter.empty()) req.query.emplace_back("delimiter", std::string(delimiter));
  if (!token.empty()) req.query.emplace_back("continuation-token", std::string(token));
  if (!start_after.empty()) req.query.emplace_back("start-after", FullKey(start_after));
  const std::string what = fmt::format("list '{}'", prefix);
  ListPage page;
  auto r = Execute(
      Op::kList, what, req, nullptr, Deadline(o), {}, [&](const HttpResponse& resp) -> Status {
        page = ListPage{};
        std::string_view xml = resp.body;
        if (xml.find("<ListBucketResult") == std::string_view::npos) {
          return Status(Code::kCorruption, "the reply is not a ListBucketResult");
        }
        for (std::string_view c : XmlElements(xml, "Contents")) {
          auto key = XmlFirst(c, "Key");
          auto size = ParseU64(XmlFirst(c, "Size").value_or(""));
          if (!key || !size) return Status(Code::kCorruption, "a Contents entry lacks Key or Size");
          if (!key->starts_with(key_prefix_)) continue;
          ObjectInfo info;
          info.key = key->substr(key_prefix_.size());
          info.size = *size;
          info.etag = StripQuotes(XmlFirst(c, "ETag").value_or(""));
          info.mtime = ParseIsoDate(XmlFirst(c, "LastModified").value_or(""));
          if (!info.key.empty()) page.objects.push_back(std::move(info));
        }
        for (std::string_view cp : XmlElements(xml, "CommonPrefixes")) {
          auto p = XmlFirst(cp, "Prefix");
          if (!p || !p->starts_with(key_prefix_)) continue;
          page.prefixes.push_back(p->substr(key_prefix_.size()));
        }
        // Only the top level has these two; Contents and CommonPrefixes do not.
        if (XmlFirst(xml, "IsTruncated").value_or("false") == "true") {
          page.next_token = XmlFirst(xml, "NextContinuationToken").value_or("");
          if (page.next_token.empty()) {
            return Status(Code::kCorruption, "a truncated listing without NextContinuationToken");
          }
        }
        return Status::Ok();
      });
  if (!r) return Err(r.error());
  return page;
}

Status S3ObjectStore::Delete(std::string_view key, const CallOptions& o) {
  CAIRN_RETURN_IF_ERROR(CheckKey(key));
  HttpRequest req;
  req.method = "DELETE";
  req.key = FullKey(key);
  auto r = Execute(Op::kDelete, fmt::format("delete '{}'", key), req, nullptr, Deadline(o), {404});
  if (!r) return r.error();
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<ObjectStore>> OpenS3ObjectStore(std::string_view bucket_and_prefix,
                                                       const StoreOptions& options) {
  std::call_once(curl_init_once, [] { curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (curl_init_result != CURLE_OK) {
    return Err(Code::kUnavailable,
               std::string("curl_global_init failed: ") + curl_easy_strerror(curl_init_result));
  }
  std::string_view rest = bucket_and_prefix;
  while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  size_t slash = rest.find('/');
  std::string bucket(rest.substr(0, slash));
  std::string prefix(slash == std::string_view::npos ? "" : rest.substr(slash + 1));
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (!ValidBucket(bucket)) {
    return Err(Code::kInvalid, "S3 bucket name '" + bucket + "' is not valid");
  }
  if (prefix.find('\0') != std::string::npos) {
    return Err(Code::kInvalid, "NUL in the S3 key prefix");
  }
  if (options.max_parallel < 1) {
    return Err(Code::kInvalid, "StoreOptions::max_parallel must be at least 1");
  }

  std::string region = Env("AWS_REGION");
  if (region.empty()) region = Env("AWS_DEFAULT_REGION");
  if (region.empty()) region = "us-east-1";

  std::string endpoint_url = Env("AWS_ENDPOINT_URL_S3");
  if (endpoint_url.empty()) endpoint_url = Env("AWS_ENDPOINT_URL");
  const bool custom_endpoint = !endpoint_url.empty();
  if (!custom_endpoint) endpoint_url = "https://s3." + region + ".amazonaws.com";
  auto endpoint = ParseEndpoint(endpoint_url);
  if (!endpoint) return Err(endpoint.error());

  std::string style = Lower(Env("AWS_S3_ADDRESSING_STYLE"));
  bool virtual_host = false;
  if (style == "virtual") {
    virtual_host = true;
  } else if (style == "path") {
    virtual_host = false;
  } else if (style.empty() || style == "auto") {
    // Dotted names break TLS wildcard certificates as host names: they go path-style.
    virtual_host = !custom_endpoint && bucket.find('.') == std::string::npos;
  } else {
    return Err(Code::kInvalid,
               "AWS_S3_ADDRESSING_STYLE must be 'path' or 'virtual', not '" + style + "'");
  }

  auto credentials = LoadCredentials();
  if (!credentials) return Err(credentials.error());

  auto store = std::make_unique<S3ObjectStore>(std::move(bucket), std::move(prefix),
                                               std::move(*endpoint), std::move(region),
                                               std::move(*credentials), virtual_host, options);
  log::Debug("s3 object store {}", store->Describe());
  return std::unique_ptr<ObjectStore>(std::move(store));
}

}  // namespace cairn::tier
